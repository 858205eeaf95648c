"""podkit.memory: freed heap pages go back to the kernel on a trim."""

from __future__ import annotations

import asyncio
import platform

import pytest

from podkit import memory


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_a_trim_returns_freed_pages_from_the_middle_of_the_heap() -> None:
    trim = memory.malloc_trim()
    assert trim is not None
    # OpenSSL-buffer-sized blocks, each pinned in place by a small malloc'd survivor after
    # it (600 bytes: above pymalloc's 512, so from the same heap, not pymalloc's arenas), so
    # the freed ones sit in the middle of the heap, where free() cannot give them back and
    # only malloc_trim(0) reaches them.
    blocks, pins = [], []
    for _ in range(3000):
        blocks.append(bytearray(17000))
        blocks[-1][::4096] = b"x" * len(blocks[-1][::4096])  # touched: resident
        pins.append(bytearray(600))
    blocks.clear()
    freed = rss_kib()  # freed, but still resident
    trim()
    assert freed - rss_kib() > 25 * 1024  # ~50 MiB were freed; the trim gave them back
    assert len(pins) == 3000


def test_trim_forever_trims_until_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(memory, "malloc_trim", lambda: lambda: calls.append(1))

    async def run() -> None:
        task = asyncio.ensure_future(memory.trim_forever(interval=0.01))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    assert len(calls) >= 2


def test_without_malloc_trim_the_task_ends_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "malloc_trim", lambda: None)
    asyncio.run(asyncio.wait_for(memory.trim_forever(interval=0.01), timeout=1))
