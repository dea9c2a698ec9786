"""Nothing is lost end to end: a 10,000-event stream from a real door daemon to a real office
(``edgegate central serve``) through eleven broker ``kill -9``s and a ``kill -9`` of the daemon,
with a CPU hog running. The office's receipts make the door send again what a killed broker
had acknowledged and lost, so every event ends in the archive, each once, and the door holds
none that no receipt covered (docs/mqtt.md, receipts)."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgegate.sim.broker import Broker
from edgegate.sim.rdm6300 import Rdm6300Simulator
from edgegate.store import journal
from edgegate.store.db import open_db, transaction
from tests.sync.office import Office, door_config, start_door, wait_for

# 10,000 events through twelve kills: 2-4 minutes on 2 cores shared with other suites (load
# 10-16); at load 20 the stream itself runs at ~30 events/s and takes over 5 minutes; at
# load 25 (the office's ingest gets a tenth of a core) about 9.5 minutes.
pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(600)]
N = 10_000
BROKER_KILLS = 11
# A short receipt timeout: the lost events come again within seconds, not minutes.
RECEIPT_TIMEOUT = 3
# The door at most this far ahead of the office's receipts: the tests' broker rewrites its
# whole persistence file on every change, so what queues there for the office sets its pace.
RECEIPT_WINDOW = 256


def fill_journal(db: Path, n: int) -> list[str]:
    conn = open_db(db, synchronous="NORMAL")
    with transaction(conn):
        ids = [
            journal.append(conn, "stream", {"i": i}, site="test", door="d1", now=time.time()).id
            for i in range(n)
        ]
    conn.close()
    return ids


def door_count(db: Path, where: str) -> int:
    conn = open_db(db, readonly=True, check=False)
    try:
        return conn.execute(f"SELECT COUNT(*) FROM events WHERE {where}").fetchone()[0]
    finally:
        conn.close()


def archived_count(office: Office) -> int:
    if not office.db.exists():
        return 0
    conn = sqlite3.connect(f"file:{office.db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute("SELECT COUNT(*) FROM events WHERE type = 'stream'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def office_counter(office: Office, name: str) -> int:
    conn = sqlite3.connect(f"file:{office.db}?mode=ro", uri=True, timeout=10)
    try:
        row = conn.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return row[0] if row else 0
    finally:
        conn.close()


def test_broker_kills_and_daemon_kill9_lose_nothing(tmp_path: Path, broker: Broker, subprocess_env):
    sim = Rdm6300Simulator()
    office = Office(tmp_path, broker, subprocess_env)
    cfg = door_config(
        tmp_path,
        sim.port,
        broker,
        office.public_key,
        max_inflight=64,
        receipt_timeout_seconds=RECEIPT_TIMEOUT,
        receipt_window=RECEIPT_WINDOW,
        telemetry_seconds=60,
    )
    ids = fill_journal(tmp_path / "door.db", N)
    # The CPU loaded: one busy process besides the door, the office and the broker.
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])

    def start() -> subprocess.Popen:
        return start_door(cfg, subprocess_env)

    def kill_broker() -> None:
        broker.stop(kill=True)
        time.sleep(0.3)
        broker.start()

    t0 = time.monotonic()
    office.start()
    proc: subprocess.Popen | None = None
    broker_kills = daemon_kills = 0
    try:
        office.wait_subscribed()
        proc = start()
        # Kills spread over the stream, the daemon's in the middle of it.
        for k in range(BROKER_KILLS):
            wait_for(lambda k=k: archived_count(office) >= N * (k + 1) // 14, 150, "progress")
            kill_broker()
            broker_kills += 1
            if k == BROKER_KILLS // 2:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                daemon_kills += 1
                proc = start()
        wait_for(lambda: archived_count(office) >= N, 300, f"all {N} events at the office")
        # ... and the door learns it: every event covered by a receipt.
        wait_for(
            lambda: door_count(tmp_path / "door.db", "archived IS NULL") == 0,
            30,
            "every event archived at the door",
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        hog.kill()
        hog.wait()
        if proc is not None and proc.poll() is None:
            proc.kill()
        office.stop()
        sim.close()

    got = office.ids("stream")
    assert got == set(ids), f"{len(set(ids) - got)} events missing"
    duplicates = office_counter(office, "duplicate_events")
    print(
        f"{N} events, all archived once, {duplicates} duplicates dropped, "
        f"{broker_kills} broker kills, {daemon_kills} daemon kill -9, "
        f"{time.monotonic() - t0:.1f} s"
    )
    assert broker_kills >= 10 and daemon_kills == 1
    assert door_count(tmp_path / "door.db", "sent = 0 OR archived IS NULL") == 0
