"""What else of the office names a person being erased, and what it becomes (part of
``services/erasure.py``; docs/central.md, "Erasing a person").

Beyond the master, the archive, alarms, commands and hosted visits (``erasure.py``), an
operator's free text may name the person inside a sentence ("Alice Martin lost her card at
the gym"), and a few tables hold copies of their data:

* free text: alarm notes, visits' reasons, maintenance findings and actions, a door's
  ``responsible``, the reasons and notes inside command records and audit entries;
* a door's offer of its local people (``local_offers``): the person and their cards leave it;
* notifications (``outbox``), queued or sent: their bodies are rewritten (a webhook is signed
  when it is sent, so a rewritten pending body goes out rewritten and correctly signed);
* the audit log: entries naming the person are redacted in place; the hash chain stays
  verifiable because the erasure's own entry lists them (``audit.verify``).

A row is touched when it names the person by id, full display name or credential value (a
whole word, any case: ``edgegate.contract.erasure``), or belongs to them (a note on their
alarm, an audit entry whose target is them). In a touched row, the parts of their name count
too ("... Alice called back"), their values become ``erased`` and every name the pseudonym.
``rewrites`` is pure over the rows it reads: the preview counts what the erasure writes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, ColumnElement, Connection, Table, and_, func, or_, select, update

from edgegate.central.schema.alarms import alarm_history, alarms, equipment, maintenance_log
from edgegate.central.schema.console import audit_log, outbox
from edgegate.central.schema.local_people import local_offers
from edgegate.central.schema.master import commands
from edgegate.central.schema.visitors import visits, zone_approvals
from edgegate.contract import erasure as rules


@dataclass(frozen=True, slots=True)
class Subject:
    """The person being erased as free text names them. Its patterns are compiled once, when
    it is made (one per erasure or preview), not for every row the sweep reads."""

    person: str
    name: str
    pseudonym: str
    values: frozenset[str]
    _values_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    _names_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    _needles_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    _mapping: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # A frozen dataclass sets its derived fields through object.__setattr__.
        derived = {
            "_values_re": rules.text_pattern(self.values),
            "_names_re": rules.text_pattern(rules.name_terms(self.person, self.name)),
            "_needles_re": rules.text_pattern(self.needles()),
            "_mapping": rules.event_mapping(self.person, self.pseudonym, self.values, None),
        }
        for key, value in derived.items():
            object.__setattr__(self, key, value)

    def needles(self) -> list[str]:
        """Strings whose presence (any case) makes a row a candidate."""
        return sorted({t for t in (self.person, self.name.strip(), *self.values) if t})

    def text(self, text: str) -> str:
        """``text`` with their values ``erased`` and every name of them the pseudonym."""
        out = rules.scrub_text(text, self._values_re, rules.ERASED)
        return rules.scrub_text(out, self._names_re, self.pseudonym)

    def json(self, value: Any) -> Any:
        """Decoded JSON: whole strings first, then free text inside (both
        ``rules.replace_strings``)."""
        return rules.replace_strings(rules.replace_strings(value, self._mapping), self.text)

    def json_text(self, text: str) -> str:
        """A JSON text rewritten by ``json``; a text that is not JSON (an e-mail's body, an
        audit entry's target) as free text, its whole-string id or value mapped first."""
        try:
            decoded = json.loads(text)
        except ValueError:
            decoded = None
        if not isinstance(decoded, dict | list):
            return str(self.json(text))
        new = self.json(decoded)
        return text if new == decoded else json.dumps(new, separators=(",", ":"))

    def names(self, text: str) -> bool:
        """Whether ``text`` names them by id, full name or value, as a whole word."""
        return self._needles_re is not None and self._needles_re.search(text) is not None


@dataclass(frozen=True, slots=True)
class Rewrite:
    """One row's new ``values``; ``key``: the row's primary key, column name to value."""

    table: Table
    key: dict[str, Any]
    values: dict[str, Any]


def _mentions(subj: Subject, *cols: Column[Any]) -> ColumnElement[bool]:
    """SQL prefilter: a column contains one of the needles, any case (the whole-word check
    is ``Subject.names``, in Python)."""
    return or_(
        *(func.lower(c).contains(n.lower(), autoescape=True) for c in cols for n in subj.needles())
    )


def _rows(
    conn: Connection,
    subj: Subject,
    table: Table,
    *cols: Column[Any],
    linked: ColumnElement[bool] | None = None,
    rewrite: Callable[[str], str] | None = None,
) -> list[Rewrite]:
    """Rows of ``table`` naming the person in ``cols`` (or ``linked`` to them), rewritten
    column by column with ``rewrite`` (default: as free text); only rows that change."""
    rewrite = rewrite or subj.text
    keys = list(table.primary_key.columns)
    where = _mentions(subj, *cols)
    if linked is not None:
        where = or_(where, linked)
    out = []
    for row in conn.execute(select(*keys, *cols).where(where)):
        key = {c.name: v for c, v in zip(keys, row[: len(keys)], strict=True)}
        old = dict(zip((c.name for c in cols), row[len(keys) :], strict=True))
        if linked is None and not any(isinstance(v, str) and subj.names(v) for v in old.values()):
            continue
        new = {k: rewrite(v) for k, v in old.items() if v}
        changed = {k: v for k, v in new.items() if v != old[k]}
        if changed:
            out.append(Rewrite(table, key, changed))
    return out


def _offers(conn: Connection, subj: Subject) -> list[Rewrite]:
    """A door's offer of its local people: the person (by id, or by exact name) and the
    cards they hold leave it; the offer's ``total`` counts them out."""
    rows = conn.execute(
        select(
            local_offers.c.site,
            local_offers.c.door,
            local_offers.c.people,
            local_offers.c.credentials,
            local_offers.c.total,
        ).where(_mentions(subj, local_offers.c.people, local_offers.c.credentials))
    )
    out = []
    name = subj.name.strip().lower()
    for site, door, people_text, creds_text, total in rows:
        people = json.loads(people_text)
        gone = {
            p["id"]
            for p in people
            if p.get("id") == subj.person or (name and p.get("name", "").strip().lower() == name)
        }
        creds = json.loads(creds_text)
        kept_creds = [
            c for c in creds if c.get("person") not in gone and c.get("value") not in subj.values
        ]
        if not gone and len(kept_creds) == len(creds):
            continue
        kept = [p for p in people if p["id"] not in gone]
        values = {
            "people": json.dumps(kept, separators=(",", ":")),
            "credentials": json.dumps(kept_creds, separators=(",", ":")),
            "total": max(0, total - len(gone)),
        }
        out.append(Rewrite(local_offers, {"site": site, "door": door}, values))
    return out


AUDIT = "audit entries"
COMMANDS = "commands"


def rewrites(conn: Connection, subj: Subject) -> dict[str, list[Rewrite]]:
    """Every row of these tables the erasure changes, by what the preview calls them."""
    theirs = select(alarms.c.id).where(alarms.c.person == subj.person).scalar_subquery()
    hosted = visits.c.host.in_([subj.person, subj.pseudonym])
    return {
        "alarm notes": _rows(
            conn, subj, alarm_history, alarm_history.c.note,
            linked=alarm_history.c.alarm_id.in_(theirs),
        ),
        "visit texts": _rows(conn, subj, visits, visits.c.reason, visits.c.department,
                             linked=hosted)
        + _rows(conn, subj, zone_approvals, zone_approvals.c.approved_by),
        "maintenance notes": _rows(
            conn, subj, maintenance_log, maintenance_log.c.findings, maintenance_log.c.action
        ),
        "doors' responsible": _rows(conn, subj, equipment, equipment.c.responsible),
        "offers of local people": _offers(conn, subj),
        "notifications": _rows(conn, subj, outbox, outbox.c.body, rewrite=subj.json_text),
        # The one writer of command records: their id as a whole string, names and values
        # inside the texts (the erasure's plan counts them as ``commands``).
        COMMANDS: _rows(conn, subj, commands, commands.c.message, rewrite=subj.json_text),
        AUDIT: _rows(
            conn, subj, audit_log, audit_log.c.target, audit_log.c.detail,
            linked=audit_log.c.target.in_(sorted({subj.person, *subj.values})),
            rewrite=subj.json_text,
        ),
    }  # fmt: skip


def apply(conn: Connection, found: dict[str, list[Rewrite]]) -> dict[str, int]:
    """Write ``rewrites``' rows, but the audit entries (``audit.redact``, by the caller, with
    the erasure's own entry). Returns how many rows of each changed."""
    counts = {}
    for what, rows in found.items():
        if what == AUDIT:
            continue
        for r in rows:
            where = and_(*(r.table.c[k] == v for k, v in r.key.items()))
            conn.execute(update(r.table).where(where).values(**r.values))
        counts[_slug(what)] = len(rows)
    return counts


def _slug(what: str) -> str:
    return re.sub(r"\W+", "_", what).strip("_")
