"""Interlock (mantrap): one door may release only while its peer is closed and locked.

Pure. The peer's state is what the door last heard of it over the broker (its retained
``state`` message) and whether the peer is reachable now: its ``availability`` is ``online``
and this door's own link to the broker is up. A door publishes its state on every change, so
while both are connected the last state heard is the peer's state now; the moment either
link drops the state is unknown. An unknown peer refuses: an interlock that cannot see its
other half fails closed. A fire release is not asked here: emergency overrides the interlock
before this rule is reached (docs/rules.md).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PeerState:
    """The peer door's ``state`` as last heard, and whether it is heard now."""

    lock: str
    contact: str
    reachable: bool = True
    mode: str = "normal"


def interlock_allows(peer: PeerState | None) -> bool:
    """True when this door may release now: the peer is reachable, closed and locked."""
    if peer is None or not peer.reachable:
        return False
    return peer.lock == "locked" and peer.contact == "closed"
