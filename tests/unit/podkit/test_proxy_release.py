"""A closed connection lets go of its transport at once, without the cyclic collector.

Each connection is in a reference cycle with its httptools parser (the parser holds the
callbacks); whatever the connection still points at waits for a full collection with it.
Behind a TLS transport that is OpenSSL's state and a 256 KiB read buffer per connection:
1 000 closed connections kept ~30 MB resident until the collector came by."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from proxy_fakes import FakeTransport, Harness

from podkit.proxy.tunnel import TunnelEnd

REQUEST = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@pytest.fixture
def no_cyclic_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.usefixtures("no_cyclic_gc")
async def test_a_closed_client_connection_releases_its_transport() -> None:
    h = Harness()
    await h.send(REQUEST)
    await h.reply(RESPONSE)
    assert h.received().endswith(b"ok")
    transport = weakref.ref(h.transport)
    h.client.connection_lost(None)
    h.transport.protocol = None  # what a real transport drops when it is done
    del h.transport
    assert transport() is None, gc.get_referrers(transport())


@pytest.mark.usefixtures("no_cyclic_gc")
async def test_a_closed_upstream_connection_releases_its_transport() -> None:
    h = Harness()
    await h.send(REQUEST)
    await h.reply(RESPONSE)
    conn, fake = h.upstream.conns.pop(), h.upstream.transports.pop()
    transport = weakref.ref(fake)
    conn.connection_lost(None)
    fake.protocol = None
    del fake
    assert transport() is None, gc.get_referrers(transport())


@pytest.mark.usefixtures("no_cyclic_gc")
async def test_a_closed_tunnel_end_releases_its_transport() -> None:
    near, far = TunnelEnd(), TunnelEnd()
    near.pair(far)  # the two ends point at each other: a cycle
    fake = FakeTransport(near)
    near.connection_made(fake)  # type: ignore[arg-type]
    transport = weakref.ref(fake)
    near.connection_lost(None)
    fake.protocol = None
    del fake
    assert transport() is None, gc.get_referrers(transport())
