"""Erasing a person's personal data on request (docs/central.md, "Erasing a person").

One service for the CLI (``central people erase``), the REST API and the console:

* ``plan``: what the office holds about the person (shown before the operator confirms);
* ``erase``: the person leaves the master in a new signed version (every door drops them
  with their cards, fingerprint templates and face encodings), their ops leave the version
  log, their rows in the event archive, alarms and command records name a random pseudonym
  instead (their credential values become ``erased``), the visits they hosted name the
  pseudonym, the visits they made are erased (``VisitDesk.erase``), and one audit entry says
  who erased whom (by pseudonym), when and why.

The events themselves stay (door, time, type, result, reason): the site keeps its security
record, without the person. The rewriting rules are pure (``edgegate/central/forget.py``).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Connection, bindparam, delete, func, or_, select, update

from edgegate.central import archive, forget, store
from edgegate.central import erasure_ledger as ledger
from edgegate.central.schema.alarms import alarms
from edgegate.central.schema.archive import events
from edgegate.central.schema.master import credentials, people, versions
from edgegate.central.schema.visitors import host_contacts, visit_notices, visits
from edgegate.central.services import Actor, Office, audit
from edgegate.central.services import erasure_sweep as sweep
from edgegate.central.services.credentials import ChangeRefused
from edgegate.contract import messages as m

log = structlog.get_logger(__name__)

REASON_MAX = 500
_BATCH = 500


@dataclass(frozen=True, slots=True)
class ErasurePlan:
    """What the office holds about a person: counts only (the preview names no data)."""

    person: str
    in_master: bool
    credentials: dict[str, int] = field(default_factory=dict)  # kind -> how many
    events: int = 0
    alarms: int = 0
    commands: int = 0
    hosted_visits: int = 0
    visits: tuple[str, ...] = ()  # visits they made as a visitor (by id or by name)
    # free text, offers, notifications and audit entries naming them (erasure_sweep)
    elsewhere: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        creds = ", ".join(f"{n} {k}" for k, n in sorted(self.credentials.items())) or "none"
        return [
            f"person {self.person}: "
            + ("in the master" if self.in_master else "not in the master (removed earlier)"),
            "doors: a signed version removes them and rewrites them out of every door's journal"
            + ("" if self.in_master else " (the doors' journals still name them)"),
            f"credentials: {creds}",
            f"archived events naming them: {self.events}",
            f"alarms naming them: {self.alarms}",
            f"commands naming them: {self.commands}",
            f"visits they hosted: {self.hosted_visits}",
            f"visits they made: {len(self.visits)}"
            + (f" ({', '.join(self.visits)})" if self.visits else ""),
            *(f"{what} naming them: {n}" for what, n in self.elsewhere.items()),
        ]


@dataclass(frozen=True, slots=True)
class Erasure:
    pseudonym: str
    plan: ErasurePlan
    versions: list[int]
    published: bool | None  # None: the caller publishes (the CLI prints as it goes)
    history: int  # old versions whose ops were rewritten

    @property
    def version(self) -> int | None:
        return self.versions[-1] if self.versions else None


def subject(office: Office, who: str) -> str:
    """The person id ``who`` means: a person of the master by id, else by display name
    (one match only), else an id the archive or the visits still name (a person removed
    earlier). Raises ChangeRefused when nothing or several people match."""
    who = who.strip()
    if not who:
        raise ChangeRefused("give the person id or name")
    with store.reading(office.master()) as conn:
        if conn.execute(select(people.c.id).where(people.c.id == who)).first():
            return who
        named = list(
            conn.execute(
                select(people.c.id).where(func.lower(people.c.name) == who.lower()).limit(5)
            ).scalars()
        )
        if len(named) == 1:
            return named[0]
        if named:
            raise ChangeRefused(
                f"{len(named)} people are named {who!r}: give the id ({', '.join(named)})"
            )
        if _named_anywhere(conn, who):
            return who
    raise ChangeRefused(f"no person {who!r} (by id or name) and nothing names that id")


def _named_anywhere(conn: Connection, person: str) -> bool:
    for q in (
        select(events.c.n).where(events.c.person == person),
        select(visits.c.id).where(or_(visits.c.host == person, visits.c.id == person)),
        select(alarms.c.id).where(alarms.c.person == person),
    ):
        if conn.execute(q.limit(1)).first():
            return True
    return _in_version_log(conn, person)


def _in_version_log(conn: Connection, person: str) -> bool:
    """Whether an op of the version log is about them (removed earlier without any event:
    their put, with name and cards, is there until an erasure scrubs it). An erasure's own
    removal does not count: it stays in the log for the doors, so erasing twice is refused."""
    texts = conn.execute(
        select(versions.c.ops).where(versions.c.ops.contains(json.dumps(person), autoescape=True))
    ).scalars()
    return any(_op_person(raw) == person for text in texts for raw in json.loads(text))


def _op_person(raw: dict[str, Any]) -> str | None:
    """The person a stored op (decoded JSON) is about: the id of a person op, the owner of a
    put credential; None for an erasure's removal (kept in the log for the doors)."""
    if raw.get("op") == "remove_person" and raw.get("erase") is True:
        return None
    inner = raw.get("person") or raw.get("credential")
    if isinstance(inner, dict):
        owner = inner.get("id", inner.get("person"))
        return owner if isinstance(owner, str) else None
    found = raw.get("id")
    return found if isinstance(found, str) else None


def plan(office: Office, who: str) -> ErasurePlan:
    """What erasing ``who`` would change, counted as ``erase`` counts what it changes (the
    same survey, ``_survey``, over the same rows)."""
    person = subject(office, who)
    with store.reading(office.master()) as conn:
        held = _current_values(conn, person) | _past_values(conn, person)
        name = _name(conn, person)
        made = _visits_made(conn, person, name or "")
        return _survey(conn, person, "erased-?", held, made).plan


@dataclass(frozen=True, slots=True)
class _Survey:
    """What an erasure changes, read once (in the erasure's transaction, or the preview's
    read): the counts the operator sees, and the rows ``erase`` then writes."""

    plan: ErasurePlan
    subj: sweep.Subject
    events: list[int]  # the archive rows (``events.n``) naming them
    alarms: dict[int, tuple[str | None, Any]]  # alarm id -> (person, detail)
    found: dict[str, list[sweep.Rewrite]]  # free text and the rest (erasure_sweep)


def _survey(
    conn: Connection, person: str, pseudonym: str, held: set[str], made: list[str]
) -> _Survey:
    name = _name(conn, person)
    kinds = Counter(
        conn.execute(select(credentials.c.kind).where(credentials.c.person_id == person))
        .scalars()
        .all()
    )
    subj = sweep.Subject(person, name or "", pseudonym, frozenset(held))
    found = sweep.rewrites(conn, subj)
    rows = conn.execute(
        select(events.c.n, events.c.id).where(_events_where(person, held)).order_by(events.c.n)
    ).all()
    alarm_rows = _alarm_rows(conn, person, [r[1] for r in rows])
    return _Survey(
        plan=ErasurePlan(
            person=person,
            in_master=name is not None,
            credentials=dict(kinds),
            events=len(rows),
            alarms=len(alarm_rows),
            # Commands are rewritten once, by the sweep (the id as a whole string, names and
            # values inside their texts): one count, of the rows that change.
            commands=len(found[sweep.COMMANDS]),
            hosted_visits=_count(conn, visits, visits.c.host == person),
            visits=tuple(made),
            elsewhere={what: len(r) for what, r in found.items() if what != sweep.COMMANDS},
        ),
        subj=subj,
        events=[r[0] for r in rows],
        alarms=alarm_rows,
        found=found,
    )


def _name(conn: Connection, person: str) -> str | None:
    """The person's display name; None when the master does not hold them."""
    return conn.execute(select(people.c.name).where(people.c.id == person)).scalar()


def _count(conn: Connection, table: Any, where: Any) -> int:
    return conn.execute(select(func.count()).select_from(table).where(where)).scalar_one()


def _current_values(conn: Connection, person: str) -> set[str]:
    return set(
        conn.execute(select(credentials.c.value).where(credentials.c.person_id == person)).scalars()
    )


def _past_values(conn: Connection, person: str) -> set[str]:
    """Credential values the person held at some point (the version log says)."""
    rows = conn.execute(select(versions.c.version, versions.c.ops).order_by(versions.c.version))
    _changed, held = forget.scrub_history(((v, ops) for v, ops in rows), person, "")
    return {value for _kind, value in held}


def _events_where(person: str, values: set[str]) -> Any:
    cond = [
        events.c.person == person,
        # staff_release names the staff, a two-person rule the partner: the id in the payload
        events.c.payload.contains(f'"{person}"', autoescape=True),
    ]
    if values:
        cond.append(events.c.credential.in_(sorted(values)))
    return or_(*cond)


def _visits_made(conn: Connection, person: str, name: str) -> list[str]:
    """A visitor's door person is their visit id; a person may also have visited before,
    under their name (exact, case-insensitive: shown in the preview before anyone confirms)."""
    cond = [visits.c.id == person]
    if name.strip():
        cond.append(func.lower(visits.c.visitor_name) == name.strip().lower())
    q = select(visits.c.id).where(or_(*cond), visits.c.anonymised_at.is_(None))
    return sorted(conn.execute(q.order_by(visits.c.id)).scalars())


def erase(
    office: Office,
    actor: Actor,
    who: str,
    reason: str,
    *,
    pseudonym: str | None = None,
    record: bool = True,
) -> Erasure:
    """Erase the person (see the module's doc). The master, the version log and every
    office table change in one transaction; the visits they made first (the visit desk's
    own change). Publishes through the office's hook like every change. ``record``: write
    the erasure to the ledger (``erasure_ledger``; a re-application does not); ``pseudonym``:
    the one a re-application keeps."""
    from edgegate.central.services import visitors

    reason = reason.strip()
    if not reason:
        raise ChangeRefused("give the reason of the erasure (the request it answers)")
    person = subject(office, who)
    pseudonym = pseudonym or forget.new_pseudonym()
    with store.reading(office.master()) as conn:
        made = _visits_made(conn, person, _name(conn, person) or "")
    done: list[int] = []
    if made:
        try:
            done += visitors.desk_of_office(office).erase(made, actor.name).versions
        except visitors.VisitError as exc:
            raise ChangeRefused(str(exc)) from None
    master = office.master()
    try:
        with master.begin() as conn:
            held = _current_values(conn, person)
            # The version log is read once: scrubbing it also says which values they held.
            rewritten, past = _scrub_versions(conn, person, pseudonym)
            held |= {value for _kind, value in past}
            # The survey reads everything else once, before any of it is written: what it
            # counts is what is written (the preview runs the same survey).
            survey = _survey(conn, person, pseudonym, held, made)
            ops = _removal_ops(conn, person, pseudonym)
            if ops:
                made_versions = store.commit_ops(
                    conn, ops, max_ops=office.config.central.update_max_ops
                )
                done += [v.version for v in made_versions]
            counts = _anonymise(conn, survey)
            counts |= sweep.apply(conn, survey.found)
            # The consoles' alarm and command views show the pseudonym now, not at a reload:
            # every instance is told at the commit (PostgreSQL), this process's feed after it.
            shown = [
                kind
                for kind, rows in (
                    (archive.LIVE_ALARMS, survey.alarms),
                    (archive.LIVE_COMMANDS, survey.found[sweep.COMMANDS]),
                )
                if rows
            ]
            for kind in shown:
                archive.announce(conn, kind)
            redacted = {r.key["seq"]: r.values for r in survey.found[sweep.AUDIT]}
            audit.redact(conn, redacted)
            # In the same transaction: the entry commits with the change, and it is what
            # vouches for the redacted entries when the chain is verified.
            audit.append(
                conn,
                actor,
                audit.REDACTING,
                pseudonym,
                reason=survey.subj.text(reason[:REASON_MAX]),  # a name typed into it goes too
                version=done[-1] if done else None,
                history=rewritten,
                visits=len(made),
                redacted=sorted(redacted),
                **counts,
            )
            if record:
                # Before the commit: an erasure the ledger missed could not be repeated after
                # a restore; a ledger line whose erasure then failed is repeated harmlessly.
                entry = ledger.Entry(
                    time.time(), pseudonym, ledger.digest(store.connection_key(conn), person)
                )
                ledger.record(_ledger_path(office), entry)
    except store.CentralError as exc:
        raise ChangeRefused(str(exc)) from None
    if office.changed is not None:
        for kind in shown:
            office.changed(kind)
    log.info("person_erased", pseudonym=pseudonym, by=actor.name, versions=done, **counts)
    published = None
    if done and office.publish_versions is not None:
        published = office.publish_versions(master)
    return Erasure(pseudonym, survey.plan, done, published, rewritten)


def _scrub_versions(
    conn: Connection, person: str, pseudonym: str
) -> tuple[int, set[tuple[str, str]]]:
    """Drop the person's ops from the version log (``forget.scrub_history``)."""
    rows = conn.execute(select(versions.c.version, versions.c.ops).order_by(versions.c.version))
    changed, held = forget.scrub_history(((v, ops) for v, ops in rows), person, pseudonym)
    for version, kept in changed.items():
        text = json.dumps(kept, separators=(",", ":"), ensure_ascii=False)
        conn.execute(
            update(versions).where(versions.c.version == version).values(ops=text, n_ops=len(kept))
        )
    return len(changed), held


def _removal_ops(conn: Connection, person: str, pseudonym: str) -> list[m.Op]:
    """The person's removal (their credentials go with them, at the office and at every
    door), and the people whose informational ``host`` names them renamed to the pseudonym.

    The removal goes out also when the master no longer holds them (removed earlier with
    ``people remove``, erased now): the doors dropped their credentials then, but their
    journals still name them, and only an erasure's removal makes a door rewrite them out
    (a delta, or a snapshot's ``erased`` read from this op). Without it the scrubbed version
    log would also hide the earlier removal from a door catching up by delta, which would
    keep them (``contract.ops.needs_row``: the master accepts it with nobody to remove)."""
    ops: list[m.Op] = [m.RemovePerson(op="remove_person", id=person, erase=True)]
    hosted = conn.execute(
        select(*store.PEOPLE_COLS).where(people.c.attrs.contains(f'"{person}"', autoescape=True))
    )
    for row in hosted:
        p = store.person_dict(tuple(row))
        if p.get("attrs", {}).get("host") == person and p["id"] != person:
            p["attrs"] = {**p["attrs"], "host": pseudonym}  # the parsed attrs are shared
            ops.append(m.PutPerson(op="put_person", person=m.PersonMsg(**p)))
    return ops


def _anonymise(conn: Connection, survey: _Survey) -> dict[str, int]:
    """The archive, alarms and hosted visits the survey found: the person's id becomes the
    pseudonym, their credential values ``erased``; their e-mail and the notices sent to them
    are deleted. (Command records are the sweep's: ``erasure_sweep.COMMANDS``.)"""
    subj = survey.subj
    person, pseudonym, held = subj.person, subj.pseudonym, subj.values
    for start in range(0, len(survey.events), _BATCH):
        batch = survey.events[start : start + _BATCH]
        rows = conn.execute(
            select(events.c.n, events.c.person, events.c.credential, events.c.payload).where(
                events.c.n.in_(batch)
            )
        ).all()
        updates = []
        for n, ev_person, cred, payload in rows:
            mapping = forget.event_mapping(person, pseudonym, held, ev_person)
            updates.append(
                {
                    "k": n,
                    "person": mapping.get(ev_person, ev_person) if ev_person else None,
                    "credential": mapping.get(cred, cred) if cred else None,
                    "payload": json.dumps(
                        forget.replace_strings(json.loads(payload), mapping),
                        separators=(",", ":"),
                    ),
                }
            )
        if updates:
            conn.execute(
                update(events)
                .where(events.c.n == bindparam("k"))
                .values(
                    person=bindparam("person"),
                    credential=bindparam("credential"),
                    payload=bindparam("payload"),
                ),
                updates,
            )
    for alarm_id, (who, detail) in survey.alarms.items():
        mapping = forget.event_mapping(person, pseudonym, held, who)
        conn.execute(
            update(alarms)
            .where(alarms.c.id == alarm_id)
            .values(
                person=mapping.get(who, who) if who else None,
                detail=forget.replace_strings(detail, mapping),
            )
        )
    n_hosted = _anonymise_hosted(conn, person, pseudonym)
    return {
        "events": len(survey.events),
        "alarms": len(survey.alarms),
        "hosted_visits": n_hosted,
    }


def _alarm_rows(
    conn: Connection, person: str, event_ids: list[str]
) -> dict[int, tuple[str | None, Any]]:
    """Alarms naming the person, or raised on one of the events naming them."""
    found: dict[int, tuple[str | None, Any]] = {}
    conds = [alarms.c.person == person]
    for start in range(0, len(event_ids), _BATCH):
        conds.append(alarms.c.event_id.in_(event_ids[start : start + _BATCH]))
    for start in range(0, len(conds), 50):
        q = select(alarms.c.id, alarms.c.person, alarms.c.detail).where(
            or_(*conds[start : start + 50])
        )
        for alarm_id, who, detail in conn.execute(q):
            found[alarm_id] = (who, detail)
    return found


def _anonymise_hosted(conn: Connection, person: str, pseudonym: str) -> int:
    """Visits they hosted name the pseudonym (the visits stay: they are the visitors'); the
    host's e-mail address and the notices sent to them go."""
    link = f"host {person} (link)"  # how a decision through the host's link is signed
    mapping = {person: pseudonym, link: f"host {pseudonym} (link)"}
    rows = conn.execute(
        select(visits.c.id, visits.c.decided_by, visits.c.signed_off_by).where(
            visits.c.host == person
        )
    ).all()
    for visit_id, decided_by, signed_off_by in rows:
        conn.execute(
            update(visits)
            .where(visits.c.id == visit_id)
            .values(
                host=pseudonym,
                decided_by=forget.replace_strings(decided_by, mapping),
                signed_off_by=forget.replace_strings(signed_off_by, mapping),
            )
        )
    conn.execute(delete(visit_notices).where(visit_notices.c.host == person))
    conn.execute(delete(host_contacts).where(host_contacts.c.person == person))
    return len(rows)


def _ledger_path(office: Office) -> Path:
    c = office.config.central
    return ledger.path_for(c.db, c.erasure_ledger)


def _ids(conn: Connection) -> set[str]:
    """Every person id the store names: the master, the archive, alarms, hosted visits, and
    the version log (a person removed before the backup, never erased there, has their put
    in it and is in none of the others when they had no event)."""
    ids: set[str] = set(conn.execute(select(people.c.id)).scalars())
    for col in (events.c.person, alarms.c.person, visits.c.host):
        ids.update(v for v in conn.execute(select(col).distinct()).scalars() if v)
    for text in conn.execute(select(versions.c.ops)).scalars():
        ids.update(p for raw in json.loads(text) if (p := _op_person(raw)) is not None)
    return ids


def pending_reapply(office: Office) -> list[tuple[str, ledger.Entry]]:
    """(person id, ledger entry) of every recorded erasure whose person this store still
    names: after restoring a backup older than the erasure, or events a door published
    before it applied the removal."""
    entries = ledger.read(_ledger_path(office))
    if not entries:
        return []
    with store.reading(office.master()) as conn:
        return ledger.match(store.connection_key(conn), entries, sorted(_ids(conn)))


def reapply(office: Office, actor: Actor) -> list[Erasure]:
    """Repeat every recorded erasure this store still needs (``pending_reapply``), each
    under its pseudonym, each audited like an erasure."""
    done = []
    for person, entry in pending_reapply(office):
        when = datetime.fromtimestamp(entry.at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        reason = f"erasure of {when} re-applied from the ledger"
        done.append(erase(office, actor, person, reason, pseudonym=entry.pseudonym, record=False))
    return done
