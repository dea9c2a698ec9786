"""Occupancy and the muster list: who is inside each area, from the archive.

A person is inside an area when their last passage in it (an ``access_granted`` event with a
direction; events carry their door's ``area``, older ones count under their door id) was
``in``, within the last ``hours`` and after the area's last ``presence_reset``. Passages are
ordered exactly as the doors order them (``edgegate/core/areas.py``: event time, then door,
then the door's seq), so the office's list and the doors' own presence agree.

The window matters: many sites have no exit readers at every door, and someone who entered
last week without badging out is not inside now. The default, 24 h, is the evacuation view;
the list is printable (the console's /muster page) the moment an emergency starts.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import column, select, table
from sqlalchemy.engine import Engine

from edgegate.core.areas import Passage, newer
from edgegate.store.journal import parse_rfc3339, rfc3339

# The archive's events and the master's people (central/store.py): only the columns read.
_events = table(
    "events", column("n"), column("door"), column("ts"), column("type"), column("payload")
)
_people = table("people", column("id"), column("name"))

DEFAULT_HOURS = 24.0
# The event types the list is made of: a new one of these may change it (the console's live
# list re-reads on them).
PASSAGES = ("access_granted", "presence_reset")


def _passage(door: str, ts_text: str, payload: dict[str, Any]) -> Passage | None:
    person, direction = payload.get("person"), payload.get("direction")
    if not isinstance(person, str) or direction not in ("in", "out"):
        return None
    area = payload.get("area") or door
    try:
        ts, seq = parse_rfc3339(ts_text), int(payload.get("seq") or 0)
    except (TypeError, ValueError):
        return None
    return Passage(person, str(area), direction, ts, door, seq)


def muster(
    engine: Engine,
    *,
    area: str | None = None,
    hours: float = DEFAULT_HOURS,
    now: float | None = None,
) -> dict[str, Any]:
    """``{"areas": [{"area", "occupancy", "people": [{person, name, since, door}]}], ...}``."""
    now = time.time() if now is None else now
    since = rfc3339(now - hours * 3600)
    t = _events
    query = (
        select(t.c.door, t.c.ts, t.c.type, t.c.payload)
        .where(t.c.ts >= since, t.c.type.in_(PASSAGES))
        .order_by(t.c.n)
    )
    inside: dict[str, dict[str, Passage]] = {}
    resets: dict[str, float] = {}
    with engine.connect() as conn:
        for door, ts_text, type_, payload_text in conn.execute(query):
            try:
                payload = json.loads(payload_text)
            except ValueError:
                continue
            if type_ == "presence_reset":
                where = str(payload.get("area") or door)
                at = parse_rfc3339(ts_text)
                resets[where] = max(resets.get(where, 0.0), at)
                continue
            passage = _passage(door, ts_text, payload)
            if passage is None or (area is not None and passage.area != area):
                continue
            people = inside.setdefault(passage.area, {})
            if newer(passage, people.get(passage.person_id)):
                people[passage.person_id] = passage
        ids = {p for people in inside.values() for p in people}
        names: dict[str, str] = {}
        if ids:
            rows = conn.execute(select(_people.c.id, _people.c.name).where(_people.c.id.in_(ids)))
            names = {str(i): str(n) for i, n in rows}
    areas = []
    for name in sorted(inside):
        cut = resets.get(name, float("-inf"))
        present = sorted(
            (p for p in inside[name].values() if p.state == "in" and p.ts > cut),
            key=lambda p: (p.ts, p.person_id),
        )
        areas.append(
            {
                "area": name,
                "occupancy": len(present),
                "people": [
                    {
                        "person": p.person_id,
                        "name": names.get(p.person_id) or "",
                        "since": rfc3339(p.ts),
                        "door": p.door,
                    }
                    for p in present
                ],
            }
        )
    return {
        "generated": rfc3339(now),
        "hours": hours,
        "areas": areas,
        "total": sum(a["occupancy"] for a in areas),
    }
