from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.recording_upstream import RecordingUpstream


@pytest.fixture(scope="module")
def upstream() -> Iterator[RecordingUpstream]:
    """One recording upstream per module; each test clears it first."""
    with RecordingUpstream() as recorder:
        yield recorder
