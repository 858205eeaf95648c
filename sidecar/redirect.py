"""The plain-HTTP listener that sends every request to https with 308 (method kept)."""

from __future__ import annotations

from podkit.admin_http import Handler, Request, Response
from podkit.proxy.headers import origin_form, valid_host


def redirect_handler(https_port: int) -> Handler:
    suffix = "" if https_port == 443 else f":{https_port}"

    async def redirect(request: Request) -> Response:
        host = request.headers.get("host", "")
        # Only an RFC 3986 host[:port] goes into Location: "evil@site" or "site/path" would
        # send the client elsewhere (nginx refuses such a Host too).
        if not valid_host(host.encode("latin-1")):
            return Response.text(400, "invalid Host header\n")
        if host.startswith("["):  # [v6]:port
            host = host[: host.find("]") + 1] if "]" in host else host
        elif ":" in host:
            host = host.rsplit(":", 1)[0]
        if not host:
            return Response.text(400, "a Host header is needed to redirect\n")
        target = request.target
        if not target.startswith("/"):  # absolute-form: its path; `*`: the root
            target = (
                origin_form(target.encode("latin-1"))[1].decode("latin-1")
                if "://" in target
                else "/"
            )
        location = f"https://{host}{suffix}{target}"
        return Response.text(308, f"moved to {location}\n", Location=location)

    return redirect
