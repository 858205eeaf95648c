"""Back-pressure, one piece for every direction: a transport's reading is paused while any
reason to pause it holds (the other side's write buffer is full, a pipelined request waits
its turn, an upstream is still connecting...) and resumed when the last one clears.

Without it a slow reader makes the proxy buffer without bound (uvicorn's flow_control.py).
"""

from __future__ import annotations

import asyncio
from typing import final

# Reasons, as bits: a connection may be held for several at once.
PEER_FULL = 1  # the transport its bytes are written to is over its high-water mark
PIPELINED = 2  # a request waits behind the one being answered
UPGRADE = 4  # an upgrade request waits for the upstream's answer
CONNECTING = 8  # the request's upstream connection is not there yet
REFUSED = 16  # a request was refused: nothing more is read before the connection closes


@final
class Flow:
    __slots__ = ("reasons", "transport")

    def __init__(self, transport: asyncio.Transport | None = None) -> None:
        self.transport = transport
        self.reasons = 0

    def pause(self, reason: int) -> bool:
        """Hold reading for `reason`; True when this paused the transport."""
        was = self.reasons
        self.reasons = was | reason
        if not was and self.transport is not None:
            self.transport.pause_reading()
            return True
        return False

    def resume(self, reason: int) -> bool:
        """Clear `reason`; True when that resumed the transport."""
        if not self.reasons & reason:
            return False
        self.reasons &= ~reason
        if not self.reasons and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()
            return True
        return False
