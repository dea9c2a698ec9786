"""The visitors service (docs/visitors.md): one module the office CLI (``edgegate central
visits ...``), ``central serve`` and the console's pages and REST API all call.

A visit is booked, confirmed or declined by its host (in the office, or with a one-time link
that needs no account), given a pass (a card from the desk's pool or a signed QR pass) valid
only inside its window and zones, registered entry by entry from the doors' events, signed off
by the host (which releases the exit hold), and closed when its pass is back. Personal data
(visitor name, company, contact, reason) stays in the ``visits`` row; the doors get a person
whose id is the visit id and who has no name, and the passes.

Every change that concerns the doors is a list of contract ops committed to the master store
as new versions (``store.commit_ops``) in the same call; the caller publishes them (the CLI
at once, ``serve`` on its next sweep). Times are UNIX seconds.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog
from sqlalchemy import and_, column, func, insert, or_, select, table, update
from sqlalchemy.engine import Connection, Engine

from edgegate.central import person_rules, store
from edgegate.central.engine import reading
from edgegate.central.schema.visitors import (
    host_contacts,
    visit_cursor,
    visit_links,
    visit_movements,
    visit_notices,
    visit_passes,
    visitor_cards,
    visits,
    zone_approvals,
)
from edgegate.contract import messages as m
from edgegate.contract.signing import Signer
from edgegate.contract.visitor_pass import PassToken, encode_pass
from edgegate.errors import EdgegateError
from edgegate.store.credentials import CredentialError, normalise_card

log = structlog.get_logger(__name__)
T = TypeVar("T")

CATEGORIES = ("important", "ordinary", "other")
VISITOR_GROUP = "visitors"
ANONYMISED = "(anonymised)"
# The archive's events table (central/store.py), read by the register: only the columns used.
_events = table(
    "events", column("n"), column("door"), column("type"), column("person"), column("payload")
)


class VisitError(EdgegateError, ValueError):
    """A visit operation refused (unknown visit, wrong state, wrong role...): the message
    says what to do; nothing was changed."""


@dataclass(frozen=True, slots=True)
class VisitorsPolicy:
    """``[visitors]`` of central.toml, as the service needs it."""

    exit_hold: bool = True
    restricted_zones: frozenset[str] = frozenset()
    approver_roles: frozenset[str] = frozenset({"admin", "security"})
    retention_days: float = 30.0
    link_hours: float = 72.0
    link_base_url: str = ""


@dataclass(frozen=True, slots=True)
class NewVisit:
    visitor_name: str
    host: str
    expected_arrival: float
    expected_departure: float
    zones: tuple[str, ...]
    category: str = "ordinary"
    company: str = ""
    reason: str = ""
    department: str = ""
    contact: str | None = None


@dataclass(slots=True)
class Outcome:
    """What an operation did: versions committed for the doors, and what to tell people."""

    versions: list[int] = field(default_factory=list)
    link: str | None = None  # a one-time link for the host (sent, never stored)
    token: str | None = None  # a QR pass token (printed or sent to the visitor)
    pass_id: str | None = None
    notices: list[dict[str, Any]] = field(default_factory=list)


_SUBJECTS = {
    "confirm_request": "A visitor is booked to see you",
    "arrival": "Your visitor has arrived",
}


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(5).upper()


class VisitDesk:
    """The service. ``engine``: the office store (visits tables); ``master``: the master
    credential store's engine (the doors' people and credentials, ``store.open_master``);
    ``signer``: the office key (QR passes). One instance per thread."""

    def __init__(
        self,
        engine: Engine,
        master: Engine,
        signer: Signer | None,
        policy: VisitorsPolicy,
        *,
        update_max_ops: int = 2000,
    ) -> None:
        self.engine = engine
        self._probed = 0  # events up to here name no visit (ingest's read path)
        self.master = master
        self.signer = signer
        self.policy = policy
        self.update_max_ops = update_max_ops
        # The tables are the migrations' (revision 0004 and the outbox's): every caller hands
        # a migrated store (open_office, store.open_master), never creates them here.

    # --- helpers ----------------------------------------------------------------------
    def _read(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(conn, *args)`` on a short read of the master."""
        with store.reading(self.master) as conn:
            return fn(conn, *args)

    def _commit(self, ops: list[m.Op], out: Outcome) -> None:
        if not ops:
            return
        try:
            with self.master.begin() as conn:
                versions = store.commit_ops(conn, ops, max_ops=self.update_max_ops)
        except store.CentralError as exc:
            raise VisitError(str(exc)) from None
        out.versions.extend(v.version for v in versions)

    def _visit(self, conn: Connection, visit_id: str) -> dict[str, Any]:
        row = conn.execute(select(visits).where(visits.c.id == visit_id)).mappings().first()
        if row is None:
            raise VisitError(f"no visit {visit_id!r}")
        return dict(row)

    def _notice(
        self,
        conn: Connection,
        visit: dict[str, Any],
        kind: str,
        text: str,
        link: str | None = None,
    ) -> dict:
        notice = {
            "visit_id": visit["id"],
            "host": visit["host"],
            "kind": kind,
            "text": text,
            "link": link,
            "created_at": time.time(),
        }
        conn.execute(insert(visit_notices).values(**notice))
        log.info("visit_notice", visit=visit["id"], host=visit["host"], kind=kind)
        return notice

    def _link(self, conn: Connection, visit_id: str, purpose: str, now: float) -> str:
        token = secrets.token_urlsafe(24)
        conn.execute(
            insert(visit_links).values(
                token_hash=_hash(token),
                visit_id=visit_id,
                purpose=purpose,
                created_at=now,
                expires_at=now + self.policy.link_hours * 3600,
            )
        )
        return self.policy.link_base_url + token if self.policy.link_base_url else token

    def granted_zones(self, conn: Connection, visit: dict[str, Any]) -> list[str]:
        """The zones a pass of this visit opens: the visit's own, less restricted ones not
        approved, plus every approved zone."""
        approved = set(
            conn.execute(
                select(zone_approvals.c.zone).where(zone_approvals.c.visit_id == visit["id"])
            ).scalars()
        )
        own = [z for z in visit["zones"] if z not in self.policy.restricted_zones]
        return sorted(set(own) | approved)

    # --- booking and the host's answer ------------------------------------------------
    def book(self, visit: NewVisit, by: str, now: float | None = None) -> tuple[str, Outcome]:
        now = time.time() if now is None else now
        if visit.category not in CATEGORIES:
            raise VisitError(f"category must be one of {', '.join(CATEGORIES)}")
        if not visit.visitor_name.strip():
            raise VisitError("give the visitor's name")
        if visit.expected_departure <= visit.expected_arrival:
            raise VisitError("the expected departure must be after the arrival")
        if self._read(store.get_person, visit.host) is None:
            raise VisitError(f"host {visit.host!r} is not a person of the site")
        for zone in visit.zones:
            _check_zone(zone)
        visit_id = _new_id("V")
        out = Outcome()
        with self.engine.begin() as conn:
            conn.execute(
                insert(visits).values(
                    id=visit_id,
                    visitor_name=visit.visitor_name.strip(),
                    company=visit.company,
                    category=visit.category,
                    reason=visit.reason,
                    host=visit.host,
                    department=visit.department,
                    contact=visit.contact,
                    expected_arrival=visit.expected_arrival,
                    expected_departure=visit.expected_departure,
                    zones=list(visit.zones),
                    status="booked",
                    created_by=by,
                    created_at=now,
                )
            )
            out.link = self._link(conn, visit_id, "decide", now)
            row = self._visit(conn, visit_id)
            out.notices.append(
                self._notice(
                    conn,
                    row,
                    "confirm_request",
                    f"{row['visitor_name']} ({row['company'] or 'no company'}) is booked to see "
                    "you; confirm or decline: {link}",
                    out.link,
                )
            )
        log.info("visit_booked", visit=visit_id, host=visit.host, by=by)
        return visit_id, out

    def decide(self, visit_id: str, accept: bool, by: str, now: float | None = None) -> None:
        """The host's answer (or an operator on the host's behalf, recorded as ``by``)."""
        now = time.time() if now is None else now
        with self.engine.begin() as conn:
            visit = self._visit(conn, visit_id)
            if visit["status"] not in ("booked", "confirmed", "declined"):
                raise VisitError(f"visit {visit_id} is {visit['status']}: nothing to decide")
            conn.execute(
                update(visits)
                .where(visits.c.id == visit_id)
                .values(status="confirmed" if accept else "declined", decided_by=by, decided_at=now)
            )
        log.info("visit_decided", visit=visit_id, accepted=accept, by=by)

    def use_link(self, token: str, action: str, now: float | None = None) -> tuple[str, Outcome]:
        """A one-time link: ``action`` ``confirm``/``decline`` (a decide link) or
        ``sign_off`` (a sign-off link). Used once, within its time; no account needed."""
        now = time.time() if now is None else now
        with self.engine.begin() as conn:
            link = (
                conn.execute(select(visit_links).where(visit_links.c.token_hash == _hash(token)))
                .mappings()
                .first()
            )
            if link is None or link["used_at"] is not None or link["expires_at"] <= now:
                raise VisitError("this link is unknown, used or expired")
            wanted = "sign_off" if action == "sign_off" else "decide"
            if link["purpose"] != wanted or action not in ("confirm", "decline", "sign_off"):
                raise VisitError(f"this link is for {link['purpose']}, not {action}")
            conn.execute(
                update(visit_links)
                .where(visit_links.c.token_hash == link["token_hash"])
                .values(used_at=now)
            )
            visit = self._visit(conn, link["visit_id"])
        by = f"host {visit['host']} (link)"
        if action == "sign_off":
            return visit["id"], self.sign_off(visit["id"], by, now)
        self.decide(visit["id"], action == "confirm", by, now)
        return visit["id"], Outcome()

    def approve_zone(
        self, visit_id: str, zone: str, by: str, role: str, now: float | None = None
    ) -> Outcome:
        """A zone beyond the visit's (or a restricted one): only an approver role; recorded
        with who and when. A pass already issued gets the zone at the next update (card) or
        must be re-issued (a QR pass carries its zones)."""
        now = time.time() if now is None else now
        if role not in self.policy.approver_roles:
            raise VisitError(
                f"role {role!r} cannot approve zones (roles: "
                f"{', '.join(sorted(self.policy.approver_roles))})"
            )
        _check_zone(zone)
        out = Outcome()
        with self.engine.begin() as conn:
            visit = self._visit(conn, visit_id)
            exists = conn.execute(
                select(zone_approvals.c.zone).where(
                    and_(zone_approvals.c.visit_id == visit_id, zone_approvals.c.zone == zone)
                )
            ).first()
            if exists is None:
                conn.execute(
                    insert(zone_approvals).values(
                        visit_id=visit_id, zone=zone, approved_by=by, role=role, approved_at=now
                    )
                )
            zones = self.granted_zones(conn, visit)
        if self._read(store.get_person, visit_id) is not None:
            ops = self._read(
                person_rules.person_ops, visit_id, person_rules.RuleChange(zones=zones)
            )
            self._commit(ops, out)
        log.info("visit_zone_approved", visit=visit_id, zone=zone, by=by, role=role)
        return out

    # --- passes -----------------------------------------------------------------------
    def _door_person(self, conn: Connection, visit: dict[str, Any]) -> list[m.Op]:
        """The visit as the doors see it: the visit id, no name, its window and zones, its
        host and (where the site holds visitors on exit) the exit hold."""
        attrs: dict[str, Any] = {
            "groups": [VISITOR_GROUP],
            "zones": self.granted_zones(conn, visit),
            "host": visit["host"],
        }
        if self.policy.exit_hold and visit["signed_off_at"] is None:
            attrs["settled"] = False
        person = m.PersonMsg(
            id=visit["id"],
            valid_from=visit["expected_arrival"],
            valid_until=visit["expected_departure"],
            attrs=attrs,
        )
        return [m.PutPerson(op="put_person", person=person)]

    def _issuable(self, conn: Connection, visit_id: str) -> dict[str, Any]:
        visit = self._visit(conn, visit_id)
        if visit["status"] != "confirmed":
            raise VisitError(
                f"visit {visit_id} is {visit['status']}: the host must confirm it before a "
                "pass is issued"
            )
        if visit["anonymised_at"] is not None:
            raise VisitError(f"visit {visit_id} was erased")
        return visit

    def issue_qr(
        self, visit_id: str, by: str, *, single: bool = False, now: float | None = None
    ) -> Outcome:
        if self.signer is None:
            raise VisitError("the office key is needed to sign a QR pass")
        now = time.time() if now is None else now
        out = Outcome()
        with self.engine.begin() as conn:
            visit = self._issuable(conn, visit_id)
            pass_id = _new_id("P")
            token = PassToken(
                pass_id,
                visit_id,
                tuple(self.granted_zones(conn, visit)),
                int(visit["expected_arrival"]),
                int(visit["expected_departure"]),
                single,
            )
            ops = self._door_person(conn, visit)
            # The pass as a qr credential: what the office revokes later (docs/visitors.md).
            cred = m.CredentialMsg(kind="qr", value=pass_id, person=visit_id, label="qr pass")
            ops.append(m.PutCredential(op="put_credential", credential=cred))
            self._commit(ops, out)
            conn.execute(
                insert(visit_passes).values(
                    id=pass_id,
                    visit_id=visit_id,
                    kind="qr",
                    single=single,
                    not_before=token.not_before,
                    not_after=token.not_after,
                    issued_by=by,
                    issued_at=now,
                )
            )
        out.token, out.pass_id = encode_pass(self.signer, token), pass_id
        log.info("visit_pass_issued", visit=visit_id, pass_id=pass_id, kind="qr", by=by)
        return out

    def issue_card(
        self, visit_id: str, by: str, card: str | None = None, now: float | None = None
    ) -> Outcome:
        """A card from the desk's pool (``card``, or the first free one), enrolled as a
        temporary credential of the visit: valid only in the visit's window."""
        now = time.time() if now is None else now
        out = Outcome()
        with self.engine.begin() as conn:
            visit = self._issuable(conn, visit_id)
            free = self._free_cards(conn)
            if card is not None:
                try:
                    card = normalise_card(card)
                except CredentialError as exc:
                    raise VisitError(str(exc)) from None
                if card not in free:
                    raise VisitError(f"card {card} is not a free card of the visitor pool")
            elif not free:
                raise VisitError("no free card in the visitor pool")
            else:
                card = free[0]
            pass_id = _new_id("P")
            ops = self._door_person(conn, visit)
            cred = m.CredentialMsg(
                kind="card",
                value=card,
                person=visit_id,
                valid_from=visit["expected_arrival"],
                valid_until=visit["expected_departure"],
                label=f"visitor pass {pass_id}",
            )
            ops.append(m.PutCredential(op="put_credential", credential=cred))
            self._commit(ops, out)
            conn.execute(
                insert(visit_passes).values(
                    id=pass_id,
                    visit_id=visit_id,
                    kind="card",
                    card=card,
                    not_before=visit["expected_arrival"],
                    not_after=visit["expected_departure"],
                    issued_by=by,
                    issued_at=now,
                )
            )
        out.pass_id = pass_id
        log.info("visit_pass_issued", visit=visit_id, pass_id=pass_id, kind="card", by=by)
        return out

    def _pass(self, conn: Connection, pass_id: str) -> dict[str, Any]:
        row = (
            conn.execute(select(visit_passes).where(visit_passes.c.id == pass_id))
            .mappings()
            .first()
        )
        if row is None:
            raise VisitError(f"no pass {pass_id!r}")
        return dict(row)

    def revoke(self, pass_id: str, by: str, now: float | None = None) -> Outcome:
        """Revoked at every door with the next update: a QR pass as a disabled qr
        credential, a card disabled."""
        now = time.time() if now is None else now

        def disable(kind: str, value: str) -> m.Op:
            return m.SetCredentialEnabled(
                op="set_credential_enabled", kind=kind, value=value, enabled=False
            )

        out = self._end_pass(pass_id, "revoked_at", disable, now, again_ok=True)
        log.info("visit_pass_revoked", pass_id=pass_id, by=by)
        return out

    def returned(self, pass_id: str, by: str, now: float | None = None) -> Outcome:
        """Reception has the card back: it leaves the doors and goes back to the pool."""
        now = time.time() if now is None else now

        def remove(kind: str, value: str) -> m.Op:
            return m.RemoveCredential(op="remove_credential", kind=kind, value=value)

        out = self._end_pass(pass_id, "returned_at", remove, now, again_ok=False)
        log.info("visit_pass_returned", pass_id=pass_id, by=by)
        return out

    def _end_pass(
        self,
        pass_id: str,
        column: str,
        op_for: Callable[[str, str], m.Op],
        now: float,
        *,
        again_ok: bool,
    ) -> Outcome:
        """Stamp ``column`` of the pass and, while it is still out, change its credential at
        the doors with ``op_for(kind, value)`` (only if the visit still owns it: a pool card
        may have gone to the next visitor since)."""
        out = Outcome()
        with self.engine.begin() as conn:
            p = self._pass(conn, pass_id)
            if p["returned_at"] is not None and not again_ok:
                raise VisitError(f"pass {pass_id} was already returned")
            kind, value = ("qr", pass_id) if p["kind"] == "qr" else ("card", p["card"])
            out_still = p["returned_at"] is None
            if out_still and self._read(store.credential_owner, kind, value) == p["visit_id"]:
                self._commit([op_for(kind, value)], out)
            conn.execute(
                update(visit_passes).where(visit_passes.c.id == pass_id).values({column: now})
            )
        return out

    def sign_off(self, visit_id: str, by: str, now: float | None = None) -> Outcome:
        """The host signs the visit off: the exit hold is released at every door."""
        now = time.time() if now is None else now
        out = Outcome()
        with self.engine.begin() as conn:
            self._visit(conn, visit_id)
            conn.execute(
                update(visits)
                .where(visits.c.id == visit_id)
                .values(signed_off_by=by, signed_off_at=now)
            )
        if self._read(store.get_person, visit_id) is not None:
            change = person_rules.RuleChange(settled=True)
            self._commit(self._read(person_rules.person_ops, visit_id, change), out)
        log.info("visit_signed_off", visit=visit_id, by=by)
        return out

    def sign_off_link(self, visit_id: str, now: float | None = None) -> str:
        """A one-time sign-off link for the host."""
        now = time.time() if now is None else now
        with self.engine.begin() as conn:
            self._visit(conn, visit_id)
            return self._link(conn, visit_id, "sign_off", now)

    # --- the card pool ----------------------------------------------------------------
    def add_pool_card(self, card: str, label: str = "") -> str:
        try:
            card = normalise_card(card)
        except CredentialError as exc:
            raise VisitError(str(exc)) from None
        owner = self._read(store.credential_owner, "card", card)
        if owner is not None and not owner.startswith("V"):
            raise VisitError(f"card {card} belongs to {owner}")
        with self.engine.begin() as conn:
            if conn.execute(select(visitor_cards).where(visitor_cards.c.card == card)).first():
                raise VisitError(f"card {card} is in the pool already")
            conn.execute(insert(visitor_cards).values(card=card, label=label))
        return card

    def _out_cards(self, conn: Connection) -> set[str]:
        rows = conn.execute(
            select(visit_passes.c.card).where(
                and_(visit_passes.c.kind == "card", visit_passes.c.returned_at.is_(None))
            )
        ).scalars()
        return set(rows)

    def _free_cards(self, conn: Connection) -> list[str]:
        out = self._out_cards(conn)
        pool = conn.execute(select(visitor_cards.c.card).order_by(visitor_cards.c.card))
        return [c for c in pool.scalars() if c not in out]

    def pool(self) -> list[dict[str, Any]]:
        with reading(self.engine) as conn:
            out = self._out_cards(conn)
            rows = conn.execute(select(visitor_cards).order_by(visitor_cards.c.card)).mappings()
            return [{**dict(r), "out": r["card"] in out} for r in rows]

    def unreturned_cards(self, now: float | None = None) -> list[dict[str, Any]]:
        """Cards not back whose visit window is over (the list reception chases)."""
        now = time.time() if now is None else now
        with reading(self.engine) as conn:
            rows = conn.execute(
                select(visit_passes, visits.c.host, visits.c.visitor_name)
                .join(visits, visits.c.id == visit_passes.c.visit_id)
                .where(
                    and_(
                        visit_passes.c.kind == "card",
                        visit_passes.c.returned_at.is_(None),
                        visit_passes.c.not_after <= now,
                    )
                )
                .order_by(visit_passes.c.not_after)
            ).mappings()
            return [dict(r) for r in rows]

    # --- the register -----------------------------------------------------------------
    def ingest(self, now: float | None = None, limit: int = 5000) -> Outcome:
        """Read the archive's new door events of visits into the register; a visit's first
        entry sets its arrival and notifies the host. Called by ``serve`` every second."""
        now = time.time() if now is None else now
        out = Outcome()
        # Called every second: find out on the read path whether any new event names a
        # visit (one index probe per visit, ``events_person``), and take the write lock only
        # then (on SQLite the archive's writer would wait for it: "database is locked").
        with reading(self.engine) as conn:
            last_n = conn.execute(
                select(visit_cursor.c.last_n).where(visit_cursor.c.id == 1)
            ).scalar()
            if last_n is not None:
                # From where the last probe that found nothing stopped: otherwise every probe
                # scans every event since the last visit (millions after a busy day, each
                # second, on the database the archive's writers need).
                start = max(last_n, self._probed)
                top = conn.execute(select(func.max(_events.c.n))).scalar() or 0
                hit = conn.execute(
                    select(_events.c.n)
                    .join(visits, visits.c.id == _events.c.person)
                    .where(
                        _events.c.n > start,
                        _events.c.n <= top,
                        _events.c.type.in_(("access_granted", "access_denied")),
                    )
                    .limit(1)
                ).first()
                if hit is None:
                    # Every event up to ``top`` is visible now (arrival order is commit
                    # order, central/archive.py) and names no visit. Kept in memory: this
                    # path writes nothing (no write lock on SQLite).
                    self._probed = top
                    return out
        with self.engine.begin() as conn:
            last = conn.execute(select(visit_cursor.c.last_n).where(visit_cursor.c.id == 1))
            last_n = last.scalar()
            if last_n is None:
                conn.execute(insert(visit_cursor).values(id=1, last_n=0))
                last_n = 0
            # The top first: an event archived while this runs is read next time, not skipped.
            top = conn.execute(select(func.max(_events.c.n))).scalar() or 0
            rows = conn.execute(
                select(_events.c.n, _events.c.door, _events.c.payload)
                .where(
                    and_(
                        _events.c.n > last_n,
                        _events.c.n <= top,
                        _events.c.type.in_(("access_granted", "access_denied")),
                    )
                )
                .order_by(_events.c.n)
                .limit(limit)
            ).all()
            for n, door, payload in rows:
                last_n = n
                event = json.loads(payload)
                person = event.get("person")
                if not isinstance(person, str):
                    continue
                visit = conn.execute(select(visits).where(visits.c.id == person)).mappings().first()
                if visit is None:
                    continue
                self._movement(conn, dict(visit), door, event, out)
            # Nothing of interest up to the top: jump there (keeps the scan short).
            new_last = top if len(rows) < limit else last_n
            conn.execute(update(visit_cursor).where(visit_cursor.c.id == 1).values(last_n=new_last))
        return out

    def _movement(
        self, conn: Connection, visit: dict[str, Any], door: str, event: dict, out: Outcome
    ) -> None:
        from datetime import datetime

        event_id = str(event.get("id", ""))
        if (
            not event_id
            or conn.execute(
                select(visit_movements.c.event_id).where(visit_movements.c.event_id == event_id)
            ).first()
        ):
            return
        try:
            ts = datetime.fromisoformat(str(event.get("ts")).replace("Z", "+00:00")).timestamp()
        except ValueError:
            ts = time.time()
        granted = event.get("type") == "access_granted"
        direction = "out" if event.get("direction") == "out" else "in"
        conn.execute(
            insert(visit_movements).values(
                event_id=event_id,
                visit_id=visit["id"],
                door=door,
                direction=direction,
                granted=granted,
                reason=None if granted else str(event.get("reason", ""))[:40],
                ts=ts,
            )
        )
        if not granted:
            return
        if direction == "in" and visit["arrived_at"] is None:
            conn.execute(update(visits).where(visits.c.id == visit["id"]).values(arrived_at=ts))
            out.notices.append(
                self._notice(
                    conn,
                    visit,
                    "arrival",
                    f"Your visitor {visit['visitor_name']} ({visit['company'] or 'no company'}) "
                    f"has arrived at {door}.",
                )
            )
        elif direction == "out":
            conn.execute(update(visits).where(visits.c.id == visit["id"]).values(left_at=ts))

    def register(self, visit_id: str | None = None) -> list[dict[str, Any]]:
        """Every entry and exit (and refusal) of visitors, with times."""
        with reading(self.engine) as conn:
            q = select(visit_movements, visits.c.visitor_name).join(
                visits, visits.c.id == visit_movements.c.visit_id
            )
            if visit_id is not None:
                q = q.where(visit_movements.c.visit_id == visit_id)
            return [dict(r) for r in conn.execute(q.order_by(visit_movements.c.ts)).mappings()]

    def on_site(self, now: float | None = None) -> list[dict[str, Any]]:
        """Visitors whose last granted passage was an entry; ``overdue`` past departure."""
        now = time.time() if now is None else now
        with reading(self.engine) as conn:
            last = (
                select(
                    visit_movements.c.visit_id,
                    func.max(visit_movements.c.ts).label("ts"),
                )
                .where(visit_movements.c.granted.is_(True))
                .group_by(visit_movements.c.visit_id)
                .subquery()
            )
            rows = conn.execute(
                select(visits, visit_movements.c.direction, visit_movements.c.door)
                .join(last, last.c.visit_id == visits.c.id)
                .join(
                    visit_movements,
                    and_(
                        visit_movements.c.visit_id == last.c.visit_id,
                        visit_movements.c.ts == last.c.ts,
                        visit_movements.c.granted.is_(True),
                    ),
                )
                .order_by(visits.c.arrived_at)
            ).mappings()
            out = []
            for r in rows:
                if r["direction"] != "in":
                    continue
                out.append({**_public(dict(r)), "overdue": now > r["expected_departure"]})
            return out

    def day(self, start: float, end: float) -> list[dict[str, Any]]:
        """Visits expected in [start, end) or on site then: reception's list of the day."""
        with reading(self.engine) as conn:
            rows = conn.execute(
                select(visits)
                .where(
                    or_(
                        and_(visits.c.expected_arrival < end, visits.c.expected_departure > start),
                        and_(visits.c.arrived_at.is_not(None), visits.c.left_at.is_(None)),
                    )
                )
                .order_by(visits.c.expected_arrival)
            ).mappings()
            return [_public(dict(r)) for r in rows]

    def get(self, visit_id: str) -> dict[str, Any]:
        with reading(self.engine) as conn:
            visit = _public(self._visit(conn, visit_id))
            visit["granted_zones"] = self.granted_zones(conn, visit)
            visit["approvals"] = [
                dict(r)
                for r in conn.execute(
                    select(zone_approvals).where(zone_approvals.c.visit_id == visit_id)
                ).mappings()
            ]
            visit["passes"] = [
                dict(r)
                for r in conn.execute(
                    select(visit_passes).where(visit_passes.c.visit_id == visit_id)
                ).mappings()
            ]
            return visit

    def notices(self, host: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """The hosts' notices (the console's notifications), newest last, links left out."""
        with reading(self.engine) as conn:
            base = select(visit_notices)
            if host is not None:
                base = base.where(visit_notices.c.host == host)
            newest = base.order_by(visit_notices.c.id.desc()).limit(limit).subquery()
            q = select(newest).order_by(newest.c.id)
            return [
                {
                    **{k: v for k, v in r.items() if k != "link"},
                    "text": r["text"].replace("{link}", "(one-time link)"),
                }
                for r in conn.execute(q).mappings()
            ]

    def set_host_email(self, person: str, email: str) -> None:
        if store.get_person(self.master, person) is None:
            raise VisitError(f"no person {person!r}")
        if "@" not in email:
            raise VisitError(f"{email!r} is not an e-mail address")
        with self.engine.begin() as conn:
            conn.execute(host_contacts.delete().where(host_contacts.c.person == person))
            conn.execute(insert(host_contacts).values(person=person, email=email))

    def deliver(self, smtp_configured: bool, now: float | None = None) -> int:
        """Hand new notices to the office's outbox (docs/console.md): one webhook row per
        registered webhook that wants ``visit_<kind>`` (or ``*``), and an e-mail to the host's
        address when ``[smtp]`` is set. The outbox delivers and retries them; the notice
        keeps no copy of the link. Returns how many notices were handed over."""
        from edgegate.central.notify import email_body
        from edgegate.central.services import outbox

        now = time.time() if now is None else now
        with reading(self.engine) as conn:
            due = [
                dict(r)
                for r in conn.execute(
                    select(visit_notices, host_contacts.c.email)
                    .outerjoin(host_contacts, host_contacts.c.person == visit_notices.c.host)
                    .where(visit_notices.c.delivered_at.is_(None))
                    .order_by(visit_notices.c.id)
                    .limit(100)
                ).mappings()
            ]
        for notice in due:
            text = notice["text"].replace("{link}", notice["link"] or "(link sent)")
            event = {
                "type": f"visit_{notice['kind']}",
                "id": f"visit-notice-{notice['id']}",
                "visit": notice["visit_id"],
                "host": notice["host"],
                "text": text,
                "ts": notice["created_at"],
            }
            outbox.fan_out(self.engine, [event])
            if smtp_configured and notice["email"]:
                body = email_body(_SUBJECTS[notice["kind"]], text)
                outbox.enqueue(self.engine, "email", notice["email"], event["type"], body, now=now)
            with self.engine.begin() as conn:
                conn.execute(
                    update(visit_notices)
                    .where(visit_notices.c.id == notice["id"])
                    .values(delivered_at=now, link=None)
                )
        return len(due)

    # --- housekeeping: cards at the end of their window, retention --------------------
    def sweep(self, now: float | None = None) -> Outcome:
        """Disable every card not returned by the end of its window (doors refuse it already
        by its window; this also stops it for good and lists it), and anonymise visits
        older than the retention period (their door person leaves the doors too)."""
        now = time.time() if now is None else now
        out = Outcome()
        ops: list[m.Op] = []
        with self.engine.begin() as conn:
            due = conn.execute(
                select(visit_passes).where(
                    and_(
                        visit_passes.c.kind == "card",
                        visit_passes.c.returned_at.is_(None),
                        visit_passes.c.disabled_at.is_(None),
                        visit_passes.c.not_after <= now,
                    )
                )
            ).mappings()
            disabled = []
            for p in due:
                if self._read(store.credential_owner, "card", p["card"]) == p["visit_id"]:
                    ops.append(
                        m.SetCredentialEnabled(
                            op="set_credential_enabled", kind="card", value=p["card"], enabled=False
                        )
                    )
                disabled.append(p["id"])
            if disabled:
                conn.execute(
                    update(visit_passes)
                    .where(visit_passes.c.id.in_(disabled))
                    .values(disabled_at=now)
                )
                log.warning("visitor_cards_disabled", passes=disabled)
            cutoff = now - self.policy.retention_days * 86400
            old = conn.execute(
                select(visits.c.id).where(
                    and_(visits.c.expected_departure < cutoff, visits.c.anonymised_at.is_(None))
                )
            ).scalars()
            old_ids = list(old)
            for visit_id in old_ids:
                ops.extend(self._forget(conn, visit_id, now))
        self._commit(ops, out)
        if old_ids:
            log.info("visits_anonymised", n=len(old_ids))
        return out

    def _forget(self, conn: Connection, visit_id: str, now: float) -> list[m.Op]:
        conn.execute(
            update(visits)
            .where(visits.c.id == visit_id)
            .values(
                visitor_name=ANONYMISED,
                company="",
                contact=None,
                reason="",
                anonymised_at=now,
            )
        )
        conn.execute(visit_links.delete().where(visit_links.c.visit_id == visit_id))
        if self._read(store.get_person, visit_id) is None:
            return []
        return [m.RemovePerson(op="remove_person", id=visit_id)]

    # --- a visitor's data on request --------------------------------------------------
    def find(self, visitor_name: str) -> list[str]:
        with reading(self.engine) as conn:
            rows = conn.execute(
                select(visits.c.id).where(
                    func.lower(visits.c.visitor_name) == visitor_name.strip().lower()
                )
            ).scalars()
            return list(rows)

    def export(self, visit_ids: Iterable[str]) -> dict[str, Any]:
        """Everything the office holds about these visits (a subject access request)."""
        return {
            "visits": [
                {**self.get(v), "register": self.register(v), "notices": self._notices_of(v)}
                for v in visit_ids
            ]
        }

    def _notices_of(self, visit_id: str) -> list[dict[str, Any]]:
        with reading(self.engine) as conn:
            q = select(visit_notices).where(visit_notices.c.visit_id == visit_id)
            return [dict(r) for r in conn.execute(q).mappings()]

    def erase(self, visit_ids: Iterable[str], by: str, now: float | None = None) -> Outcome:
        """Erase the visitor's personal data now (name, company, contact, reason, notices);
        the visit's ids, times and register stay, anonymous. Its passes stop at every door."""
        now = time.time() if now is None else now
        out = Outcome()
        ops: list[m.Op] = []
        with self.engine.begin() as conn:
            for visit_id in visit_ids:
                self._visit(conn, visit_id)
                conn.execute(visit_notices.delete().where(visit_notices.c.visit_id == visit_id))
                ops.extend(self._forget(conn, visit_id, now))
                log.info("visit_erased", visit=visit_id, by=by)
        self._commit(ops, out)
        return out


def _check_zone(zone: str) -> None:
    try:
        PassToken("P", "V", (zone,), 0, 1, False).body()  # the form a pass can carry
    except ValueError as exc:
        raise VisitError(f"zone {exc}") from None


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "link_token_hash"}


# --- the office's front ends (console pages, REST API, CLI) -----------------------------


def policy_of(config: Any) -> VisitorsPolicy:
    v = config.visitors
    return VisitorsPolicy(
        exit_hold=v.exit_hold,
        restricted_zones=frozenset(v.restricted_zones),
        approver_roles=frozenset(v.approver_roles),
        retention_days=v.retention_days,
        link_hours=v.link_hours,
        link_base_url=v.link_base_url,
    )


def desk_of_office(office: Any) -> VisitDesk:
    """The service on the console's ``Office`` (its engine, this thread's master
    connection); the signer is read from the office's key file once per office."""
    signer = getattr(office, "_visits_signer", None)
    if signer is None:
        from edgegate.contract.signing import load_private

        path = office.config.central.key_file
        signer = Signer(load_private(path)) if path.exists() else False
        office._visits_signer = signer
    return VisitDesk(
        office.engine,
        office.master(),
        signer if isinstance(signer, Signer) else None,
        policy_of(office.config),
        update_max_ops=office.config.central.update_max_ops,
    )


def audited(office: Any, actor: Any, action: str, target: str, out: Outcome, **detail: Any) -> None:
    """After a change from the console or the API: the audit log entry (never a token or a
    link), and the doors' versions published through the server's connection."""
    from edgegate.central.services import audit

    audit.record(office.engine, actor, action, target, **detail)
    if out.versions and office.publish_versions is not None:
        office.publish_versions(office.master())


def change_as(
    office: Any, actor: Any, action: str, target: str, fn: Callable[[VisitDesk], Outcome]
) -> Outcome:
    """One change from the console or the API: ``fn`` on a desk of this thread, audited and
    published (blocking: call it in a worker thread)."""
    out = fn(desk_of_office(office))
    audited(office, actor, action, target, out, versions=out.versions)
    return out
