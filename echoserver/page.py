"""What a browser gets: the echo as a small HTML page, and a favicon that costs no pick.

The page names the server that answered and, through the proxy in front of it, asks for the
same page SPLIT_SAMPLE more times (as JSON) and shows which servers answered them: behind
the ambassador the 3:1 split is there to see on every reload. The page declares an empty
icon, so a browser does not fetch /favicon.ico for it at all; a browser that asks anyway
gets a real icon it may cache for a day, instead of an echo that would take a turn in the
balancer's rotation on every reload.
"""

from __future__ import annotations

import base64
import html

from aiohttp import web

SPLIT_SAMPLE = 20
HTML_TYPE = "text/html"

# A 16x16 icon: one colour, PNG inside an ICO directory entry (Windows Vista+ and every
# browser read these).
_PNG = base64.b64decode(  # 16x16, 1 bit per pixel, filled with #26458b
    "iVBORw0KGgoAAAANSUhEUgAAABAAAAAQAQMAAAAlPW0iAAAABlBMVEUmRYv////eZ5/1AAAADElEQVR42mNgIA0A"
    "AAAwAAEodEl9AAAAAElFTkSuQmCC"
)
FAVICON = (
    b"\x00\x00\x01\x00\x01\x00"  # ICO header: reserved, type 1 (icon), one image
    + bytes([16, 16, 0, 0])  # width, height, palette size, reserved
    + (1).to_bytes(2, "little")  # colour planes
    + (1).to_bytes(2, "little")  # bits per pixel
    + len(_PNG).to_bytes(4, "little")
    + (22).to_bytes(4, "little")  # offset of the image: right after this 22-byte header
    + _PNG
)

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="icon" href="data:,">
<style>
body {{ font: 15px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 50em; }}
pre {{ background: #f4f4f4; padding: 1em; overflow-x: auto; }}
.bar {{ background: #2645a8; height: 1em; display: inline-block; vertical-align: middle; }}
</style>
</head>
<body>
<h1>Answered by <span id="server">{server}</span></h1>
<h2>The split</h2>
<p>This page asked for itself {sample} more times through the same proxy; which servers
answered:</p>
<table id="split"><tr><td>asking…</td></tr></table>
<h2>Your request, as it arrived</h2>
<pre>{echo}</pre>
<script>
(async () => {{
  const counts = new Map();
  for (let i = 0; i < {sample}; i++) {{
    const r = await fetch(location.pathname, {{
      headers: {{Accept: "application/json"}}, cache: "no-store"}});
    const server = (await r.json()).server;
    counts.set(server, (counts.get(server) || 0) + 1);
  }}
  const table = document.getElementById("split");
  table.replaceChildren();
  for (const [server, n] of [...counts].sort()) {{
    const row = table.insertRow();
    row.insertCell().textContent = server;
    row.insertCell().textContent = n + " of {sample}";
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = (n * 15) + "px";
    row.insertCell().append(bar);
  }}
  table.dataset.done = "true";
}})();
</script>
</body>
</html>
"""


def wants_html(request: web.Request) -> bool:
    """A browser navigating: GET with text/html in Accept and no ?format= asked for."""
    return (
        request.method == "GET"
        and "format" not in request.query
        and HTML_TYPE in request.headers.get("Accept", "")
    )


def page(server: str, request_line: str, echo: str) -> web.Response:
    """The page of one echo: the server's name, the request line, the echo's text."""
    return web.Response(
        text=_PAGE.format(
            title=html.escape(f"{server}: {request_line}"),
            server=html.escape(server),
            sample=SPLIT_SAMPLE,
            echo=html.escape(echo),
        ),
        content_type=HTML_TYPE,
        headers={"Cache-Control": "no-store"},
    )


async def favicon(request: web.Request) -> web.Response:
    return web.Response(
        body=FAVICON,
        content_type="image/x-icon",
        headers={"Cache-Control": "public, max-age=86400"},
    )
