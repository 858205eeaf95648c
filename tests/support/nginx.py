"""Debian's nginx as the tests' oracle: one process in the foreground, its config, logs and
temporary files under one work directory, stopped when the test is done with it."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from support.processes import wait_for
from support.tools import require, require_binary

# Everything nginx would write elsewhere (pid, logs, temp files) goes under {dir}.
MAIN = """\
{modules}daemon off;
master_process off;
worker_processes 1;
error_log {dir}/error.log {level};
pid {dir}/nginx.pid;
events {{ worker_connections {connections}; }}
http {{
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
{http}
}}
{stream}"""
STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"  # Debian: libnginx-mod-stream


@dataclass
class NginxProcess:
    proc: subprocess.Popen[bytes]
    dir: Path
    port: int  # where its server listens

    def log(self) -> str:
        path = self.dir / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def nginx_running(
    workdir: Path,
    port: int,
    http: str,
    ready: Callable[[], bool],
    *,
    level: str = "info",
    connections: int = 64,
    stream: str = "",
) -> Iterator[NginxProcess]:
    """nginx with `http` (a server on `port` in it) as the body of its http block, once
    `ready()` holds; `stream`, the body of a stream block (the module loaded for it)."""
    binary = require_binary("nginx")
    modules = ""
    if stream:
        require(
            "nginx's stream module",
            Path(STREAM_MODULE).is_file(),
            "install libnginx-mod-stream (scripts/bootstrap-host.sh)",
        )
        modules = f"load_module {STREAM_MODULE};\n"
        stream = f"stream {{\n{stream}\n}}\n"
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "nginx.conf"
    conf.write_text(
        MAIN.format(
            dir=workdir,
            level=level,
            connections=connections,
            http=http,
            modules=modules,
            stream=stream,
        )
    )
    with open(workdir / "stderr.log", "ab") as stderr:
        proc = subprocess.Popen(
            [binary, "-p", str(workdir), "-e", str(workdir / "error.log"), "-c", str(conf)],
            stdout=stderr,
            stderr=stderr,
        )
    nginx = NginxProcess(proc, workdir, port)

    def started() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited {proc.returncode}: {nginx.log()[-2000:]}")
        return ready()

    try:
        wait_for(started, what=f"nginx in {workdir}")
        yield nginx
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
