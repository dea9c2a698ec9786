"""End-to-end receipts (docs/mqtt.md, receipts): the office's run of stored seqs, the door's
``archived`` state, re-sends of what a broker acknowledged and lost, and receipts off."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegate.central import archive as office_archive
from edgegate.central import migrate
from edgegate.central import receipts as office_receipts
from edgegate.central.engine import make_engine
from edgegate.central.schema.archive import events as archive_events
from edgegate.central.store import open_master
from edgegate.contract import messages as m
from edgegate.contract import signing
from edgegate.sim.broker import Broker
from edgegate.sim.rdm6300 import Rdm6300Simulator
from edgegate.store import epoch, journal
from edgegate.store.db import open_db, transaction
from edgegate.sync.drain import prune_step
from tests.central.conftest import Subscriber
from tests.conftest import EDGEGATE, REPO
from tests.sync.office import Office, door_config, start_door, wait_for


def expected_run(seqs: set[int]) -> tuple[int, int] | None:
    if not seqs:
        return None
    first = upto = min(seqs)
    while upto + 1 in seqs:
        upto += 1
    return first, upto


def expected_holes(seqs: set[int], upto: int) -> tuple[int | None, list[tuple[int, int]]]:
    last = max(seqs)
    if last <= upto:
        return None, []
    holes: list[tuple[int, int]] = []
    for s in range(upto + 1, last):
        if s not in seqs:
            if holes and holes[-1][1] == s - 1:
                holes[-1] = (holes[-1][0], s)
            else:
                holes.append((s, s))
    return last, holes[: m.RECEIPT_GAPS]


def _archive(engine, door: str, seqs: list[int], epoch: str = "") -> None:
    evs = [
        {
            "id": f"{door}{epoch}-{s}",
            "seq": s,
            "epoch": epoch,
            "ts": "2026-12-01T00:00:00Z",
            "type": "t",
        }
        for s in seqs
    ]
    with engine.begin() as conn:
        office_archive.archive_events(conn, "test", door, evs, 0.0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.integers(1, 60), max_size=25), min_size=1, max_size=6),
    st.sampled_from(["", "e2"]),
)
def test_run_advanced_batch_by_batch_equals_the_run_from_scratch(tmp_path_factory, batches, epoch):
    """Arrivals in any order, with holes and duplicates: the cached, advanced run is always
    the run computed from the whole archive; another door's seqs never count, nor the
    door's seqs of another journal epoch (its earlier store: ``e1``, or ``''``)."""
    engine = open_master(tmp_path_factory.mktemp("office") / "c.db")
    tracker = office_receipts.Receipts("test", signing.Signer(signing.generate()))
    _archive(engine, "other", list(range(1, 100)), epoch)
    _archive(engine, "d1", list(range(1, 100)), "e1" if epoch else "e3")
    held: set[int] = set()
    key = ("d1", epoch)
    for batch in batches:
        _archive(engine, "d1", batch, epoch)
        held |= set(batch)
        with engine.connect() as conn:
            runs = tracker.advance(conn, {key: batch})
        assert runs.get(key) == expected_run(held)
        if held:
            assert tracker.gaps.get(key, (None, [])) == expected_holes(held, runs[key][1])
    engine.dispose()


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.lists(st.integers(1, 40), max_size=12)), max_size=8))
def test_two_instances_runs_only_cover_what_the_archive_holds(tmp_path_factory, batches):
    """A shared subscription hands a door's events to two instances in turn: each advances
    its run with its own seqs and asks the archive at a hole. Neither ever covers a seq the
    archive lacks, and the one that just stored a batch reaches at least what it stored
    on top of its run."""
    engine = open_master(tmp_path_factory.mktemp("office") / "c.db")
    signer = signing.Signer(signing.generate())
    trackers = [office_receipts.Receipts("test", signer), office_receipts.Receipts("test", signer)]
    held: set[int] = set()
    key = ("d1", "")
    for which, batch in batches:
        _archive(engine, "d1", batch, "")
        held |= set(batch)
        before = trackers[which].runs.get(key)
        with engine.connect() as conn:
            run = trackers[which].advance(conn, {key: batch}).get(key)
        if run is None:
            assert not held
            continue
        assert set(range(run[0], run[1] + 1)) <= held
        if before is None or not batch or min(batch) < before[0]:
            assert run == expected_run(held)  # from the archive alone
        else:
            reach = before[1]
            while reach + 1 in batch:
                reach += 1
            if run[0] == before[0]:  # not restarted lower by the other instance's seqs
                assert run[1] >= reach
    engine.dispose()


_JOURNALS = [("d1", ""), ("d1", "e2"), ("d2", ""), ("d2", "e2")]


def test_many_journals_in_one_round_on_both_engines(office_db):
    """Every journal of a round is asked in one statement (``held_runs``, ``holes``): with
    several doors and epochs at once, two instances storing in turn and events arriving in
    any order, each run is the one computed from the whole archive, each journal's holes
    are its own, and no run ever covers a seq the archive lacks."""
    engine = make_engine(office_db)
    migrate.upgrade(engine)
    signer = signing.Signer(signing.generate())
    step = st.tuples(
        st.booleans(),
        st.dictionaries(
            st.sampled_from(_JOURNALS), st.lists(st.integers(1, 50), max_size=10), max_size=4
        ),
    )

    @settings(max_examples=25, deadline=None)
    @given(st.lists(step, min_size=1, max_size=6))
    def check(steps) -> None:
        with engine.begin() as conn:
            conn.execute(archive_events.delete())
        trackers = [office_receipts.Receipts("test", signer) for _ in range(2)]
        held: dict[tuple[str, str], set[int]] = {key: set() for key in _JOURNALS}
        for which, batches in steps:
            for (door, ep), batch in batches.items():
                _archive(engine, door, sorted(set(batch) - held[(door, ep)]), ep)
                held[(door, ep)] |= set(batch)
            tracker = trackers[which]
            with engine.connect() as conn:
                runs = tracker.advance(conn, batches)
            for key in batches:
                if not held[key]:
                    assert key not in runs
                    continue
                run = runs[key]
                assert set(range(run[0], run[1] + 1)) <= held[key]
                if key in tracker.gaps:
                    last, gaps = tracker.gaps[key]
                    assert (last, gaps) == expected_holes(held[key], run[1])
                # One instance alone holding every batch: its run is the archive's.
                if not any(w != which for w, _ in steps):
                    assert run == expected_run(held[key])
                    assert tracker.gaps.get(key, (None, [])) == expected_holes(held[key], run[1])

    try:
        check()
    finally:
        engine.dispose()


def test_a_lone_instance_advances_in_order_without_asking_the_archive(tmp_path):
    engine = open_master(tmp_path / "c.db")
    tracker = office_receipts.Receipts("test", signing.Signer(signing.generate()))
    key = ("d1", "e1")
    for lo in range(1, 200, 20):
        batch = list(range(lo, lo + 20))
        _archive(engine, "d1", batch, "e1")
        with engine.connect() as conn:
            assert tracker.advance(conn, {key: reversed(batch)})[key] == (1, lo + 19)
    assert tracker.queries == 1  # the first batch only: no run cached yet
    _archive(engine, "d1", [206, 207], "e1")  # 201-205 lost on the way
    with engine.connect() as conn:
        assert tracker.advance(conn, {key: [206, 207]})[key] == (1, 200)
    assert tracker.gaps[key] == (207, [(201, 205)]) and tracker.queries == 2
    _archive(engine, "d1", [201, 202, 203, 204, 205], "e1")  # re-sent
    with engine.connect() as conn:
        assert tracker.advance(conn, {key: [201, 202, 203, 204, 205]})[key] == (1, 207)
    assert key not in tracker.gaps
    engine.dispose()


def test_receipts_are_signed_repeated_only_after_a_pause_and_strict():
    key = signing.generate()
    now = [100.0]
    tracker = office_receipts.Receipts(
        "test", signing.Signer(key), repeat_seconds=2.0, clock=lambda: now[0]
    )
    d1 = ("d1", "")
    assert [r.upto for r in tracker.due({d1: (1, 5)})] == [5]
    assert tracker.due({d1: (1, 5)}) == []  # the same run again, too soon
    now[0] += 1.5
    assert [r.upto for r in tracker.due({d1: (1, 6)})] == [6]  # grew, last one 1.5 s ago
    assert [r.epoch for r in tracker.due({("d1", "e9"): (1, 6)})] == ["e9"]  # another life
    now[0] += 2.5
    assert [r.upto for r in tracker.due({d1: (1, 6)})] == [6]  # repeated for a re-sender
    receipt = tracker.due({("d2", "e1"): (3, 4)})[0]
    payload = signing.Signer(key).sign(receipt.model_dump(mode="json"))
    parsed = m.parse_any_signed(signing.Verifier([key.public_key()]), payload)
    assert isinstance(parsed, m.Receipt) and (parsed.first, parsed.upto) == (3, 4)
    assert parsed.epoch == "e1"
    bad = {**receipt.model_dump(mode="json"), "first": 5}
    with pytest.raises(signing.RejectedMessage, match="malformed"):
        m.parse_signed(
            signing.Verifier([key.public_key()]), signing.Signer(key).sign(bad), m.Receipt
        )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 3), st.sampled_from(["d1", "d2"]), st.integers(0, 600)),
        max_size=30,
    )
)
def test_a_grown_run_is_held_back_at_most_min_gap_and_never_lost(steps):
    """Rounds at random times with random growth: a run that grew goes out at once when the
    door's last receipt is ``min_gap`` old or it grew by ``min_growth``, else with a later
    round (one with nothing new, too) once ``min_gap`` is up; the door's last receipt is
    always its latest run by then."""
    now = [0.0]
    tracker = office_receipts.Receipts(
        "test", signing.Signer(signing.generate()), clock=lambda: now[0]
    )
    latest: dict[tuple[str, str], tuple[int, int]] = {}
    sent: dict[tuple[str, str], tuple[int, float]] = {}
    for gap, door, growth in steps:
        now[0] += gap
        key = (door, "")
        run = (1, latest.get(key, (1, 1))[1] + growth)
        latest[key] = run
        out = {(r.door, r.epoch): r.upto for r in tracker.due({key: run})}
        last = sent.get(key)
        grew = last is None or run[1] != last[0]
        at_once = last is None or now[0] - last[1] >= 1.0 or run[1] - last[0] >= 256
        if grew and at_once:
            assert out.get(key) == run[1]
        elif grew:
            assert key not in out and tracker.held_back
        for k, upto in out.items():
            sent[k] = (upto, now[0])
    now[0] += 1.001  # min_gap and a little: float sums of the steps' gaps round
    for k, upto in {(r.door, r.epoch): r.upto for r in tracker.due({})}.items():
        sent[k] = (upto, now[0])
    assert tracker.held_back == 0
    assert all(sent[k][0] == run[1] for k, run in latest.items())


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.tuples(st.sampled_from(["d1", "d2", "d3"]), st.sampled_from(["", "e1"])),
        st.tuples(st.none() | st.floats(0, 3), st.lists(st.integers(1, 999), max_size=300)),
        max_size=6,
    )
)
def test_runs_are_computed_now_or_kept_for_later_never_dropped(journals):
    """``ready`` splits what was committed: a journal whose last receipt is younger than
    ``min_gap`` with fewer than ``min_growth`` events since waits (its seqs kept whole),
    every other one is computed now."""
    now = [10.0]
    tracker = office_receipts.Receipts(
        "test", signing.Signer(signing.generate()), clock=lambda: now[0]
    )
    committed = {}
    for key, (age, seqs) in journals.items():
        if age is not None:
            tracker._sent[key] = ((1, 1), now[0] - age)
        committed[key] = seqs
    ready, later = tracker.ready(committed)
    assert ready.keys() | later.keys() == committed.keys() and not ready.keys() & later.keys()
    for key, seqs in later.items():
        age = journals[key][0]
        assert seqs == committed[key]
        assert age is not None and age < tracker.min_gap and len(seqs) < tracker.min_growth
    for key in ready:
        age = journals[key][0]
        assert age is None or age >= tracker.min_gap or len(committed[key]) >= 256


def _fill(conn, n: int, ts: float | None = None) -> list[int]:
    with transaction(conn):
        return [
            journal.append(conn, "t", {"i": i}, site="test", door="d1", now=ts or time.time()).seq
            for i in range(n)
        ]


def test_journal_archives_resends_and_prunes_only_archived(tmp_path: Path):
    conn = open_db(tmp_path / "j.db", synchronous="NORMAL")
    seqs = _fill(conn, 30)
    with transaction(conn):
        journal.mark_sent(conn, seqs[:20])
        assert journal.mark_archived(conn, seqs[0], seqs[9], 1.0) == 10
    assert journal.unarchived_count(conn) == 20
    assert journal.max_sent_unarchived(conn) == seqs[19]
    # Receipts on: only the 10 archived may go, even with nothing to keep.
    assert prune_step(conn, 0, None, True) == 10
    # Told what the office lacks (below its first, a hole, above what it holds): only those.
    with transaction(conn):
        lacking = {epoch.current(conn): (seqs[0], [(seqs[11], seqs[12])], seqs[18])}
        assert journal.resend(conn, seqs[19], lacking) == 3  # 11, 12 and 19
        journal.mark_sent(conn, seqs[:20])
    # Re-send: the sent, unarchived ones up to the horizon are unsent again.
    with transaction(conn):
        assert journal.resend(conn, seqs[14]) == 5
    assert journal.unsent_count(conn) == 15
    # A receipt may cover events marked unsent again: they are settled, sent and archived.
    with transaction(conn):
        assert journal.mark_archived(conn, seqs[10], seqs[29], 2.0) == 20
    assert journal.unsent_count(conn) == 0 and journal.unarchived_count(conn) == 0
    conn.close()


def test_migration_counts_events_sent_before_receipts_as_archived(tmp_path: Path):
    from edgegate.store.db import _V7_RECEIPTS, MIGRATIONS

    before = MIGRATIONS[: MIGRATIONS.index(_V7_RECEIPTS)]
    conn = open_db(tmp_path / "old.db", migrations=before)
    with transaction(conn):  # as the journal of that release wrote them
        seqs = [
            conn.execute(
                "INSERT INTO events(id, ts, type, payload) VALUES (?, 't', 't', '{}')", (str(i),)
            ).lastrowid
            for i in range(4)
        ]
    with transaction(conn):
        journal.mark_sent(conn, seqs[:2])
    conn.close()
    conn = open_db(tmp_path / "old.db")
    rows = dict(conn.execute("SELECT seq, archived IS NOT NULL FROM events"))
    assert rows == {seqs[0]: 1, seqs[1]: 1, seqs[2]: 0, seqs[3]: 0}
    conn.close()


def _door_rows(db: Path) -> dict[str, tuple[int, float | None]]:
    conn = open_db(db, readonly=True, check=False)
    try:
        return {r[0]: (r[1], r[2]) for r in conn.execute("SELECT id, sent, archived FROM events")}
    finally:
        conn.close()


@pytest.mark.broker
@pytest.mark.timeout(120)
def test_events_a_broker_acknowledged_and_lost_come_again_until_the_office_has_them(
    tmp_path: Path, broker: Broker, subprocess_env
):
    """A real office (``central serve``), a real door daemon, a real broker. Half the journal
    is marked sent before the door starts: exactly what a broker that acknowledged and then
    lost those events leaves behind. With receipts they are sent again and end archived."""
    office = Office(tmp_path, broker, subprocess_env)
    sim = Rdm6300Simulator()
    cfg = door_config(tmp_path, sim.port, broker, office.public_key, receipt_timeout_seconds=2)
    conn = open_db(tmp_path / "door.db", synchronous="NORMAL")
    seqs = _fill(conn, 200)
    with transaction(conn):
        journal.mark_sent(conn, seqs[:100])  # "acknowledged", never delivered
    conn.close()
    office.start()
    office.wait_subscribed()
    door = start_door(cfg, subprocess_env)
    try:
        wait_for(
            lambda: all(a is not None for _, a in _door_rows(tmp_path / "door.db").values()),
            90,
            "every event archived at the door",
        )
        door_ids = set(_door_rows(tmp_path / "door.db"))
        assert door_ids <= office.ids()

        # The office shows the door's unarchived count from its telemetry.
        def shown() -> bool:
            out = subprocess.run(
                [*EDGEGATE, "central", "doors", "--json", "--config", str(office.config)],
                cwd=REPO,
                env=subprocess_env,
                capture_output=True,
                text=True,
            )
            doors = json.loads(out.stdout)["doors"]
            return bool(doors) and doors[0]["unarchived"] == 0

        wait_for(shown, 30, "central doors showing 0 unarchived")
    finally:
        door.terminate()
        door.wait(15)
        office.stop()
        sim.close()


@pytest.mark.broker
@pytest.mark.timeout(60)
def test_receipts_off_keeps_the_broker_puback_as_the_end(
    tmp_path: Path, broker: Broker, subprocess_env
):
    """A door whose consumer sends no receipts (receipts = false): events count once the
    broker acknowledged them and nothing is re-sent (with receipts on, the 10 events marked
    sent and the 10 the door sends would all go again after the 1 s timeout)."""
    consumer = Subscriber(broker, "edgegate/test/d1/events")
    sim = Rdm6300Simulator()
    key = signing.public_text(signing.generate().public_key())
    cfg = door_config(tmp_path, sim.port, broker, key, receipts=False, receipt_timeout_seconds=1)
    conn = open_db(tmp_path / "door.db", synchronous="NORMAL")
    seqs = _fill(conn, 20)
    with transaction(conn):
        journal.mark_sent(conn, seqs[:10])
    conn.close()
    door = start_door(cfg, subprocess_env)
    try:
        wait_for(
            lambda: all(s for s, _ in _door_rows(tmp_path / "door.db").values()),
            30,
            "every event acknowledged",
        )
        time.sleep(4)  # beyond the 1 s timeout: with receipts on, all would go again
        rows = _door_rows(tmp_path / "door.db")
        assert all(s == 1 and a is None for s, a in rows.values())
        got = [json.loads(p)["seq"] for _, p in consumer.take(10)]
        assert sorted(got) == seqs[10:] and consumer.none_within(0.5)
    finally:
        consumer.close()
        door.terminate()
        door.wait(15)
        sim.close()
