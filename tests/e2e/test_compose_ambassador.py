"""The ambassador pod of docker-compose.yml, up for real: `ambassador` (the pod's entry point
on :8080) in front of `server1` (weight 3) and `server2`, found by their compose names.
Requests from the host show the 3:1 split by the server that answered (X-Echo-Server).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from html.parser import HTMLParser

import pytest
from support import images
from support.compose import Project, project_up
from support.processes import http_get, served_by
from support.tools import require_binary

# The first test also builds the images (minutes on a fresh machine, seconds when cached);
# compose has its own, much shorter bounds.
pytestmark = pytest.mark.timeout(600)

SERVICES = ("ambassador", "server1", "server2")


class AmbassadorPod(Project):
    def split(self, n: int) -> Counter[str]:
        """n GETs from the host on one kept-alive connection; who answered each."""
        return served_by(int(self.env["AMBASSADOR_HOST_PORT"]), n)

    def admin(self, path: str) -> tuple[int, str]:
        return http_get(f"http://127.0.0.1:{self.env['AMBASSADOR_ADMIN_HOST_PORT']}{path}", 5)


@pytest.fixture(scope="module")
def ambassador_images(demo_images: dict[str, str]) -> dict[str, str]:
    """demo_images checks for Compose v2 (and builds the adapter pod's images)."""
    return images.build("ambassador", "echoserver")


@pytest.fixture(scope="module")
def pod(ambassador_images: dict[str, str]) -> Iterator[AmbassadorPod]:
    """`docker compose up -d --wait ambassador server1 server2`, its own project, free ports."""
    with project_up(
        AmbassadorPod,
        "ambassador",
        ambassador_images,
        ["AMBASSADOR_HOST_PORT", "AMBASSADOR_ADMIN_HOST_PORT"],
        SERVICES,
    ) as pod:
        yield pod


def test_eight_requests_split_6_to_2(pod: AmbassadorPod) -> None:
    assert pod.split(8) == {"server1": 6, "server2": 2}


def test_pod_wiring(pod: AmbassadorPod) -> None:
    ambassador, server1, server2 = (pod.inspect(service) for service in SERVICES)
    for container in (ambassador, server1, server2):
        assert container["HostConfig"]["ReadonlyRootfs"] is True
        assert container["State"]["Health"]["Status"] == "healthy"
    # Only the ambassador is published; the servers are reached through it.
    published = {
        port for port, bindings in ambassador["NetworkSettings"]["Ports"].items() if bindings
    }
    assert published == {"8080/tcp", "9000/tcp"}
    for server in (server1, server2):
        assert not any(server["NetworkSettings"]["Ports"].values())

    assert pod.admin("/readyz")[0] == 200
    status, text = pod.admin("/upstreams")
    assert status == 200
    peers = json.loads(text)
    assert [(p["server"], p["weight"], p["healthy"]) for p in peers] == [
        ("http://server1:8080", 3, True),
        ("http://server2:8080", 1, True),
    ]


class SplitTable(HTMLParser):
    """The rows of the demo page's #split table once its script has filled it in."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = False
        self.done = False
        self.cells: list[str] = []
        self.rows: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table" and found.get("id") == "split":
            self.inside, self.done = True, found.get("data-done") == "true"
        elif self.inside and tag == "tr":
            self.cells = []
            self.rows.append(self.cells)

    def handle_endtag(self, tag: str) -> None:
        self.inside = self.inside and tag != "table"

    def handle_data(self, data: str) -> None:
        if self.inside and self.rows:
            self.cells.append(data)


def test_a_browser_sees_the_3_to_1_split(pod: AmbassadorPod) -> None:
    """Chromium loads the demo page through the ambassador and runs its script: the 20
    requests it makes split 15:5, and no favicon request took a turn in between."""
    chromium = require_binary("chromium")
    url = f"http://127.0.0.1:{pod.env['AMBASSADOR_HOST_PORT']}/demo"
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        result = subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",  # root in CI; the page is our own
                "--disable-gpu",
                f"--user-data-dir={profile}",
                "--virtual-time-budget=15000",  # run the page's fetches to the end
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 0, result.stderr[-2000:]
    table = SplitTable()
    table.feed(result.stdout)
    assert table.done, result.stdout[-2000:]
    split = {server: n for server, n, *_ in table.rows}
    assert split == {"server1": "15 of 20", "server2": "5 of 20"}
