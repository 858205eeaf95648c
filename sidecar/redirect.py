"""The plain-HTTP listener that sends every request to https with 308 (method kept)."""

from __future__ import annotations

from aiohttp import web

from podkit.proxy.headers import valid_host


def redirect_app(https_port: int) -> web.Application:
    suffix = "" if https_port == 443 else f":{https_port}"

    async def redirect(request: web.Request) -> web.Response:
        host = request.headers.get("Host", "")
        # Only an RFC 3986 host[:port] goes into Location: "evil@site" or "site/path" would
        # send the client elsewhere (nginx refuses such a Host too).
        if not valid_host(host.encode("utf-8", "surrogateescape")):
            return web.Response(status=400, text="invalid Host header\n")
        if host.startswith("["):  # [v6]:port
            host = host[: host.find("]") + 1] if "]" in host else host
        elif ":" in host:
            host = host.rsplit(":", 1)[0]
        if not host:
            return web.Response(status=400, text="a Host header is needed to redirect\n")
        location = f"https://{host}{suffix}{request.rel_url}"
        return web.Response(
            status=308, headers={"Location": location}, text=f"moved to {location}\n"
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", redirect)
    return app
