"""The rule attributes of a person (groups, zones, host, exit hold, validity), owned by the
office.

The doors decide on ``people.attrs`` (docs/rules.md). The office is the only place they are
set on a site with an office: a change here is a ``put_person`` op carrying the whole person
(the doors' updates and snapshots are absolute), built from the master's current row, so a
change to one attribute keeps the others. The office CLI (``edgegate central people set``)
and the visitors service (``edgegate.central.services.visitors``) both build their ops here.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from enum import Enum

from edgegate.central import store
from edgegate.contract import messages as m


class _Keep(Enum):
    KEEP = "keep"


# Marks "leave as it is" apart from None ("remove the attribute / open window").
KEEP = _Keep.KEEP


@dataclass(frozen=True, slots=True)
class RuleChange:
    """What to change; every field left at ``KEEP`` stays as the master has it."""

    groups: list[str] | _Keep | None = KEEP
    zones: list[str] | _Keep | None = KEEP  # None: every zone (the key is removed)
    host: str | _Keep | None = KEEP
    settled: bool | _Keep | None = KEEP  # False holds the person on exit
    valid_from: float | _Keep | None = KEEP
    valid_until: float | _Keep | None = KEEP


_ATTR_KEYS = ("groups", "zones", "host", "settled")


def person_ops(conn: sqlite3.Connection, person_id: str, change: RuleChange) -> list[m.Op]:
    """The ``put_person`` op applying ``change`` to the master's person. CentralError when
    the person (or the host named) is not in the master."""
    current = store.get_person(conn, person_id)
    if current is None:
        raise store.CentralError(f"no person {person_id!r}; add the person first")
    host = change.host
    if isinstance(host, str) and store.get_person(conn, host) is None:
        raise store.CentralError(f"host {host!r} is not a person of the site")
    data = current.model_dump()
    attrs = dict(data.get("attrs") or {})
    for key in _ATTR_KEYS:
        value = getattr(change, key)
        if value is KEEP:
            continue
        if value is None:
            attrs.pop(key, None)
        else:
            attrs[key] = value
    data["attrs"] = attrs
    for key in ("valid_from", "valid_until"):
        value = getattr(change, key)
        if value is not KEEP:
            data[key] = value
    try:
        person = m.PersonMsg(**data)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise store.CentralError(f"{person_id}: {exc}") from None
    return [m.PutPerson(op="put_person", person=person)]
