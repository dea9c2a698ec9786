"""Alarms at the office: raised from door events, handled by operators, escalated, measured.

One service for the CLI (``edgegate central alarms ...``), ``central serve`` (ingest and
escalation) and the console's pages and REST API. docs/alarms.md describes the behaviour.

* **Ingest** reads the event archive past its cursor (``alarm_ingest``), in archive order,
  and in the same transaction raises an alarm per alarming event (``EVENT_ALARMS``; the
  archive ``id`` is unique on the alarm, so a re-read raises nothing twice), opens and closes
  reader faults (``reader_faults``), and notes recoveries on the open alarms they concern.
  A door whose availability turned ``offline`` raises ``door_offline`` (once per outage).
* **States**: new -> acknowledged -> cleared, each change by an operator with a note, all in
  ``alarm_history``. Clearing a new alarm acknowledges it at the same moment.
* **Escalation**: an alarm still ``new`` ``escalate_minutes`` (per priority) after it was
  raised goes to every webhook URL and e-mail address of ``[alarms]``. Each target is recorded
  in the history when it succeeded, so a retry after a failure never sends twice to a target
  that already has it; the alarm is marked escalated once every target has it.
* **Timeliness**: time to acknowledge and to clear, per alarm, per day and per door.

Escalation runs in one office instance at a time (a duty of ``central serve``); everything
else is safe from any number of processes.

Every transaction that changes what the alarm views show (raised, escalated, acknowledged,
cleared, a note in the history) tells the live views of every ``central serve`` instance
(central/live_feed.py): on PostgreSQL a NOTIFY inside the transaction (``archive.announce``:
sent at commit, never for a rollback), and after the commit the ``changed`` hook of the
process that wrote (``central serve`` wakes its own feed with it: what SQLite, which has no
NOTIFY, relies on). Whoever writes, the console, the REST API, the CLI or the duty holder,
goes through here, so none of them can forget it.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import and_, column, func, or_, select, table, update
from sqlalchemy.engine import Connection, Engine

from edgegate.central import archive
from edgegate.central.alarms_config import AlarmsSection
from edgegate.central.engine import reading
from edgegate.central.schema import metadata
from edgegate.central.schema.alarms import (
    TABLES,
    alarm_history,
    alarm_ingest,
    alarms,
    reader_faults,
)
from edgegate.contract.events import SIREN_ALARMS
from edgegate.errors import EdgegateError
from edgegate.store.journal import parse_rfc3339

log = structlog.get_logger(__name__)

# Door event type -> alarm type.
EVENT_ALARMS = {
    "door_forced": "door_forced",
    "door_held_open": "door_held_open",
    "tailgating": "tailgating",
    "reader_tamper": "tamper",
    "reader_fault": "reader_fault",
    "assist_requested": "assist_requested",
    "duress": "duress",
    "emergency_on": "emergency_on",
    "lockout": "lockout",
}
# Every event type the ingest acts on.
WATCHED = sorted({*EVENT_ALARMS, "reader_recovered"})
STATES = ("new", "acknowledged", "cleared")
OPEN = ("new", "acknowledged")
CURSOR = "events"

# The archive's tables, as far as this module reads them (owned by the archive's code).
events_t = table(
    "events",
    column("n"),
    column("id"),
    column("site"),
    column("door"),
    column("ts"),
    column("type"),
    column("payload"),
)
doors_t = table(
    "doors",
    column("site"),
    column("door"),
    column("availability"),
    column("changed"),
    column("state"),
    column("telemetry"),
)


class AlarmError(EdgegateError, ValueError):
    """An operator action the alarm's state does not allow, or an unknown alarm."""


def ensure_tables(engine: Engine) -> None:
    """Create this feature's tables if missing (new tables need no migration revision)."""
    metadata.create_all(engine, tables=list(TABLES))


def history_mark(engine: Engine) -> int:
    """The newest history row's id: every change of an alarm (raised, acknowledged, cleared,
    escalated, a note) adds one, whichever process made it. The live feed compares it at
    each read (central/live_feed.py)."""
    with reading(engine) as conn:
        return int(conn.execute(select(func.max(alarm_history.c.id))).scalar() or 0)


@dataclass(frozen=True)
class Escalation:
    """What is sent for one escalated alarm: a JSON body and an e-mail subject and text."""

    alarm: dict[str, Any]
    body: str
    subject: str
    text: str


Sender = Callable[[str, str, Escalation], None]  # (channel, target, escalation); raises


class AlarmService:
    def __init__(
        self,
        engine: Engine,
        cfg: AlarmsSection,
        site: str,
        changed: archive.LiveChanged | None = None,
    ) -> None:
        self.engine = engine
        self.cfg = cfg
        self.site = site
        # Called after each commit that changed an alarm, on the committing thread (the
        # module docstring); ``central serve`` and its console pass one, the CLI none.
        self.changed = changed
        # The doors' availability as the last writing pass saw it (``_quiet``).
        self._doors_seen: tuple[tuple[Any, ...], ...] | None = None

    # --- ingest -----------------------------------------------------------------------------
    def ingest(self, now: float, limit: int = 1000) -> int:
        """Read new archive events (at most ``limit`` of the types it acts on); returns how
        many alarms were raised.

        Only the types that matter are read (the archive's ``(type, n)`` index), so the many
        grants and denials cost nothing; the cursor then moves to the archive's end as it was
        at the start of this transaction."""
        # Most passes find nothing to do: find that out on the read path (no write lock on
        # SQLite, where the archive's writer would wait for it, "database is locked").
        with reading(self.engine) as conn:
            quiet, doors_now = self._quiet(conn)
        if quiet:
            return 0
        raised = noted = 0
        with self.engine.begin() as conn:
            pos = conn.execute(
                select(alarm_ingest.c.position).where(alarm_ingest.c.name == CURSOR)
            ).scalar()
            if pos is None:
                conn.execute(alarm_ingest.insert().values(name=CURSOR, position=0))
                pos = 0
            end = conn.execute(select(func.max(events_t.c.n))).scalar() or 0
            rows = conn.execute(
                select(
                    events_t.c.n,
                    events_t.c.id,
                    events_t.c.door,
                    events_t.c.type,
                    events_t.c.ts,
                    events_t.c.payload,
                )
                .where(events_t.c.n > pos, events_t.c.n <= end, events_t.c.type.in_(WATCHED))
                .order_by(events_t.c.n)
                .limit(limit)
            ).all()
            # One query for the ids already raised (a re-read after a crash), one insert of
            # every new alarm at the end: a burst of alarms costs a few statements, not three
            # per alarm.
            ids = [r[1] for r in rows if r[3] in EVENT_ALARMS]
            seen = set(
                conn.execute(select(alarms.c.event_id).where(alarms.c.event_id.in_(ids))).scalars()
            )
            pending: list[dict[str, Any]] = []
            for n, event_id, door, type_, ts, payload in rows:
                try:
                    body = json.loads(payload)
                    at = parse_rfc3339(ts)
                except (ValueError, TypeError):
                    body = None
                if not isinstance(body, dict):
                    log.warning("alarm_ingest_skipped", n=n, reason="bad ts or payload")
                    continue
                if type_ == "reader_recovered":
                    # Its note goes on alarms raised earlier in this batch too.
                    raised += self._insert(conn, pending)
                noted += self._faults(conn, door, type_, at, body)
                alarm_type = EVENT_ALARMS.get(type_)
                if alarm_type is not None and event_id not in seen:
                    pending.append(self._row(door, alarm_type, at, body, event_id))
            raised += self._insert(conn, pending)
            # A full batch: more may follow, go on from its last row; else all is read.
            upto = rows[-1][0] if len(rows) == limit else end
            if upto != pos:
                conn.execute(
                    update(alarm_ingest).where(alarm_ingest.c.name == CURSOR).values(position=upto)
                )
            offline, back = self._offline(conn, now)
            raised += offline
            noted += back
            if raised or noted:
                archive.announce(conn, archive.LIVE_ALARMS)
        self._doors_seen = doors_now
        if raised or noted:
            self._told()
        return raised

    def _changing(self) -> AbstractContextManager[Connection]:
        """One transaction that changes an alarm: every instance's live views are told at
        its commit (the module docstring), nobody if it raised."""
        return archive.changing(self.engine, archive.LIVE_ALARMS, self.changed)

    def _told(self) -> None:
        if self.changed is not None:
            self.changed(archive.LIVE_ALARMS)

    def _quiet(self, conn: Connection) -> tuple[bool, tuple[tuple[Any, ...], ...]]:
        """(nothing to ingest, the doors' availability now): no event of a watched type past
        the cursor (the ``(type, n)`` index) and no door's availability changed since the
        last pass that wrote."""
        doors_now = tuple(
            tuple(r)
            for r in conn.execute(
                select(doors_t.c.door, doors_t.c.availability, doors_t.c.changed).order_by(
                    doors_t.c.door
                )
            ).all()
        )
        pos = conn.execute(
            select(alarm_ingest.c.position).where(alarm_ingest.c.name == CURSOR)
        ).scalar()
        if pos is None or doors_now != self._doors_seen:
            return False, doors_now
        watched = conn.execute(
            select(events_t.c.n).where(events_t.c.n > pos, events_t.c.type.in_(WATCHED)).limit(1)
        ).first()
        return watched is None, doors_now

    def _faults(self, conn: Connection, door: str, type_: str, at: float, body: dict) -> int:
        """A reader fault opens a fault row (if none is open), its recovery closes it and
        notes it on the reader's open ``reader_fault`` alarms; returns how many notes."""
        reader = body.get("reader")
        if not reader:
            return 0
        reader = str(reader)
        if type_ == "reader_fault":
            open_fault = conn.execute(
                select(reader_faults.c.id).where(
                    reader_faults.c.door == door,
                    reader_faults.c.reader == reader,
                    reader_faults.c.ended.is_(None),
                )
            ).first()
            if open_fault is None:
                conn.execute(
                    reader_faults.insert().values(
                        site=self.site,
                        door=door,
                        reader=reader,
                        started=at,
                        error=str(body.get("error", ""))[:1000],
                    )
                )
        elif type_ == "reader_recovered":
            conn.execute(
                update(reader_faults)
                .where(
                    reader_faults.c.door == door,
                    reader_faults.c.reader == reader,
                    reader_faults.c.ended.is_(None),
                )
                .values(ended=at)
            )
            return self._note_open(
                conn, door, "reader_fault", at, "recovered", f"reader {reader}", reader=reader
            )
        return 0

    def _row(
        self,
        door: str,
        alarm_type: str,
        at: float,
        detail: dict[str, Any],
        event_id: str | None = None,
    ) -> dict[str, Any]:
        person, reader = detail.get("person"), detail.get("reader")
        return {
            "site": self.site,
            "door": door,
            "type": alarm_type,
            "priority": self.cfg.priority(door, alarm_type),
            "state": "new",
            "raised": at,
            "event_id": event_id,
            "reader": str(reader) if reader is not None else None,
            "person": str(person) if person is not None else None,
            "detail": detail,
        }

    def _insert(self, conn: Connection, pending: list[dict[str, Any]]) -> int:
        """Insert the pending alarms and their ``raised`` history rows; empties ``pending``."""
        if not pending:
            return 0
        ids = (
            conn.execute(
                alarms.insert().returning(alarms.c.id, sort_by_parameter_order=True), pending
            )
            .scalars()
            .all()
        )
        conn.execute(
            alarm_history.insert(),
            [
                {"alarm_id": i, "ts": a["raised"], "action": "raised", "operator": "", "note": ""}
                for i, a in zip(ids, pending, strict=True)
            ],
        )
        for i, a in zip(ids, pending, strict=True):
            # A duress is logged like any other here: only the office sees it, never the door.
            log.warning(
                "alarm_raised", id=i, door=a["door"], type=a["type"], priority=a["priority"]
            )
        n = len(pending)
        pending.clear()
        return n

    def _note_open(
        self,
        conn: Connection,
        door: str,
        alarm_type: str,
        at: float,
        action: str,
        note: str,
        reader: str | None = None,
    ) -> int:
        q = select(alarms.c.id).where(
            alarms.c.door == door, alarms.c.type == alarm_type, alarms.c.state.in_(OPEN)
        )
        if reader is not None:
            q = q.where(alarms.c.reader == reader)
        ids = conn.execute(q).scalars().all()
        for alarm_id in ids:
            conn.execute(
                alarm_history.insert().values(
                    alarm_id=alarm_id, ts=at, action=action, operator="", note=note
                )
            )
        return len(ids)

    def _offline(self, conn: Connection, now: float) -> tuple[int, int]:
        """``door_offline`` once per outage; a note on it when the door is back. Returns
        (alarms raised, notes written)."""
        raised = noted = 0
        # Two queries whatever the number of doors (this runs every few seconds): the doors,
        # and each door's latest door_offline alarm (ids grow with time).
        latest = (
            select(func.max(alarms.c.id))
            .where(alarms.c.type == "door_offline")
            .group_by(alarms.c.door)
        )
        lasts = {
            r[0]: r[1:]
            for r in conn.execute(
                select(alarms.c.door, alarms.c.id, alarms.c.raised, alarms.c.state).where(
                    alarms.c.id.in_(latest)
                )
            ).all()
        }
        for door, availability, changed in conn.execute(
            select(doors_t.c.door, doors_t.c.availability, doors_t.c.changed)
        ).all():
            changed = float(changed or now)
            last = lasts.get(door)
            if availability == "offline":
                if last is None or last[1] < changed:
                    raised += self._insert(
                        conn, [self._row(door, "door_offline", changed, {"since": changed})]
                    )
            elif availability == "online" and last is not None and last[2] in OPEN:
                back = conn.execute(
                    select(alarm_history.c.id).where(
                        alarm_history.c.alarm_id == last[0],
                        alarm_history.c.action == "recovered",
                        alarm_history.c.ts >= changed,
                    )
                ).first()
                if back is None and changed >= last[1]:
                    conn.execute(
                        alarm_history.insert().values(
                            alarm_id=last[0],
                            ts=changed,
                            action="recovered",
                            operator="",
                            note="door online again",
                        )
                    )
                    noted += 1
        return raised, noted

    # --- operators ----------------------------------------------------------------------------
    def get(self, alarm_id: int) -> dict[str, Any]:
        with reading(self.engine) as conn:
            row = conn.execute(select(alarms).where(alarms.c.id == alarm_id)).mappings().first()
        if row is None:
            raise AlarmError(f"no alarm {alarm_id}")
        return dict(row)

    def find(
        self,
        *,
        open_only: bool = True,
        door: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 200,
    ) -> list[dict[str, Any]]:
        q = select(alarms)
        if open_only:
            q = q.where(alarms.c.state.in_(OPEN))
        if door:
            q = q.where(alarms.c.door == door)
        if since is not None:
            q = q.where(alarms.c.raised >= since)
        if until is not None:
            q = q.where(alarms.c.raised < until)
        # Highest priority first, then the oldest: what needs a person most, at the top.
        rank = {p: i for i, p in enumerate(("critical", "high", "medium", "low"))}
        with reading(self.engine) as conn:
            rows = [dict(r) for r in conn.execute(q.order_by(alarms.c.raised)).mappings()]
        rows.sort(key=lambda r: (r["state"] == "cleared", rank.get(r["priority"], 9)))
        return rows[:limit]

    def history(self, alarm_id: int) -> list[dict[str, Any]]:
        with reading(self.engine) as conn:
            return [
                dict(r)
                for r in conn.execute(
                    select(alarm_history)
                    .where(alarm_history.c.alarm_id == alarm_id)
                    .order_by(alarm_history.c.ts, alarm_history.c.id)
                ).mappings()
            ]

    def acknowledge(self, alarm_id: int, operator: str, note: str, now: float) -> dict[str, Any]:
        return self._change(alarm_id, operator, note, now, "acknowledged", ("new",))

    def clear(self, alarm_id: int, operator: str, note: str, now: float) -> dict[str, Any]:
        return self._change(alarm_id, operator, note, now, "cleared", OPEN)

    def _change(
        self,
        alarm_id: int,
        operator: str,
        note: str,
        now: float,
        to: str,
        allowed: tuple[str, ...],
    ) -> dict[str, Any]:
        if not operator:
            raise AlarmError("an operator name is required")
        with self._changing() as conn:
            row = conn.execute(select(alarms).where(alarms.c.id == alarm_id)).mappings().first()
            if row is None:
                raise AlarmError(f"no alarm {alarm_id}")
            if row["state"] not in allowed:
                raise AlarmError(f"alarm {alarm_id} is {row['state']}; cannot be {to}")
            values: dict[str, Any] = {"state": to}
            if row["acknowledged"] is None:
                values.update(acknowledged=now, acknowledged_by=operator)
            if to == "cleared":
                values.update(cleared=now, cleared_by=operator)
            # The state in the WHERE: two operators racing, only one changes it.
            cur = conn.execute(
                update(alarms)
                .where(alarms.c.id == alarm_id, alarms.c.state == row["state"])
                .values(**values)
            )
            if cur.rowcount != 1:
                raise AlarmError(f"alarm {alarm_id} changed meanwhile; look again")
            conn.execute(
                alarm_history.insert().values(
                    alarm_id=alarm_id, ts=now, action=to, operator=operator, note=note
                )
            )
        log.info("alarm_" + to, id=alarm_id, operator=operator)
        return {**dict(row), **values}

    def add_history(self, alarm_id: int, action: str, operator: str, note: str, now: float) -> None:
        with self._changing() as conn:
            if conn.execute(select(alarms.c.id).where(alarms.c.id == alarm_id)).first() is None:
                raise AlarmError(f"no alarm {alarm_id}")
            conn.execute(
                alarm_history.insert().values(
                    alarm_id=alarm_id, ts=now, action=action, operator=operator, note=note
                )
            )

    @staticmethod
    def silences_door(alarm: dict[str, Any]) -> bool:
        """Acknowledging this alarm silences the door's alarm output (never for a duress)."""
        return alarm["type"] in SIREN_ALARMS

    # --- escalation ---------------------------------------------------------------------------
    def targets(self, has_smtp: bool, hooks: bool = False) -> list[tuple[str, str]]:
        """(channel, target) of an escalation: the configured URLs and addresses, and with
        ``hooks`` the console's registered webhooks that want ``alarm_escalated`` (queued in
        its outbox, signed there)."""
        out = [("webhook", url) for url in self.cfg.webhook_urls]
        if has_smtp:
            out += [("email", to) for to in self.cfg.email_to]
        if hooks:
            out.append(("hooks", "registered"))
        return out

    def due(self, now: float) -> list[dict[str, Any]]:
        """New alarms past their priority's escalation delay, not yet fully escalated."""
        conds = []
        for priority, minutes in self.cfg.escalate_minutes.items():
            if minutes > 0:
                conds.append(
                    and_(alarms.c.priority == priority, alarms.c.raised <= now - minutes * 60)
                )
        if not conds:
            return []
        q = select(alarms).where(alarms.c.state == "new", alarms.c.escalated.is_(None), or_(*conds))
        with reading(self.engine) as conn:
            return [dict(r) for r in conn.execute(q.order_by(alarms.c.raised)).mappings()]

    def escalation(self, alarm: dict[str, Any], now: float) -> Escalation:
        minutes = round((now - alarm["raised"]) / 60, 2)
        public = {
            k: alarm[k]
            for k in ("id", "site", "door", "type", "priority", "raised", "reader", "person")
        }
        public["raised_at"] = datetime.fromtimestamp(alarm["raised"]).astimezone().isoformat()
        public["detail"] = alarm["detail"]
        body = json.dumps(
            {"type": "alarm_escalated", "minutes_unacknowledged": minutes, "alarm": public},
            separators=(",", ":"),
            sort_keys=True,
        )
        subject = (
            f"[edgegate {alarm['site']}] {alarm['priority']} alarm: {alarm['type']} at "
            f"{alarm['door']}, not acknowledged for {minutes:g} min"
        )
        lines = [
            f"Alarm {alarm['id']}: {alarm['type']} ({alarm['priority']})",
            f"Door: {alarm['door']}",
            f"Raised: {public['raised_at']}",
            f"Not acknowledged for {minutes:g} minutes.",
        ]
        if alarm.get("reader"):
            lines.append(f"Reader: {alarm['reader']}")
        if alarm.get("person"):
            lines.append(f"Person: {alarm['person']}")
        lines.append(f"Acknowledge: edgegate central alarms ack {alarm['id']} --by NAME")
        return Escalation(public, body, subject, "\n".join(lines) + "\n")

    def escalate(self, now: float, send: Sender, *, has_smtp: bool, hooks: bool = False) -> int:
        """Escalate every due alarm to every target it has not reached; returns how many
        alarms became fully escalated. ``send`` blocks (call this off the event loop)."""
        targets = self.targets(has_smtp, hooks)
        done = 0
        for alarm in self.due(now):
            esc = self.escalation(alarm, now)
            reached = {h["note"] for h in self.history(alarm["id"]) if h["action"] == "escalated"}
            ok = True
            for channel, target in targets:
                key = f"{channel}:{target}"
                if key in reached:
                    continue
                try:
                    send(channel, target, esc)
                except Exception as exc:
                    ok = False
                    log.warning(
                        "alarm_escalation_failed", id=alarm["id"], target=key, error=str(exc)
                    )
                    self.add_history(alarm["id"], "escalation_failed", "", f"{key}: {exc}", now)
                    continue
                self.add_history(alarm["id"], "escalated", "", key, now)
            if ok:
                with self._changing() as conn:
                    conn.execute(
                        update(alarms).where(alarms.c.id == alarm["id"]).values(escalated=now)
                    )
                log.warning(
                    "alarm_escalated",
                    id=alarm["id"],
                    door=alarm["door"],
                    type=alarm["type"],
                    targets=len(targets),
                )
                done += 1
        return done

    # --- timeliness ---------------------------------------------------------------------------
    def timeliness(self, since: float | None, until: float | None) -> dict[str, Any]:
        """Time to acknowledge and to clear: per alarm, per (local) day and per door."""
        rows = self.find(open_only=False, since=since, until=until, limit=10**9)
        per_alarm = [
            {
                "id": r["id"],
                "door": r["door"],
                "type": r["type"],
                "priority": r["priority"],
                "raised": r["raised"],
                "state": r["state"],
                "to_acknowledge": _delta(r["acknowledged"], r["raised"]),
                "to_clear": _delta(r["cleared"], r["raised"]),
                "escalated": r["escalated"] is not None,
            }
            for r in sorted(rows, key=lambda r: r["raised"])
        ]
        by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
        by_door: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for a in per_alarm:
            by_day[datetime.fromtimestamp(a["raised"]).astimezone().date().isoformat()].append(a)
            by_door[a["door"]].append(a)
        return {
            "alarms": per_alarm,
            "per_day": {k: _summary(v) for k, v in sorted(by_day.items())},
            "per_door": {k: _summary(v) for k, v in sorted(by_door.items())},
        }

    def count_open(self) -> int:
        with reading(self.engine) as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(alarms).where(alarms.c.state.in_(OPEN))
                ).scalar()
                or 0
            )


def _delta(later: float | None, earlier: float) -> float | None:
    return None if later is None else round(max(0.0, later - earlier), 3)


def _stats(values: Iterable[float | None]) -> dict[str, float | None]:
    vals = [v for v in values if v is not None]
    if not vals:
        return {"mean": None, "median": None, "max": None}
    return {
        "mean": round(statistics.fmean(vals), 1),
        "median": round(statistics.median(vals), 1),
        "max": round(max(vals), 1),
    }


def _summary(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "alarms": len(items),
        "acknowledged": sum(a["to_acknowledge"] is not None for a in items),
        "cleared": sum(a["to_clear"] is not None for a in items),
        "escalated": sum(a["escalated"] for a in items),
        "to_acknowledge_s": _stats(a["to_acknowledge"] for a in items),
        "to_clear_s": _stats(a["to_clear"] for a in items),
    }
