"""Presence shared by the doors of an area: merging what a peer door saw into what we know.

Each door keeps each person's last passage (in/out, when) per area in its own store and
publishes every grant as an event; a door of the same area applies its peers' grants to its
own presence table, so anti-passback holds across the area's doors without the office.

Conflicts resolve deterministically, the same way on every door whatever order the messages
arrive in: the later passage (event time) wins; at equal times the passage of the door whose
id sorts last wins, and within one door the later of its events (its ``seq``). Every door
therefore ends with the same presence once it has heard the same passages (a last-writer-wins
register keyed by (ts, door, seq), a total order over an area's passages).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Passage:
    """A person's passage through a door of an area: ``state`` "in" or "out" at ``ts``."""

    person_id: str
    area: str
    state: str
    ts: float
    door: str
    seq: int = 0

    def key(self) -> tuple[float, str, int]:
        return (self.ts, self.door, self.seq)


def newer(incoming: Passage, known: Passage | None) -> bool:
    """True when ``incoming`` should replace ``known`` as the person's presence."""
    return known is None or incoming.key() > known.key()


def occupancy(presence: dict[str, Passage]) -> int:
    """People whose last passage in the area was "in"."""
    return sum(1 for p in presence.values() if p.state == "in")
