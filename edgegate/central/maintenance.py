"""The equipment register, the maintenance log, the inspection plan and the fault history.

One service for the CLI (``edgegate central equipment|maintenance ...``) and the console.
The register joins what operators enter (models, lock type, installed on, the person
responsible) with what each door reports about itself (``[door] name`` and ``location`` in
its retained state, the reader families in its telemetry). Reader faults are recorded by the
alarm ingest (``edgegate/central/alarms.py``) from the doors' ``reader_fault`` and
``reader_recovered`` events; this module reads them as downtime per month.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine

from edgegate.central.alarms import doors_t, events_t
from edgegate.central.dialect import inserted_id
from edgegate.central.schema.alarms import (
    equipment,
    inspection_plan,
    maintenance_log,
    reader_faults,
)
from edgegate.store.journal import parse_rfc3339

Kind = Literal["inspection", "repair"]
DAY = 86400.0
EQUIPMENT_FIELDS = ("name", "location", "reader_models", "lock_type", "installed_on", "responsible")


def _json(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def month_starts(start: float, end: float) -> list[tuple[str, float, float]]:
    """(YYYY-MM, start, end) of each local calendar month overlapping [start, end)."""
    out = []
    d = (
        datetime.fromtimestamp(start)
        .astimezone()
        .replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    )
    while d.timestamp() < end:
        nxt = d.replace(year=d.year + 1, month=1) if d.month == 12 else d.replace(month=d.month + 1)
        # Month boundaries in local time (a DST change inside a month shifts nothing here).
        nxt = datetime(nxt.year, nxt.month, 1).astimezone()
        out.append((f"{d.year:04d}-{d.month:02d}", d.timestamp(), nxt.timestamp()))
        d = nxt
    return out


def _fault_entry() -> dict[str, Any]:
    return {"faults": 0, "open": 0, "downtime_by_month": {}}


def split_by_month(start: float, end: float) -> dict[str, float]:
    """Seconds of [start, end) in each local month."""
    out: dict[str, float] = {}
    for key, m0, m1 in month_starts(start, end):
        overlap = min(end, m1) - max(start, m0)
        if overlap > 0:
            out[key] = out.get(key, 0.0) + overlap
    return out


class MaintenanceService:
    def __init__(self, engine: Engine, site: str) -> None:
        self.engine = engine
        self.site = site

    # --- equipment register -------------------------------------------------------------------
    def set_equipment(self, door: str, operator: str, now: float, **fields: Any) -> dict[str, Any]:
        unknown = set(fields) - set(EQUIPMENT_FIELDS)
        if unknown:
            raise ValueError(f"unknown equipment field(s) {', '.join(sorted(unknown))}")
        if fields.get("installed_on") is not None:
            fields["installed_on"] = date.fromisoformat(str(fields["installed_on"])).isoformat()
        values = {k: v for k, v in fields.items() if v is not None}
        with self.engine.begin() as conn:
            key = (equipment.c.site == self.site, equipment.c.door == door)
            if conn.execute(select(equipment.c.door).where(*key)).first() is None:
                conn.execute(
                    equipment.insert().values(
                        site=self.site,
                        door=door,
                        reader_models=[],
                        updated=now,
                        updated_by=operator,
                        **values,
                    )
                )
            else:
                conn.execute(
                    update(equipment).where(*key).values(updated=now, updated_by=operator, **values)
                )
        return next(e for e in self.register() if e["door"] == door)

    def register(self) -> list[dict[str, Any]]:
        """Every door known from the register or from the archive, with what it reports."""
        with self.engine.connect() as conn:
            entered = {
                r["door"]: dict(r)
                for r in conn.execute(
                    select(equipment).where(equipment.c.site == self.site)
                ).mappings()
            }
            reported = {
                r.door: (_json(r.state), _json(r.telemetry), r.availability)
                for r in conn.execute(
                    select(
                        doors_t.c.door, doors_t.c.state, doors_t.c.telemetry, doors_t.c.availability
                    )
                ).all()
            }
        doctor = self.doctor_reports()
        out = []
        for door in sorted(set(entered) | set(reported)):
            e = entered.get(door, {})
            state, telemetry, availability = reported.get(door, ({}, {}, "unknown"))
            families = sorted(
                {str(r.get("family")) for r in telemetry.get("readers", []) if r.get("family")}
            )
            out.append(
                {
                    "door": door,
                    "name": e.get("name") or state.get("name") or telemetry.get("name") or "",
                    "location": e.get("location")
                    or state.get("location")
                    or telemetry.get("location")
                    or "",
                    "reported_name": state.get("name", telemetry.get("name")),
                    "reported_location": state.get("location", telemetry.get("location")),
                    "reader_models": e.get("reader_models") or [],
                    "reported_readers": families,
                    "lock_type": e.get("lock_type", ""),
                    "installed_on": e.get("installed_on"),
                    "responsible": e.get("responsible", ""),
                    "availability": availability,
                    "registered": bool(e),
                    "doctor": doctor.get(door),
                }
            )
        return out

    def doctor_reports(self) -> dict[str, dict[str, Any]]:
        """Each door's latest ``doctor_report`` (the live doctor, docs/mqtt.md): when, why,
        the result and the checks that did not pass."""
        last = (
            select(func.max(events_t.c.n))
            .where(events_t.c.type == "doctor_report")
            .group_by(events_t.c.door)
        )
        out: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(events_t.c.door, events_t.c.ts, events_t.c.payload).where(
                    events_t.c.n.in_(last)
                )
            ).all()
        for door, ts, payload in rows:
            body = _json(payload)
            try:
                at: float | None = parse_rfc3339(ts)
            except ValueError:
                at = None
            checks = [c for c in body.get("checks", []) if isinstance(c, dict)]
            out[door] = {
                "at": at,
                "trigger": body.get("trigger"),
                "result": body.get("result"),
                "counts": body.get("counts", {}),
                "problems": [c for c in checks if c.get("status") != "ok"],
            }
        return out

    # --- maintenance log ----------------------------------------------------------------------
    def record(
        self,
        door: str,
        kind: str,  # a Kind; checked here, the boundary every caller (CLI, API, page) crosses
        operator: str,
        *,
        ts: float,
        findings: str = "",
        action: str = "",
        reader: str | None = None,
    ) -> int:
        if kind not in ("inspection", "repair"):
            raise ValueError(f"kind must be inspection or repair, not {kind!r}")
        if not operator:
            raise ValueError("an operator name is required")
        with self.engine.begin() as conn:
            res = conn.execute(
                maintenance_log.insert().values(
                    site=self.site,
                    door=door,
                    kind=kind,
                    ts=ts,
                    operator=operator,
                    reader=reader,
                    findings=findings,
                    action=action,
                )
            )
        return inserted_id(res)

    def log(
        self, *, door: str | None = None, since: float | None = None, until: float | None = None
    ) -> list[dict[str, Any]]:
        q = select(maintenance_log).where(maintenance_log.c.site == self.site)
        if door:
            q = q.where(maintenance_log.c.door == door)
        if since is not None:
            q = q.where(maintenance_log.c.ts >= since)
        if until is not None:
            q = q.where(maintenance_log.c.ts < until)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q.order_by(maintenance_log.c.ts)).mappings()]

    # --- inspection plan ----------------------------------------------------------------------
    def plan(self, door: str, every_days: float, now: float) -> None:
        if every_days <= 0:
            raise ValueError("every_days must be positive")
        with self.engine.begin() as conn:
            key = (inspection_plan.c.site == self.site, inspection_plan.c.door == door)
            if conn.execute(select(inspection_plan.c.door).where(*key)).first() is None:
                conn.execute(
                    inspection_plan.insert().values(
                        site=self.site, door=door, every_days=every_days, since=now
                    )
                )
            else:
                conn.execute(update(inspection_plan).where(*key).values(every_days=every_days))

    def schedule(self, now: float) -> list[dict[str, Any]]:
        """Each planned door: last inspection, next due, overdue (most overdue first)."""
        with self.engine.connect() as conn:
            plans = (
                conn.execute(select(inspection_plan).where(inspection_plan.c.site == self.site))
                .mappings()
                .all()
            )
            last: dict[str, float] = defaultdict(float)
            for door, ts in conn.execute(
                select(maintenance_log.c.door, maintenance_log.c.ts).where(
                    maintenance_log.c.site == self.site, maintenance_log.c.kind == "inspection"
                )
            ).all():
                last[door] = max(last[door], ts)
        out = []
        for p in plans:
            prev = last.get(p["door"])
            due = (prev if prev else p["since"]) + p["every_days"] * DAY
            out.append(
                {
                    "door": p["door"],
                    "every_days": p["every_days"],
                    "last_inspection": prev or None,
                    "due": due,
                    "overdue": due < now,
                    "overdue_days": round(max(0.0, now - due) / DAY, 1),
                }
            )
        out.sort(key=lambda r: r["due"])
        return out

    # --- fault history ------------------------------------------------------------------------
    def faults(
        self, *, since: float | None = None, until: float | None = None, now: float
    ) -> list[dict[str, Any]]:
        q = select(reader_faults).where(reader_faults.c.site == self.site)
        if until is not None:
            q = q.where(reader_faults.c.started < until)
        if since is not None:
            q = q.where((reader_faults.c.ended.is_(None)) | (reader_faults.c.ended >= since))
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(q.order_by(reader_faults.c.started)).mappings()]
        for r in rows:
            r["downtime"] = round((r["ended"] if r["ended"] is not None else now) - r["started"], 3)
        return rows

    def fault_report(
        self, *, since: float | None, until: float | None, now: float
    ) -> dict[str, Any]:
        """Downtime per door and per reader per month; doors with most faults first."""
        faults = self.faults(since=since, until=until, now=now)
        per_reader: dict[tuple[str, str], dict[str, Any]] = {}
        per_door: dict[str, dict[str, Any]] = {}
        for f in faults:
            start = max(f["started"], since) if since is not None else f["started"]
            end = f["ended"] if f["ended"] is not None else now
            if until is not None:
                end = min(end, until)
            months = split_by_month(start, end) if end > start else {}
            reader_entry = per_reader.setdefault((f["door"], f["reader"]), _fault_entry())
            door_entry = per_door.setdefault(f["door"], _fault_entry())
            for entry in (reader_entry, door_entry):
                entry["faults"] += 1
                entry["open"] += f["ended"] is None
                for month, secs in months.items():
                    by = entry["downtime_by_month"]
                    by[month] = round(by.get(month, 0.0) + secs, 3)
        doors = [
            {"door": door, **v, "downtime": round(sum(v["downtime_by_month"].values()), 3)}
            for door, v in per_door.items()
        ]
        doors.sort(key=lambda d: (-d["faults"], -d["downtime"], d["door"]))
        readers = [
            {
                "door": k[0],
                "reader": k[1],
                **v,
                "downtime": round(sum(v["downtime_by_month"].values()), 3),
            }
            for k, v in per_reader.items()
        ]
        readers.sort(key=lambda r: (-r["faults"], -r["downtime"], r["door"], r["reader"]))
        return {"doors": doors, "readers": readers, "faults": faults}
