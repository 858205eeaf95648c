"""The agent's options, declared once: flag, LOGAGENT_* variable, default and help.

Downward API metadata (pod, namespace, container, node) comes from the variables a pod spec
sets with `fieldRef` (POD_NAME, POD_NAMESPACE, ...), so the manifests need no agent-specific
names for them.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from podkit import logs
from podkit.lifecycle import DEFAULT_SHUTDOWN_TIMEOUT
from podkit.options import (
    OptionError,
    describe,
    option,
    parse_bool,
    parse_choice,
    parse_duration,
    parse_host_port,
)

PROG = "logagent"
DESCRIPTION = (
    "Log-streaming sidecar: follows files (paths or globs) through rotation and truncation "
    "and delivers each line at least once to stdout and/or syslog (RFC 5424, TCP or TLS)."
)

OutputName = Literal["stdout", "syslog"]
ParserName = Literal["raw", "json", "regex", "combined"]
FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6,
    "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
    **{f"local{i}": 16 + i for i in range(8)},
}
SEVERITIES = {
    "emerg": 0, "alert": 1, "crit": 2, "err": 3, "warning": 4, "notice": 5, "info": 6,
    "debug": 7,
}

_SIZE = re.compile(r"(\d+)\s*([kmg]i?b?|b)?")
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_size(text: str) -> int:
    """Bytes from '65536', '64k', '64KiB', '8m', '1g' (binary units)."""
    match = _SIZE.fullmatch(text.strip().lower())
    if not match:
        raise OptionError(f"expected a size such as 65536, 64k or 8m, got {text!r}")
    return int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "")[:1]]


def parse_output(text: str) -> OutputName:
    value: OutputName = parse_choice("stdout", "syslog")(text)
    return value


def parse_regex(text: str) -> str:
    try:
        re.compile(text)
    except re.error as exc:
        raise OptionError(f"not a regular expression ({exc}): {text!r}") from None
    return text


def parse_glob(text: str) -> str:
    value = text.strip()
    if not value.startswith("/"):
        raise OptionError(f"expected an absolute path or glob, got {text!r}")
    return value


@dataclass(frozen=True)
class LogagentConfig:
    ENV_PREFIX: ClassVar[str] = "LOGAGENT"

    paths: tuple[str, ...] = option(
        (),
        env="*_PATHS",
        flag="--path",
        parse=parse_glob,
        multiple=True,
        metavar="GLOB",
        help="file or glob to follow (absolute); new matches are picked up as they appear",
    )
    state_dir: str = option(
        "",
        env="*_STATE_DIR",
        metavar="DIR",
        help="directory for the position checkpoints (use a volume that outlives the container)",
    )
    outputs: tuple[OutputName, ...] = option(
        ("stdout",),
        env="*_OUTPUTS",
        flag="--output",
        parse=parse_output,
        multiple=True,
        help="where records go: stdout, syslog; several at once are allowed",
    )
    stdout_format: str = option(
        "raw",
        env="*_STDOUT_FORMAT",
        parse=parse_choice("raw", "json"),
        help="stdout output: raw (each line as written) or json (one object per record)",
    )
    parser: ParserName = option(
        "raw",
        env="*_PARSER",
        parse=parse_choice("raw", "json", "regex", "combined"),
        help="how lines become fields: raw, json, regex (--regex) or combined (nginx/Apache)",
    )
    regex: str = option(
        "",
        env="*_REGEX",
        parse=parse_regex,
        help="regular expression with named groups, for --parser regex",
    )
    multiline_start: str = option(
        "",
        env="*_MULTILINE_START",
        parse=parse_regex,
        metavar="REGEX",
        help="a line matching this starts a record; other lines join the one before "
        "(stack traces); empty: every line is a record",
    )
    multiline_timeout: float = option(
        1.0,
        env="*_MULTILINE_TIMEOUT",
        parse=parse_duration,
        help="send a held multi-line record when no line came for this long",
    )
    max_line_bytes: int = option(
        1024 * 1024,
        env="*_MAX_LINE_BYTES",
        parse=parse_size,
        help="longer lines (and unterminated last lines) are cut here and counted",
    )
    read_from: str = option(
        "head",
        env="*_READ_FROM",
        parse=parse_choice("head", "tail"),
        help="files found at the first start without a checkpoint: read from head or tail",
    )
    poll_interval: float = option(
        0.25,
        env="*_POLL_INTERVAL",
        parse=parse_duration,
        help="how often idle files are checked for growth, rotation and truncation",
    )
    scan_interval: float = option(
        1.0,
        env="*_SCAN_INTERVAL",
        parse=parse_duration,
        help="how often the globs are expanded again for new files",
    )
    rotate_wait: float = option(
        5.0,
        env="*_ROTATE_WAIT",
        parse=parse_duration,
        help="how long a rotated or deleted file, read to its end, is still watched",
    )
    max_rotated_files: int = option(
        32,
        env="*_MAX_ROTATED_FILES",
        parse=int,
        help="rotated files kept open with unread data; beyond it the oldest is dropped "
        "(counted)",
    )
    buffer_bytes: int = option(
        # Room for a longest line and eight batches in flight: more only holds more records
        # in memory (8 MiB cost ~15 MB of RSS under load), not more lines per second.
        2 * 1024 * 1024,
        env="*_BUFFER_BYTES",
        parse=parse_size,
        help="lines read but not yet acknowledged; reading pauses when it is full",
    )
    batch_bytes: int = option(
        256 * 1024,
        env="*_BATCH_BYTES",
        parse=parse_size,
        help="most bytes sent before an acknowledgement and checkpoint "
        "(duplicates after a crash are bounded by one batch)",
    )
    syslog_address: tuple[str, int] = option(
        ("127.0.0.1", 514),
        env="*_SYSLOG_ADDRESS",
        parse=parse_host_port("127.0.0.1"),
        metavar="HOST:PORT",
        help="syslog receiver (RFC 5424 over TCP, octet-counted framing)",
    )
    syslog_tls: bool = option(
        False, env="*_SYSLOG_TLS", parse=parse_bool, help="syslog over TLS (RFC 5425)"
    )
    syslog_tls_ca_file: str = option(
        "",
        env="*_SYSLOG_TLS_CA_FILE",
        help="CA bundle that signs the receiver's certificate (default: the system's)",
    )
    syslog_tls_cert_file: str = option(
        "", env="*_SYSLOG_TLS_CERT_FILE", help="client certificate, when the receiver asks"
    )
    syslog_tls_key_file: str = option(
        "", env="*_SYSLOG_TLS_KEY_FILE", help="client key (with --syslog-tls-cert-file)"
    )
    syslog_tls_server_name: str = option(
        "",
        env="*_SYSLOG_TLS_SERVER_NAME",
        help="name to verify in the receiver's certificate (default: the address' host)",
    )
    syslog_tls_insecure: bool = option(
        False,
        env="*_SYSLOG_TLS_INSECURE",
        parse=parse_bool,
        help="do not verify the receiver's certificate (tests only)",
    )
    syslog_facility: str = option(
        "user",
        env="*_SYSLOG_FACILITY",
        parse=parse_choice(*FACILITIES),
        help="syslog facility of every record",
    )
    syslog_severity: str = option(
        "info",
        env="*_SYSLOG_SEVERITY",
        parse=parse_choice(*SEVERITIES),
        help="syslog severity of every record",
    )
    syslog_app_name: str = option(
        "",
        env="*_SYSLOG_APP_NAME",
        help="APP-NAME of the records (default: the container name, else 'logagent')",
    )
    hostname: str = option(
        "",
        env="*_HOSTNAME",
        help="HOSTNAME of the syslog records (default: the pod name, else the host name)",
    )
    pod_name: str = option("", env="POD_NAME", help="pod name (Downward API metadata.name)")
    pod_namespace: str = option(
        "", env="POD_NAMESPACE", help="namespace (Downward API metadata.namespace)"
    )
    container_name: str = option(
        "", env="CONTAINER_NAME", help="the container whose logs these are"
    )
    node_name: str = option("", env="NODE_NAME", help="node (Downward API spec.nodeName)")
    admin_address: tuple[str, int] = option(
        ("0.0.0.0", 9880),
        env="*_ADMIN_ADDRESS",
        parse=parse_host_port(),
        metavar="HOST:PORT",
        help="admin port: /healthz, /readyz, /metrics",
    )
    log_format: logs.LogFormat = option(
        "text", env="*_LOG_FORMAT", parse=logs.parse_format, help="log format: text or json"
    )
    log_level: str = option(
        "info",
        env="*_LOG_LEVEL",
        parse=logs.parse_level,
        help="log level: debug, info, warning or error (logs go to stderr, never stdout)",
    )
    shutdown_timeout: float = option(
        DEFAULT_SHUTDOWN_TIMEOUT,
        env="*_SHUTDOWN_TIMEOUT",
        parse=parse_duration,
        help="after SIGTERM, how long buffered lines may still be sent before exit",
    )

    def __post_init__(self) -> None:
        if not self.paths:
            raise OptionError(f"{describe(LogagentConfig, 'paths')}: at least one is required")
        if not self.state_dir:
            raise OptionError(f"{describe(LogagentConfig, 'state_dir')} is required")
        if self.parser == "regex" and not self.regex:
            raise OptionError("--parser regex needs --regex (LOGAGENT_REGEX)")
        if self.regex and not re.compile(self.regex).groupindex:
            raise OptionError("--regex needs at least one named group, e.g. (?P<level>\\w+)")
        if len(set(self.outputs)) != len(self.outputs):
            raise OptionError("--output: each output once")
        if self.max_line_bytes < 16 or self.batch_bytes < 1 or self.max_rotated_files < 1:
            raise OptionError("--max-line-bytes, --batch-bytes, --max-rotated-files too small")
        if self.buffer_bytes < self.max_line_bytes + self.batch_bytes:
            raise OptionError("--buffer-bytes must hold at least --max-line-bytes + --batch-bytes")
        if self.poll_interval <= 0 or self.scan_interval <= 0:
            raise OptionError("--poll-interval and --scan-interval must be above zero")
        if bool(self.syslog_tls_cert_file) != bool(self.syslog_tls_key_file):
            raise OptionError("--syslog-tls-cert-file and --syslog-tls-key-file go together")
        for name in ("syslog_tls_ca_file", "syslog_tls_cert_file", "syslog_tls_key_file"):
            path = getattr(self, name)
            if path and not Path(path).is_file():
                raise OptionError(f"{describe(LogagentConfig, name)}: no such file: {path}")

    @property
    def metadata(self) -> dict[str, str]:
        """The Downward API fields that are set, by the names records carry them under."""
        pairs = {
            "pod": self.pod_name,
            "namespace": self.pod_namespace,
            "container": self.container_name,
            "node": self.node_name,
        }
        return {key: value for key, value in pairs.items() if value}

    @property
    def syslog_hostname(self) -> str:
        return self.hostname or self.pod_name or socket.gethostname() or "-"
