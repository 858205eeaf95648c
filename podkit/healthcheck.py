"""The images' HEALTHCHECK: `python -m podkit.healthcheck SERVICE [--path /readyz]`.

Asks the service's own /healthz (or /readyz: a Kubernetes exec probe of a container that
listens on the pod's localhost only asks this way) on the address it listens on, read from
the same environment variable the service reads (a flag given on the command line is not
seen: set the variable instead, as the compose file and the manifests do). Exits 0 when it
answers 200, else 1, printing one line either way: Docker keeps that line in `docker
inspect`'s health log. Slim images have no curl, and this is the same check for every image,
differing only by the table below.
"""

from __future__ import annotations

import argparse
import os
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Target:
    env: str  # the variable holding the service's admin address, HOST:PORT
    port: int  # its default port
    tls_env: str | None = None  # a variable that, when set, means the port speaks TLS


# Each service's admin address, as its options declare it (env name and default port).
TARGETS: Mapping[str, Target] = {
    "adapter": Target(
        "REDIS_EXPORTER_WEB_LISTEN_ADDRESS", 9121, tls_env="REDIS_EXPORTER_TLS_SERVER_CERT_FILE"
    ),
    "sidecar": Target("SIDECAR_ADMIN_LISTEN", 9000),
    "ambassador": Target("AMBASSADOR_ADMIN_LISTEN", 9000),
    "echoserver": Target("ECHO_LISTEN", 8080),
    "gitsync": Target("GITSYNC_HTTP_BIND", 2020),
    "logagent": Target("LOGAGENT_ADMIN_ADDRESS", 9880),
}
PATH = "/healthz"
DEFAULT_TIMEOUT = 2.0


class Response(Protocol):
    status: int

    def __enter__(self) -> Response: ...
    def __exit__(self, *exc: object) -> None: ...


Opener = Callable[..., Response]


def url(target: Target, env: Mapping[str, str], path: str = PATH) -> str:
    """The /healthz URL of the service, from its environment.

    A wildcard or empty host (0.0.0.0, ::, ":2020" as git-sync writes it) is asked on the
    loopback address; a given host (ECHO_LISTEN=127.0.0.1:8080) on that host.
    """
    value = env.get(target.env, "").strip()
    host, sep, port = value.rpartition(":")
    if not sep:  # empty, or a bare host without a port
        host, port = value, ""
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::", "*"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if target.tls_env and env.get(target.tls_env) else "http"
    return f"{scheme}://{host}:{port or target.port}{path}"


def check(address: str, timeout: float, opener: Opener = urllib.request.urlopen) -> str | None:
    """None when the address answers 200 within `timeout`, else why not (one line)."""
    context = None
    if address.startswith("https:"):
        # The service's own certificate, asked on localhost: whether it is trusted is not
        # the question here, only whether the process answers.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with opener(address, timeout=timeout, context=context) as response:
            if response.status != 200:
                return f"{address} answered {response.status}"
    except urllib.error.HTTPError as exc:
        return f"{address} answered {exc.code}"
    except urllib.error.URLError as exc:
        return f"{address}: {exc.reason}"
    except TimeoutError:
        return f"{address}: no answer within {timeout:g}s"
    except OSError as exc:
        return f"{address}: {exc.strerror or exc}"
    return None


def main(
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] = os.environ,
    opener: Opener = urllib.request.urlopen,
) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m podkit.healthcheck",
        description="Exit 0 if the service's /healthz answers 200, else 1 (one line says why).",
    )
    parser.add_argument("service", choices=sorted(TARGETS), help="whose admin address to ask")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds to wait for the answer (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--path",
        default=PATH,
        choices=[PATH, "/readyz"],
        help=f"the endpoint to ask (default {PATH})",
    )
    args = parser.parse_args(argv)
    address = url(TARGETS[args.service], env, args.path)
    problem = check(address, args.timeout, opener)
    if problem is None:
        print(f"healthy: {address} answered 200")
        return 0
    print(f"unhealthy: {problem}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
