"""Outlier ejection in the manner of Envoy's outlier detection: a peer that answers with
`consecutive_5xx` 5xx in a row, or `consecutive_gateway_failure` gateway errors in a row
(502, 503, 504, or no response at all: refused, reset, timed out), is ejected for
base_ejection_time times the times it was ejected (capped at max_ejection_time); at most
max_ejection_percent of the group's peers are out at once, but always at least one may be.
The multiplier falls back by one for every `interval` a peer stays in."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ambassador.balancer import Peer

log = logging.getLogger("ambassador.outlier")

GATEWAY = frozenset({502, 503, 504})
NO_RESPONSE = 502  # a failed attempt (connect, reset, timeout) counts as Envoy counts it


@dataclass(frozen=True)
class Outlier:
    consecutive_5xx: int = 0  # 0: off
    consecutive_gateway_failure: int = 0  # 0: off
    base_ejection_time: float = 30.0
    max_ejection_time: float = 300.0
    max_ejection_percent: int = 10
    interval: float = 10.0

    @property
    def enabled(self) -> bool:
        return bool(self.consecutive_5xx or self.consecutive_gateway_failure)


class Ejector:
    def __init__(self, settings: Outlier) -> None:
        self.settings = settings

    def result(self, peer: Peer, status: int, now: float, peers: list[Peer]) -> None:
        """A response with `status` (NO_RESPONSE for a failed attempt) from `peer`."""
        if status < 500:
            peer.consecutive_5xx = peer.consecutive_gateway = 0
            return
        peer.consecutive_5xx += 1
        peer.consecutive_gateway = peer.consecutive_gateway + 1 if status in GATEWAY else 0
        s = self.settings
        if s.consecutive_5xx and peer.consecutive_5xx >= s.consecutive_5xx:
            self.eject(peer, now, peers, f"{peer.consecutive_5xx} 5xx in a row")
        elif s.consecutive_gateway_failure and peer.consecutive_gateway >= (
            s.consecutive_gateway_failure
        ):
            self.eject(peer, now, peers, f"{peer.consecutive_gateway} gateway errors in a row")

    def eject(self, peer: Peer, now: float, peers: list[Peer], why: str) -> None:
        if peer.ejected_until > now:
            return
        s = self.settings
        out = sum(1 for p in peers if p.ejected_until > now)
        if out and (out + 1) * 100 > s.max_ejection_percent * len(peers):
            return  # max_ejection_percent: stays in (Envoy ejects at least one)
        if peer.ejected_until and s.interval > 0:  # in since then: the multiplier falls back
            peer.ejections = max(peer.ejections - int((now - peer.ejected_until) // s.interval), 0)
        peer.ejections += 1
        peer.ejections_total += 1
        seconds = min(s.base_ejection_time * peer.ejections, s.max_ejection_time)
        peer.ejected_until = now + seconds
        peer.ramp_from = peer.ejected_until if peer.slow_start else 0.0
        peer.consecutive_5xx = peer.consecutive_gateway = 0
        log.warning(
            "upstream %s (%s) ejected for %gs: %s (ejection %d)",
            peer.name,
            peer.upstream.url,
            seconds,
            why,
            peer.ejections,
        )
