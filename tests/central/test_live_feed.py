"""The live feed (central/live_feed.py) on its own, against real engines: every archived row
reaches the sink once, in arrival order, whoever wrote it.

On PostgreSQL the periodic read is switched off (an hour), so what arrives came from the
NOTIFY of the insert's transaction or from the read the feed makes when it listens again; the
cluster is restarted under the feed (a cluster of the test's own: the session's is shared)
and the rows written while it was down, and after, still arrive, none twice.
On SQLite (one instance) the in-process wake reads them, and the periodic read finds rows
another process wrote (the CLI).

Alarms: every write of the alarm service (raise, acknowledge, clear, whoever calls it)
reaches every instance's feed: on PostgreSQL by the NOTIFY of its own transaction, two feeds
standing for two instances; on SQLite by the service's ``changed`` hook (what serve hands to
its alarm service and its console), or, for a process without it (the CLI), by the alarm
mark the periodic read compares."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from edgegate.central import archive, live_feed, migrate
from edgegate.central.alarms import AlarmError, AlarmService
from edgegate.central.alarms_config import AlarmsSection
from edgegate.central.engine import make_engine
from edgegate.central.live_feed import LiveFeed
from edgegate.sim.postgres import Postgres
from tests.central.conftest import wait_until


class FeedThread:
    """A ``LiveFeed`` on an asyncio loop of its own, as ``central serve`` runs it."""

    def __init__(self, engine: Engine) -> None:
        self.changes: list[live_feed.Change] = []  # extended on the loop thread only
        self.loop = asyncio.new_event_loop()
        self.feed = LiveFeed(engine, self.changes.extend, "test")
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.feed.start())
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert started.wait(30)

    def on_loop(self, fn: Callable[..., Any], *args: Any) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def ids(self) -> list[str]:
        return [item["id"] for kind, item in list(self.changes) if kind == "event"]

    def kinds(self) -> set[str]:
        return {kind for kind, _ in list(self.changes)}

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.feed.stop(), self.loop).result(15)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(15)


def write(
    engine: Engine, ids: list[str], door: str = "front", type_: str = "access_granted"
) -> None:
    now = time.time()
    rows = [
        archive.event_row(
            "hq",
            door,
            {"id": i, "seq": k, "ts": "2026-12-01T10:00:00.000Z", "type": type_},
            now,
        )
        for k, i in enumerate(ids, 1)
    ]
    with engine.begin() as conn:
        archive.archive_rows(conn, rows)


@pytest.fixture
def own_postgres() -> Iterator[Postgres]:
    with Postgres() as pg:
        yield pg


def test_postgres_notifications_and_a_restart(
    own_postgres: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live_feed, "POLL_SECONDS", 3600.0)
    monkeypatch.setattr(live_feed, "POLL_UNHEARD_SECONDS", 3600.0)
    url = own_postgres.database()
    writer = make_engine(url)
    migrate.upgrade(writer)
    write(writer, ["old-1", "old-2"])  # before the feed: not shown (it starts at the end)
    feed = FeedThread(make_engine(url))
    try:
        wait_until(lambda: feed.feed.listening, 30, "the feed to listen")
        first = [f"a-{i}" for i in range(10)]
        for i in range(0, 10, 2):  # several transactions, several notifications
            write(writer, first[i : i + 2])
        wait_until(lambda: feed.ids() == first, 30, "the first rows")
        assert ("door", {}) in feed.changes  # the board re-reads: last seen moved

        own_postgres.stop()
        wait_until(lambda: not feed.feed.listening, 30, "the feed to notice")
        own_postgres.start()
        second = [f"b-{i}" for i in range(10)]
        write(writer, second[:5])  # perhaps before it listens again: found by its read
        wait_until(lambda: feed.feed.listening, 60, "the feed to listen again")
        write(writer, second[5:])  # heard
        write(writer, ["a-0", "b-9"])  # copies: nothing new, nothing shown
        wait_until(lambda: feed.ids()[-1:] == ["b-9"], 30, "the rows after the restart")
        assert feed.ids() == first + second  # each once, in arrival order
        ns = [item["n"] for kind, item in feed.changes if kind == "event"]
        assert ns == sorted(ns)
    finally:
        feed.stop()
        writer.dispose()


def test_sqlite_wakes_in_process_and_polls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "central.db"
    writer = make_engine(db)
    migrate.upgrade(writer)
    monkeypatch.setattr(live_feed, "POLL_SECONDS", 3600.0)
    feed = FeedThread(make_engine(db))
    try:
        write(writer, ["s-1", "s-2"])
        feed.on_loop(feed.feed.local, {live_feed.EVENTS})  # what serve does after a commit
        wait_until(lambda: feed.ids() == ["s-1", "s-2"], 30, "the woken read")
        # Enrolment steps pass through as they are; alarms only say "re-read".
        step = ("enrol", {"progress": "x"})
        feed.on_loop(feed.feed.local, {live_feed.ALARMS}, [step])
        wait_until(lambda: step in feed.changes and "alarm" in feed.kinds(), 30, "pass-through")
    finally:
        feed.stop()
    # Nothing woke it: the periodic read finds a row another process wrote.
    monkeypatch.setattr(live_feed, "POLL_SECONDS", 0.1)
    feed = FeedThread(make_engine(db))
    try:
        write(writer, ["s-3"])
        wait_until(lambda: feed.ids() == ["s-3"], 30, "the periodic read")
    finally:
        feed.stop()
        writer.dispose()


def raise_alarm(engine: Engine, service: AlarmService, event_id: str) -> int:
    """A forced door archived and ingested (what the duty holder does): the alarm's id."""
    write(engine, [event_id], type_="door_forced")
    assert service.ingest(time.time()) == 1
    return next(a["id"] for a in service.find() if a["event_id"] == event_id)


def test_alarm_changes_reach_every_instance_on_postgres(
    postgres_cluster: Postgres, office_template: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two instances' feeds on one PostgreSQL, no periodic read: what instance A's alarm
    service commits (raised, acknowledged, cleared) wakes both at once."""
    monkeypatch.setattr(live_feed, "POLL_SECONDS", 3600.0)
    monkeypatch.setattr(live_feed, "POLL_UNHEARD_SECONDS", 3600.0)
    url = postgres_cluster.database(template=office_template)
    writer = make_engine(url)
    service = AlarmService(writer, AlarmsSection(), "hq")  # instance A's, as its console has
    # Archived before the feeds start (they start at the archive's end): its own NOTIFY is
    # not what they hear when the alarm service raises its alarm.
    write(writer, ["forced-a"], type_="door_forced")
    feeds = [FeedThread(make_engine(url)) for _ in range(2)]

    def alarmed(feed: FeedThread) -> int:
        return sum(kind == "alarm" for kind, _ in list(feed.changes))

    def told_all(change: Callable[[], object], what: str) -> None:
        before = [alarmed(f) for f in feeds]
        change()
        for i, feed in enumerate(feeds):
            wait_until(lambda f=feed, n=before[i]: alarmed(f) > n, 30, f"{what} on instance {i}")

    try:
        for feed in feeds:
            # Listening reads once for whatever changed unheard ("alarm" included); from
            # then on only a NOTIFY tells these feeds anything.
            wait_until(lambda f=feed: f.feed.listening and alarmed(f), 30, "the feeds to listen")
        now = time.time()
        told_all(lambda: service.ingest(now), "the raised alarm")
        (alarm,) = [a["id"] for a in service.find()]
        told_all(lambda: service.acknowledge(alarm, "alice", "on my way", now), "the ack")
        with pytest.raises(AlarmError):  # refused: rolled back, nothing announced
            service.acknowledge(alarm, "bob", "", now)
        told_all(lambda: service.clear(alarm, "alice", "door shut", now), "the clearing")
    finally:
        for feed in feeds:
            feed.stop()
        writer.dispose()


def test_alarm_changes_on_sqlite_hook_and_poll(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: serve's own writes wake its feed through the service's ``changed`` hook (no
    periodic read); a CLI process's (no hook) show at the next periodic read."""
    db = tmp_path / "central.db"
    writer = make_engine(db)
    migrate.upgrade(writer)
    monkeypatch.setattr(live_feed, "POLL_SECONDS", 3600.0)
    feed = FeedThread(make_engine(db))
    hooked = AlarmService(
        writer, AlarmsSection(), "hq", changed=lambda kind: feed.on_loop(feed.feed.local, {kind})
    )
    try:
        alarm = raise_alarm(writer, hooked, "forced-s")
        wait_until(lambda: "alarm" in feed.kinds(), 30, "the raised alarm")
        feed.changes.clear()
        hooked.acknowledge(alarm, "alice", "", time.time())
        wait_until(lambda: "alarm" in feed.kinds(), 30, "the acknowledgement")
    finally:
        feed.stop()
    monkeypatch.setattr(live_feed, "POLL_SECONDS", 0.1)
    feed = FeedThread(make_engine(db))
    try:
        wait_until(lambda: feed.feed.reads >= 2, 30, "a periodic read or two")
        assert "alarm" not in feed.kinds()  # nothing changed since it started
        AlarmService(writer, AlarmsSection(), "hq").clear(alarm, "cli", "", time.time())
        wait_until(lambda: "alarm" in feed.kinds(), 30, "the CLI's clearing")
    finally:
        feed.stop()
        writer.dispose()


def test_a_command_from_another_process_on_sqlite_shows_at_the_next_poll(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: a command the CLI records and sends (its own process: no hook into serve, no
    NOTIFY) moves the commands mark, so serve's feed tells its commands page at the next
    periodic read: once when recorded, once when marked sent, never without a change."""
    db = tmp_path / "central.db"
    cli = make_engine(db)
    migrate.upgrade(cli)
    monkeypatch.setattr(live_feed, "POLL_SECONDS", 0.1)
    feed = FeedThread(make_engine(db))
    message = {"id": "c-1", "door": "front", "cmd": "open", "issued": "2026-12-03T05:00:00Z"}
    try:
        wait_until(lambda: feed.feed.reads >= 2, 30, "a periodic read or two")
        assert "command" not in feed.kinds()  # nothing changed since it started
        with archive.changing(cli, archive.LIVE_COMMANDS, None) as conn:
            archive.record_command(conn, message)
        wait_until(lambda: "command" in feed.kinds(), 30, "the CLI's command")
        feed.changes.clear()
        reads = feed.feed.reads
        wait_until(lambda: feed.feed.reads >= reads + 2, 30, "more periodic reads")
        assert "command" not in feed.kinds()  # told once, not at every read
        with archive.changing(cli, archive.LIVE_COMMANDS, None) as conn:
            archive.mark_command_sent(conn, "c-1", time.time())
        wait_until(lambda: "command" in feed.kinds(), 30, "the command marked sent")
    finally:
        feed.stop()
        cli.dispose()
