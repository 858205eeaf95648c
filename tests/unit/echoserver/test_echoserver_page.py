"""echoserver.page: the HTML page browsers get, and the favicon that takes no echo."""

from __future__ import annotations

import struct
import zlib
from html.parser import HTMLParser

from aiohttp.test_utils import TestClient

from echoserver.page import FAVICON, SPLIT_SAMPLE


class Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str | None]] = []
        self.text: list[str] = []
        self.pre = False
        self.pre_text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "link":
            self.links.append(dict(attrs))
        self.pre = tag == "pre"

    def handle_endtag(self, tag: str) -> None:
        self.pre = False if tag == "pre" else self.pre

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.pre:
            self.pre_text += data


async def test_a_browser_gets_a_page_with_the_echo_escaped(client: TestClient) -> None:
    response = await client.get(
        "/a<b>?q=1",
        headers={"Accept": "text/html,application/xhtml+xml", "X-Test": "<script>x</script>"},
    )
    assert response.status == 200
    assert response.content_type == "text/html"
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.text()
    assert "<script>x</script>" not in body
    parsed = Collect()
    parsed.feed(body)
    assert "X-Test: <script>x</script>" in parsed.pre_text  # shown, as text
    assert "GET /a%3Cb%3E?q=1 HTTP/1.1" in parsed.pre_text
    # An empty icon declared: the browser asks for no /favicon.ico on this page.
    assert {"rel": "icon", "href": "data:,"} in parsed.links
    assert f"for (let i = 0; i < {SPLIT_SAMPLE}; i++)" in body


async def test_json_text_and_other_methods_stay_as_they_were(client: TestClient) -> None:
    html = {"Accept": "text/html"}
    assert (await client.get("/?format=text", headers=html)).content_type == "text/plain"
    assert (await client.get("/?format=json", headers=html)).content_type == "application/json"
    assert (await client.post("/", headers=html)).content_type == "text/plain"
    assert (await client.get("/")).content_type == "text/plain"


async def test_the_favicon_is_a_cacheable_icon(client: TestClient) -> None:
    response = await client.get("/favicon.ico", headers={"Accept": "image/*"})
    assert response.status == 200
    assert response.content_type == "image/x-icon"
    assert "max-age=86400" in response.headers["Cache-Control"]
    data = await response.read()
    assert data == FAVICON
    # ICONDIR, then one ICONDIRENTRY pointing at a PNG that decodes to 16x16.
    reserved, kind, count = struct.unpack("<HHH", data[:6])
    width, height, _, _, planes, bpp, size, offset = struct.unpack("<BBBBHHII", data[6:22])
    assert (reserved, kind, count, width, height, planes, bpp) == (0, 1, 1, 16, 16, 1, 1)
    png = data[offset : offset + size]
    assert offset + size == len(data) and png.startswith(b"\x89PNG\r\n\x1a\n")
    assert struct.unpack(">II", png[16:24]) == (16, 16)
    idat = png.index(b"IDAT")
    (length,) = struct.unpack(">I", png[idat - 4 : idat])
    assert len(zlib.decompress(png[idat + 4 : idat + 4 + length])) == 16 * 3  # 16 rows
