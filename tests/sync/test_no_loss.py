"""Nothing is lost by the door: a 10,000-event stream through repeated broker kills and a
kill -9 of the daemon itself, counted at a central subscriber with a persistent session."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from edgegate.contract import signing
from edgegate.sim.broker import Broker
from edgegate.sim.rdm6300 import Rdm6300Simulator
from edgegate.store import journal
from edgegate.store.db import open_db, transaction
from tests.conftest import EDGEGATE, REPO, write_config_file
from tests.sync.central import KEY, Central

# 10,000 events through five kills: 20-70 s on 2 cores, more on a loaded machine.
pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(300)]
N = 10_000


def write_config(tmp_path: Path, port: str, broker: Broker) -> Path:
    path = write_config_file(tmp_path, port)  # the door of the other daemon tests, plus:
    key = signing.public_text(KEY.public_key())
    with path.open("a") as f:
        f.write(
            f"""
[mqtt]
host = "{broker.host}"
port = {broker.port}
keepalive = 5
max_inflight = 64
backoff_min_seconds = 0.05
backoff_max_seconds = 0.3
central_public_keys = ["{key}"]

[daemon]
watchdog = false
"""
        )
    return path


def fill_journal(db: Path, n: int) -> list[str]:
    conn = open_db(db, synchronous="NORMAL")
    with transaction(conn):
        ids = [
            journal.append(conn, "stream", {"i": i}, site="test", door="d1", now=time.time()).id
            for i in range(n)
        ]
    conn.close()
    return ids


def unsent(db: Path) -> int:
    conn = open_db(db, readonly=True, check=False)
    try:
        return conn.execute("SELECT COUNT(*) FROM events WHERE sent = 0").fetchone()[0]
    finally:
        conn.close()


def test_broker_kills_and_daemon_kill9_lose_nothing(tmp_path: Path, broker: Broker, subprocess_env):
    sim = Rdm6300Simulator()
    cfg = write_config(tmp_path, sim.port, broker)
    ids = fill_journal(tmp_path / "door.db", N)
    central = Central(broker)

    def start() -> subprocess.Popen:
        return subprocess.Popen(
            [*EDGEGATE, "run", "--config", str(cfg)],
            cwd=REPO,
            env=subprocess_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def arrived() -> int:
        return len({e["id"] for e in central.events_of("stream")})

    def wait_arrived(k: int, timeout: float = 60) -> None:
        central.wait_for(lambda c: arrived() >= k, timeout)

    def settle(timeout: float = 90) -> None:
        """Until every event arrived, or the door holds nothing unsent and nothing new has
        arrived for 5 s (what a killed broker lost will not come)."""
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            got = arrived()
            if got >= N:
                return
            if got != last:
                last, since = got, time.monotonic()
            elif time.monotonic() - since > 5 and unsent(tmp_path / "door.db") == 0:
                return
            time.sleep(0.1)
        pytest.fail(f"{N - arrived()} events still missing after {timeout} s")

    t0 = time.monotonic()
    proc = start()
    broker_kills = daemon_kills = 0
    try:
        for fraction in (0.1, 0.25, 0.4):
            wait_arrived(int(N * fraction))
            broker.stop(kill=True)
            broker_kills += 1
            time.sleep(0.3)
            broker.start()
        wait_arrived(int(N * 0.55))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        daemon_kills += 1
        proc = start()
        wait_arrived(int(N * 0.7))
        broker.stop(kill=True)
        broker_kills += 1
        time.sleep(0.3)
        broker.start()
        settle()
        # Marked sent once their PUBACKs are in (the central may see a message first).
        deadline = time.monotonic() + 10
        while unsent(tmp_path / "door.db") and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        central.close()
        sim.close()

    got = central.events_of("stream")
    counts = Counter(e["id"] for e in got)
    missing = set(ids) - set(counts)
    conn = open_db(tmp_path / "door.db", readonly=True, check=False)
    sent = {r[0] for r in conn.execute("SELECT id FROM events WHERE type = 'stream' AND sent")}
    conn.close()
    # The door's guarantee ends at the broker's PUBACK. A broker killed with -9 can lose a
    # message it had acknowledged but not yet delivered or saved (mosquitto acknowledges
    # before its autosave): seen once, 1 of 10,000, with the CPU loaded. Such a loss is
    # reported; an event the door did not hand over (unsent) may never be missing.
    assert not missing - sent, f"{len(missing - sent)} events lost by the door"
    assert len(missing) <= N // 1000, f"{len(missing)} acknowledged events lost by the broker"
    duplicates = sum(c - 1 for c in counts.values())
    print(
        f"{N} events, {len(got)} deliveries, {duplicates} duplicates, "
        f"{len(missing)} lost by the killed broker after its PUBACK, "
        f"{broker_kills} broker kills, {daemon_kills} daemon kill -9, "
        f"{time.monotonic() - t0:.1f} s"
    )
    # First arrivals come in journal order.
    first: dict[str, int] = {}
    for e in got:
        first.setdefault(e["id"], e["i"])
    order = list(first.values())
    assert order == sorted(order) and len(order) == N - len(missing)
    assert unsent(tmp_path / "door.db") == 0
