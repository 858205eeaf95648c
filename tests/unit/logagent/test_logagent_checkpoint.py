"""Positions written atomically and read back; a damaged file is ignored, not fatal."""

from __future__ import annotations

from pathlib import Path

import pytest

from logagent.checkpoint import FILENAME, Checkpoint, Position


def test_round_trip(tmp_path: Path) -> None:
    checkpoint = Checkpoint(tmp_path)
    assert not checkpoint.exists() and checkpoint.load() == {}
    positions = [Position("/a.log", 1, 2, "ab", 256, 100), Position("/b.log", 1, 3, "cd", 3, 0)]
    assert checkpoint.save(positions)
    assert not checkpoint.save(positions)  # unchanged: not written again
    assert checkpoint.writes == 1
    loaded = Checkpoint(tmp_path).load()
    assert loaded == {(1, 2): positions[0], (1, 3): positions[1]}
    assert not (tmp_path / (FILENAME + ".tmp")).exists()


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b'{"version":1,"fi', id="torn"),
        pytest.param(b'{"version":1,"files":[{"path":"/a"}]}', id="missing-fields"),
        pytest.param(b"[]", id="wrong-shape"),
    ],
)
def test_damaged_checkpoint_is_ignored(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / FILENAME).write_bytes(content)
    assert Checkpoint(tmp_path).load() == {}
    assert "ignoring unreadable checkpoint" in caplog.text
