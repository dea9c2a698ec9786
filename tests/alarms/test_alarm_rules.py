"""The alarm rules without a broker: priorities by type and door, the state machine under any
sequence of operator actions (hypothesis), the month split of downtime, the inspection
schedule, and bad archive rows skipped without stopping the ingest. On each engine (a real
SQLite file, a real PostgreSQL database) where the rule touches the store; rows the archive
itself would refuse can only be planted in SQLite."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import column, table

from edgegate.central import archive as office_archive
from edgegate.central import migrate
from edgegate.central.alarms import AlarmError, AlarmService, ensure_tables
from edgegate.central.alarms_config import AlarmsSection
from edgegate.central.engine import make_engine
from edgegate.central.maintenance import MaintenanceService, split_by_month
from edgegate.central.schema.archive import doors
from edgegate.store.journal import rfc3339

T0 = 1_799_056_800.0  # Monday 2027-01-04 10:00 UTC


def office(db: str | Path, **cfg: object) -> AlarmService:
    """``db``: an SQLite file (a directory: its central.db) or a PostgreSQL URL."""
    if isinstance(db, Path):
        db = db / "central.db"
    engine = make_engine(db)
    migrate.upgrade(engine)  # the archive's tables, as `central` makes them
    ensure_tables(engine)
    return AlarmService(engine, AlarmsSection.model_validate(cfg), "hq")


def archive(svc: AlarmService, *events: tuple[str, str, float, dict]) -> None:
    """Well-formed events, stored as serve stores them."""
    with svc.engine.begin() as conn:
        for i, (door, type_, ts, body) in enumerate(events):
            n = len(office_archive.query_events(conn))
            ev = {"id": f"e{n}-{i}", "seq": n, "ts": rfc3339(ts), "type": type_, **body}
            office_archive.archive_events(conn, "hq", door, [ev], T0)


def plant(svc: AlarmService, *events: tuple[str, str, float | str, object]) -> None:
    """Rows the archive would refuse (a bad time, a payload that is no event), written past it
    into SQLite: what an old or damaged archive may hold."""
    t = table(
        "events",
        *(column(c) for c in ("id", "site", "door", "seq", "ts", "type", "payload", "received")),
    )
    with svc.engine.begin() as conn:
        for i, (door, type_, ts, body) in enumerate(events):
            n = conn.exec_driver_sql("SELECT COUNT(*) FROM events").scalar()
            conn.execute(
                t.insert().values(
                    id=f"e{n}-{i}",
                    site="hq",
                    door=door,
                    seq=n,
                    ts=ts if isinstance(ts, str) else rfc3339(ts),
                    type=type_,
                    payload=json.dumps(body),
                    received=T0,
                )
            )


def test_priority_per_type_and_door():
    cfg = AlarmsSection.model_validate(
        {"priorities": {"lockout": "high"}, "door_priorities": {"vault": {"lockout": "critical"}}}
    )
    assert cfg.priority("front", "lockout") == "high"
    assert cfg.priority("vault", "lockout") == "critical"
    assert cfg.priority("front", "duress") == "critical"
    with pytest.raises(ValueError, match="unknown alarm type"):
        AlarmsSection.model_validate({"priorities": {"door_opened": "low"}})
    with pytest.raises(ValueError, match="http"):
        AlarmsSection.model_validate({"webhook_urls": ["ftp://x"]})


def test_bad_archive_rows_are_skipped_and_the_rest_raised(tmp_path: Path):
    svc = office(tmp_path)
    plant(
        svc,
        ("front", "door_forced", "not a time", {}),
        ("front", "door_forced", T0, [1]),  # JSON, but not an event object
        ("front", "lockout", T0, {"reader": "entry", "until": rfc3339(T0 + 300)}),
        ("front", "access_granted", T0, {"person": "alice"}),
    )
    assert svc.ingest(T0) == 1
    assert [(a["type"], a["reader"]) for a in svc.find()] == [("lockout", "entry")]
    assert svc.ingest(T0) == 0  # the cursor moved past everything


ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(["ack", "clear"]), st.integers(0, 2), st.sampled_from(["a", "b", ""])
    ),
    max_size=12,
)


_SHARED: dict[str, AlarmService] = {}


@settings(max_examples=40)
@given(ACTIONS)
def test_states_only_move_forward(tmp_path_factory, actions):
    # One office for every example (a new store per example would cost a migration each);
    # each example works on three alarms of its own.
    if "svc" not in _SHARED:
        _SHARED["svc"] = office(tmp_path_factory.mktemp("o"))
    svc = _SHARED["svc"]
    before_ids = {a["id"] for a in svc.find(open_only=False)}
    archive(svc, *[("front", "door_forced", T0 + i, {}) for i in range(3)])
    svc.ingest(T0)
    ids = sorted(a["id"] for a in svc.find(open_only=False) if a["id"] not in before_ids)
    assert len(ids) == 3
    order = {"new": 0, "acknowledged": 1, "cleared": 2}
    now = T0 + 10
    for action, which, operator in actions:
        before = svc.get(ids[which])
        now += 1
        try:
            (svc.acknowledge if action == "ack" else svc.clear)(ids[which], operator, "n", now)
            ok = True
        except AlarmError:
            ok = False
        after = svc.get(ids[which])
        allowed = (before["state"] == "new") if action == "ack" else before["state"] != "cleared"
        assert ok == (allowed and operator != "")
        assert order[after["state"]] >= order[before["state"]]
        if after["acknowledged"] is not None:
            assert after["acknowledged"] >= after["raised"]
        if after["cleared"] is not None:
            assert after["acknowledged"] is not None and after["cleared"] >= after["acknowledged"]
    for alarm_id in ids:
        changes = [h for h in svc.history(alarm_id) if h["action"] != "raised"]
        state = svc.get(alarm_id)["state"]
        assert len(changes) == order[state] - (state == "cleared" and len(changes) == 1)


@given(st.floats(T0 - 3e7, T0 + 3e7), st.floats(0, 2e7))
def test_downtime_split_by_month_adds_up(start, length):
    parts = split_by_month(start, start + length)
    assert sum(parts.values()) == pytest.approx(length, abs=1e-3)
    assert all(v > 0 for v in parts.values())
    assert list(parts) == sorted(parts)


def test_inspection_schedule_flags_overdue(office_db: str):
    svc = office(office_db)
    m = MaintenanceService(svc.engine, "hq")
    m.plan("front", 30, T0)
    m.plan("back", 7, T0)
    m.record("front", "inspection", "tech", ts=T0 + 20 * 86400, findings="ok")
    m.record("back", "repair", "tech", ts=T0 + 2 * 86400, findings="strike", action="replaced")
    rows = {r["door"]: r for r in m.schedule(T0 + 40 * 86400)}
    assert (
        rows["back"]["overdue"] and rows["back"]["overdue_days"] == 33.0
    )  # a repair is no inspection
    assert not rows["front"]["overdue"] and rows["front"]["due"] == T0 + 50 * 86400
    with pytest.raises(ValueError):
        m.record("front", "cleaning", "tech", ts=T0)  # type: ignore[arg-type]


def test_fault_report_puts_repeated_faults_first(office_db: str):
    svc = office(office_db)
    events = []
    for i in range(3):
        events += [
            ("back", "reader_fault", T0 + i * 1000, {"reader": "finger", "error": "no answer"}),
            ("back", "reader_recovered", T0 + i * 1000 + 60, {"reader": "finger"}),
        ]
    events += [("front", "reader_fault", T0, {"reader": "entry", "error": "EIO"})]
    archive(svc, *events)
    svc.ingest(T0 + 5000)
    rep = MaintenanceService(svc.engine, "hq").fault_report(since=None, until=None, now=T0 + 5000)
    assert [(d["door"], d["faults"], d["open"]) for d in rep["doors"]] == [
        ("back", 3, 0),
        ("front", 1, 1),
    ]
    month = datetime.fromtimestamp(T0).astimezone().strftime("%Y-%m")
    assert rep["doors"][0]["downtime_by_month"] == {month: 180.0}
    assert rep["doors"][1]["downtime"] == 5000.0  # still open: counted until now


def test_handover_lists_visitors_on_site_without_contact_details(office_db: str):
    from edgegate.central import handover

    svc = office(office_db)
    archive(svc, ("front", "door_forced", T0, {}))
    svc.ingest(T0)
    visitor = {
        "visitor_name": "Vera Visitor",
        "company": "ACME",
        "host": "alice",
        "door": "front",
        "contact": "vera@example.org",
        "arrived_at": T0 - 3600,
        "expected_departure": T0 - 60,
        "overdue": True,
    }
    asked: list[float] = []
    rep = handover.report(
        svc,
        MaintenanceService(svc.engine, "hq"),
        T0 - 86400,
        T0 + 60,
        lambda at: asked.append(at) or [visitor],
    )
    assert asked == [T0 + 60]  # who is on site at the end of the shift
    page = handover.html(rep, "hq")
    assert "Vera Visitor" in page and "OVERDUE" in page and "vera@example.org" not in page
    assert "Open alarms (1)" in handover.text(rep)
    none = handover.report(svc, MaintenanceService(svc.engine, "hq"), T0 - 86400, T0 + 60)
    assert "no visitors register given" in handover.text(none)


def test_door_offline_once_per_outage_and_noted_when_back(office_db: str):
    svc = office(office_db)

    def availability(state: str, at: float) -> None:
        with svc.engine.begin() as conn:
            conn.execute(doors.delete().where(doors.c.door == "front"))
            conn.execute(
                doors.insert().values(site="hq", door="front", availability=state, changed=at)
            )

    availability("offline", T0)
    assert svc.ingest(T0 + 1) == 1
    assert svc.ingest(T0 + 2) == 0  # the same outage
    (alarm,) = svc.find()
    assert (alarm["type"], alarm["raised"], alarm["priority"]) == ("door_offline", T0, "high")
    availability("online", T0 + 60)
    svc.ingest(T0 + 61)
    svc.ingest(T0 + 62)
    assert [h["action"] for h in svc.history(alarm["id"])] == ["raised", "recovered"]
    availability("offline", T0 + 120)  # a new outage: a new alarm
    assert svc.ingest(T0 + 121) == 1
    assert len(svc.find()) == 2
