"""TLS on the metrics port: redis_exporter's -tls-server-* flags, certificates reloaded.

The listening socket keeps one front context for its whole life; its `sni_callback` (OpenSSL
calls it for every ClientHello, with or without a server name) points each new handshake at
the current context. A watcher compares the files' inode, mtime and size every
--tls-server-cert-check-interval (2 s) and builds a new context when they change, so a
renewed certificate (a Kubernetes Secret update is a symlink swap) is served from the next
handshake on, open connections are not touched, and a broken new file leaves the old
context in place with one error logged.

Why a watcher instead of reading the files on each handshake, as redis_exporter does
(`GetCertificate` calls `tls.LoadX509KeyPair` every time): the handshake runs on the event
loop, and file reads and PEM parsing there would block it for every new connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import warnings
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from aiohttp import web

from podkit.options import OptionError

log = logging.getLogger(__name__)

RELOAD_INTERVAL = 2.0  # seconds between looks at the files (--tls-server-cert-check-interval)

# redis_exporter's spellings (exporter/tls.go `tlsVersions`); the case is not significant.
TLS_VERSIONS: dict[str, ssl.TLSVersion] = {
    "TLS1.0": ssl.TLSVersion.TLSv1,
    "TLS1.1": ssl.TLSVersion.TLSv1_1,
    "TLS1.2": ssl.TLSVersion.TLSv1_2,
    "TLS1.3": ssl.TLSVersion.TLSv1_3,
}

FileSignature = tuple[tuple[int, int, int], ...]


class CertError(Exception):
    """Certificate, key or CA files that cannot be used; the message says why."""


def parse_tls_version(text: str) -> str:
    """'TLS1.0' … 'TLS1.3', as -tls-server-min-version takes them."""
    value = text.strip().upper()
    if value not in TLS_VERSIONS:
        raise OptionError(f"expected one of {', '.join(TLS_VERSIONS)}, got {text!r}")
    return value


@dataclass(frozen=True)
class ServerFiles:
    cert_file: str
    key_file: str
    ca_file: str = ""  # set: scrapers must present a certificate it signed
    min_version: str = "TLS1.2"

    def signature(self) -> FileSignature:
        """(inode, mtime, size) of each file; stat follows symlinks, so a swapped Secret's
        ..data link shows as a change."""
        out = []
        for path in (self.cert_file, self.key_file, self.ca_file):
            if path:
                st = os.stat(path)
                out.append((st.st_ino, st.st_mtime_ns, st.st_size))
        return tuple(out)


def build_context(files: ServerFiles) -> ssl.SSLContext:
    """A server context from the files; CertError if any of them is unusable."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():  # TLS1.0/1.1 are deprecated, but a flag may ask for them
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = TLS_VERSIONS[files.min_version]
    ctx.options |= ssl.OP_NO_COMPRESSION | getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    try:
        ctx.load_cert_chain(files.cert_file, files.key_file)
        if files.ca_file:
            ctx.load_verify_locations(files.ca_file)
            ctx.verify_mode = ssl.CERT_REQUIRED  # tls.RequireAndVerifyClientCert upstream
    except (ssl.SSLError, OSError, ValueError) as exc:
        names = " / ".join(p for p in (files.cert_file, files.key_file, files.ca_file) if p)
        raise CertError(f"{names}: {exc}") from exc
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class ServerTLS:
    """The metrics port's TLS: the front context for the socket, and its reloading."""

    def __init__(self, files: ServerFiles) -> None:
        self.files = files
        try:
            self._signature = files.signature()
        except OSError as exc:
            raise CertError(str(exc)) from exc
        self.current = build_context(files)
        self.reloads = 0
        self.reload_failures = 0
        # Its own context, so swapping `current` never changes what the socket verifies;
        # the client-certificate requirement and minimum version are fixed at startup.
        self.front = build_context(files)
        self.front.sni_callback = self._select

    def _select(self, sslobj: ssl.SSLObject, _name: str | None, _ctx: ssl.SSLContext) -> None:
        if sslobj.context is not self.current:
            sslobj.context = self.current

    def check(self) -> bool:
        """Rebuild the context if the files changed; True when a new one is in use."""
        try:
            signature = self.files.signature()
        except OSError as exc:
            log.error("TLS files unreadable, keeping the loaded certificate: %s", exc)
            return False
        if signature == self._signature:
            return False
        self._signature = signature  # a broken change is reported once, not every check
        try:
            fresh = build_context(self.files)
        except CertError as exc:
            self.reload_failures += 1
            log.error("new TLS certificate rejected, keeping the old one: %s", exc)
            return False
        self.current = fresh
        self.reloads += 1
        log.info("TLS certificate reloaded from %s", self.files.cert_file)
        return True

    async def watch(self, interval: float = RELOAD_INTERVAL) -> None:
        while True:
            await asyncio.sleep(interval)
            self.check()

    def watcher(
        self, interval: float = RELOAD_INTERVAL
    ) -> Callable[[web.Application], AsyncIterator[None]]:
        """An aiohttp cleanup context: watch the files while the app runs."""

        async def watch_files(_app: web.Application) -> AsyncIterator[None]:
            task = asyncio.create_task(self.watch(interval))
            yield
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        return watch_files
