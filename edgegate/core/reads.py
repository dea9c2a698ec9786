"""What a reader reports and the core decides on: a credential read, its kind, its direction.

Domain values, not device details: every reader family builds a ``CredentialRead`` and the
decision core, the gates and the journal read it, so it lives here and the core imports
nothing from the device layer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum


class CredentialKind(StrEnum):
    CARD = "card"
    FINGER = "finger"
    FACE = "face"
    PIN = "pin"
    QR = "qr"  # a visitor pass token (edgegate/contract/visitor_pass.py)


class Direction(StrEnum):
    IN = "in"
    OUT = "out"


@dataclass(frozen=True, slots=True)
class CredentialRead:
    """One credential presented at a reader.

    ``value`` is what the store is keyed on: a card's UID as uppercase hex, a fingerprint
    sensor's template slot, a person id for faces. ``t`` is ``time.perf_counter()`` when the
    last byte of the read arrived, so the daemon can measure its own latency.
    """

    kind: CredentialKind
    value: str
    reader: str
    direction: Direction = Direction.IN
    score: float | None = None
    t: float = field(default_factory=time.perf_counter)
    # More than one credential behind one decision (card+face doors), e.g. ("card", "face").
    factors: tuple[str, ...] = ()
