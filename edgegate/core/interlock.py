"""Interlock (mantrap): one door may release only while its peer is closed and locked.

Pure. The peer's state is what the door last heard of it (over the broker when the two doors
are on two Pis, or read directly when one Pi drives both locks) and when it heard it
(monotonic seconds). An unknown or stale peer state refuses: an interlock that cannot see its
other half fails closed. A fire release is not asked here: emergency overrides the interlock
before this rule is reached (docs/rules.md).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PeerState:
    """The peer door's ``state`` as last heard: lock, contact, at (monotonic seconds)."""

    lock: str
    contact: str
    at: float
    mode: str = "normal"


def interlock_allows(peer: PeerState | None, mono_now: float, stale_seconds: float) -> bool:
    """True when this door may release now: the peer is known, fresh, closed and locked."""
    if peer is None or mono_now - peer.at > stale_seconds or mono_now < peer.at:
        return False
    return peer.lock == "locked" and peer.contact != "open"
