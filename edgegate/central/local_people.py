"""A door's own people at the office: offers, review, import (docs/central.md).

A door enrolled on its own (a technician, before the door joined an office) refuses a
snapshot that would replace those people unless the office says so explicitly
(``replace_local`` in the snapshot). It then offers them (``LocalPeople``, cards only) and
this module keeps the latest offer per door. An operator reviews it (``edgegate central
doors import-local DOOR``) and either imports the chosen people into the master (as ordinary
versions: the office signs them from then on) or discards them; either way the door's next
snapshot carries ``replace_local`` and the door takes the office's set.

Written with SQLAlchemy Core on the office's ``metadata`` so it runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from edgegate.central.engine import make_engine, reading
from edgegate.central.schema import metadata
from edgegate.central.schema.local_people import local_offers
from edgegate.contract import messages as m

PENDING, IMPORTED, DISCARDED = "pending", "imported", "discarded"


@dataclass(frozen=True)
class Offer:
    site: str
    door: str
    received: float
    total: int
    people: list[m.PersonMsg]
    credentials: list[m.CredentialMsg]
    status: str
    decided: float | None
    decided_by: str

    def as_json(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "door": self.door,
            "received": self.received,
            "total": self.total,
            "status": self.status,
            "decided": self.decided,
            "decided_by": self.decided_by,
            "people": [p.model_dump() for p in self.people],
            "credentials": [c.model_dump(exclude={"data"}) for c in self.credentials],
        }


def _offer(row: Any) -> Offer:
    return Offer(
        site=row.site,
        door=row.door,
        received=row.received,
        total=row.total,
        people=[m.PersonMsg.model_validate(p) for p in json.loads(row.people)],
        credentials=[m.CredentialMsg.model_validate(c) for c in json.loads(row.credentials)],
        status=row.status,
        decided=row.decided,
        decided_by=row.decided_by,
    )


class LocalOffers:
    """The offers table (one engine; every method is one short transaction)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        metadata.create_all(engine, tables=[local_offers], checkfirst=True)

    @classmethod
    def open(cls, db: str | Path) -> LocalOffers:
        return cls(make_engine(db))

    def record(self, offer: m.LocalPeople, now: float) -> bool:
        """Keep the door's latest offer; True when it is new or changed. An offer already
        decided stays decided: the door only offers again because its next snapshot has not
        reached it yet."""
        people = json.dumps([p.model_dump() for p in offer.people], separators=(",", ":"))
        creds = json.dumps(
            [c.model_dump(exclude={"data"}) for c in offer.credentials], separators=(",", ":")
        )
        key = (local_offers.c.site == offer.site) & (local_offers.c.door == offer.door)
        with self.engine.begin() as conn:
            row = conn.execute(select(local_offers).where(key)).first()
            if row is None:
                conn.execute(
                    local_offers.insert().values(
                        site=offer.site,
                        door=offer.door,
                        received=now,
                        total=offer.total,
                        people=people,
                        credentials=creds,
                        status=PENDING,
                    )
                )
                return True
            if row.status != PENDING:
                return False
            conn.execute(
                local_offers.update()
                .where(key)
                .values(received=now, total=offer.total, people=people, credentials=creds)
            )
            return (row.people, row.credentials) != (people, creds)

    def get(self, site: str, door: str) -> Offer | None:
        key = (local_offers.c.site == site) & (local_offers.c.door == door)
        with reading(self.engine) as conn:
            row = conn.execute(select(local_offers).where(key)).first()
        return None if row is None else _offer(row)

    def all(self) -> list[Offer]:
        with reading(self.engine) as conn:
            rows = conn.execute(
                select(local_offers).order_by(local_offers.c.site, local_offers.c.door)
            ).all()
        return [_offer(r) for r in rows]

    def decide(self, site: str, door: str, status: str, by: str, now: float | None = None) -> None:
        if status not in (IMPORTED, DISCARDED):
            raise ValueError(status)
        key = (local_offers.c.site == site) & (local_offers.c.door == door)
        with self.engine.begin() as conn:
            conn.execute(
                local_offers.update()
                .where(key)
                .values(status=status, decided=now or time.time(), decided_by=by)
            )

    def replace_allowed(self, site: str, door: str) -> bool:
        """May the door's snapshot replace its own people (``replace_local``)?"""
        offer = self.get(site, door)
        return offer is not None and offer.status != PENDING

    def close(self) -> None:
        self.engine.dispose()
