"""Bulk import of people and cards from CSV (docs/central.md has the format).

The whole file is checked before anything is written: one bad row means no change at all,
with one line per problem naming the CSV line. An import only adds and updates; it never
removes people missing from the file, never re-enables a disabled person or a disabled (lost)
card, and a row identical to the master produces no op, so importing the same file twice
publishes nothing the second time.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy import Connection

from edgegate.central.engine import reads
from edgegate.central.store import all_people, card_owners
from edgegate.contract import messages as m
from edgegate.store.credentials import CredentialError, normalise_card

COLUMNS = ("person", "name", "card", "groups", "valid_from", "valid_until")


@dataclass
class ImportPlan:
    ops: list[m.Op] = field(default_factory=list)
    rows: int = 0
    people_new: int = 0
    people_changed: int = 0
    cards_new: int = 0
    errors: list[str] = field(default_factory=list)


def _time(text: str) -> float | None:
    """ISO 8601 date or date-time; without a zone it is this machine's local time."""
    if not text:
        return None
    return datetime.fromisoformat(text).astimezone().timestamp()


def _groups(text: str) -> list[str]:
    return [g for g in text.replace(";", " ").replace(",", " ").split() if g]


def read_rows(text: str) -> tuple[list[tuple[int, dict[str, str]]], list[str]]:
    """(line number, row) pairs and header problems."""
    # newline="": the csv module handles \r\n and quoted newlines itself.
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        if "person" not in header:
            return [], ["line 1: the header must name a 'person' column (see docs/central.md)"]
        unknown = [h for h in header if h not in COLUMNS]
        if unknown:
            known = ", ".join(COLUMNS)
            return [], [f"line 1: unknown column(s) {', '.join(unknown)}; known: {known}"]
        reader.fieldnames = header
        for row in reader:
            if None in row:
                return rows, [f"line {reader.line_num}: more fields than the header has"]
            rows.append((reader.line_num, {k: (v or "").strip() for k, v in row.items()}))
    except csv.Error as exc:
        return rows, [f"line {reader.line_num}: not CSV: {exc}"]
    return rows, []


@reads
def plan_import(
    conn: Connection,
    text: str,
    progress: Callable[[Iterable[tuple[int, dict[str, str]]]], Iterable] | None = None,
) -> ImportPlan:
    """The ops that bring the master to the file's content (nothing is written here)."""
    plan = ImportPlan()
    rows, plan.errors = read_rows(text)
    if plan.errors:
        return plan
    people = all_people(conn)
    owners = card_owners(conn)
    planned: dict[str, m.PersonMsg] = {}
    cards: list[tuple[str, m.CredentialMsg]] = []
    for line, row in progress(rows) if progress else rows:
        plan.rows += 1
        try:
            person, card = _row(row, people.get(row["person"]), planned.get(row["person"]))
        except (ValueError, OverflowError, ValidationError, CredentialError) as exc:
            plan.errors.append(f"line {line}: {_reason(exc)}")
            continue
        planned[person.id] = person
        if card is None:
            continue
        owner = owners.get(card.value)
        if owner is not None and owner != person.id:
            plan.errors.append(f"line {line}: card {card.value} already belongs to {owner}")
        elif owner is None:
            owners[card.value] = person.id
            cards.append((person.id, card))
    if plan.errors:
        return plan
    # People first, then cards: two long runs the master writes with one executemany each.
    # model_construct: both were validated above, the op wrapper adds nothing to check.
    for pid, person in planned.items():
        old = people.get(pid)
        if old is None or old != person.model_dump(exclude_defaults=True):
            plan.ops.append(m.PutPerson(op="put_person", person=person))
            plan.people_new += old is None
            plan.people_changed += old is not None
    for _pid, card in cards:
        plan.ops.append(m.PutCredential(op="put_credential", credential=card))
    plan.cards_new = len(cards)
    return plan


def _row(
    row: dict[str, str], existing: dict | None, earlier: m.PersonMsg | None
) -> tuple[m.PersonMsg, m.CredentialMsg | None]:
    base = earlier.model_dump() if earlier else dict(existing or {})
    data: dict = {**base, "id": row["person"]}
    attrs = dict(data.get("attrs") or {})
    if row.get("name"):
        data["name"] = row["name"]
    if row.get("groups"):
        attrs["groups"] = _groups(row["groups"])
    data["attrs"] = attrs
    for key in ("valid_from", "valid_until"):
        if row.get(key):
            data[key] = _time(row[key])
    person = m.PersonMsg.model_validate(data)
    card = None
    if row.get("card"):
        card = m.CredentialMsg(kind="card", value=normalise_card(row["card"]), person=person.id)
    return person, card


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where}: {first['msg']}"
    return str(exc)
