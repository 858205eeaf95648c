"""Many clients' mixed traffic through the sidecar over TLS: every answer belongs to its
request, WebSockets included (an upgraded connection must never serve another request)."""

from __future__ import annotations

from support.mixed_traffic import KINDS, mixed_traffic
from support.sidecar_fixtures import (  # noqa: F401 - fixtures, used by name
    Sidecar,
    echo_fixture,
    pki_fixture,
    sidecar_fixture,
    start_echo_fixture,
    start_sidecar_fixture,
)


async def test_every_answer_belongs_to_its_request(sidecar: Sidecar) -> None:
    assert sidecar.tls is not None
    base = f"https://localhost:{sidecar.port}"
    outcome = await mixed_traffic(base, clients=12, requests=40, tls=sidecar.tls)
    assert outcome.failures == [], outcome.failures[:5]
    assert set(outcome.counts) == set(KINDS)
    assert sidecar.service.proc is not None and sidecar.service.proc.poll() is None
    assert "Traceback" not in sidecar.log()
