"""Receipt lag: an event stored in the office's archive -> the door marks it ``archived``.

Everything real and in its own process: mosquitto (``edgegate.sim.broker``), the office
(``edgegate central serve`` on SQLite), a door daemon (``edgegate run`` with mock GPIO and a
simulated reader on a pty). This process appends ``--rate`` events per second to the door's
journal for ``--seconds`` (as a door deciding would; the daemon's drain picks them up within a
second), then reads both stores: the office's ``received`` (when the batch holding the event was
stored) and the door's ``archived`` (when the receipt covering it was applied). Both are wall
clocks of this one machine.

    python bench/receipt_lag.py --rate 200 --seconds 30
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgegate.cli.main import main as cli
from edgegate.contract import signing
from edgegate.sim.broker import Broker
from edgegate.sim.rdm6300 import Rdm6300Simulator
from edgegate.store import journal
from edgegate.store.db import open_db, transaction

REPO = Path(__file__).resolve().parents[1]
EDGEGATE = [sys.executable, "-m", "edgegate"]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=int, default=200, help="events per second")
    ap.add_argument("--seconds", type=float, default=30.0)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="edgegate-receipt-lag-"))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with Broker() as broker:
        office_cfg = tmp / "central.toml"
        office_cfg.write_text(
            f'[central]\nsite = "bench"\nkey_file = "{tmp / "central.key"}"\n'
            f'db = "{tmp / "central.db"}"\n\n[mqtt]\nhost = "{broker.host}"\n'
            f"port = {broker.port}\n"
        )
        assert cli(["central", "keygen", "--config", str(office_cfg)]) == 0
        key = signing.public_text(signing.load_private(tmp / "central.key").public_key())
        sim = Rdm6300Simulator()
        door_cfg = tmp / "edgegate.toml"
        door_cfg.write_text(
            f'[door]\nsite = "bench"\nid = "d1"\n\n[gpio]\npin_factory = "mock"\n\n'
            f'[[readers]]\ntype = "rdm6300"\nport = "{sim.port}"\nname = "entry"\n\n'
            f'[storage]\npath = "{tmp / "door.db"}"\n\n'
            f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n'
            f'central_public_keys = ["{key}"]\n\n[daemon]\nwatchdog = false\n'
        )
        log = (tmp / "procs.log").open("ab")
        office_log = tmp / "office.log"
        office = subprocess.Popen(
            [*EDGEGATE, "central", "serve", "--config", str(office_cfg)],
            cwd=REPO,
            env=env,
            stdout=office_log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        # Events published before the office subscribed reach nobody: the door would send them
        # again only after receipt_timeout_seconds (300 s), far beyond this run.
        deadline = time.monotonic() + 60
        while b"central_subscribed" not in office_log.read_bytes():
            if time.monotonic() > deadline:
                raise SystemExit("central serve did not subscribe within 60 s")
            time.sleep(0.1)
        door = subprocess.Popen(
            [*EDGEGATE, "run", "--config", str(door_cfg)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            time.sleep(3)  # both connected and migrated
            conn = open_db(tmp / "door.db", synchronous="NORMAL")
            n = 0
            start = time.monotonic()
            while (elapsed := time.monotonic() - start) < args.seconds:
                due = int(elapsed * args.rate) - n
                if due > 0:
                    with transaction(conn):
                        for _ in range(due):
                            journal.append(
                                conn, "bench", {"i": n}, site="bench", door="d1", now=time.time()
                            )
                            n += 1
                time.sleep(0.01)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                left = conn.execute(
                    "SELECT COUNT(*) FROM events WHERE type = 'bench' AND archived IS NULL"
                ).fetchone()[0]
                if not left:
                    break
                time.sleep(0.2)
            archived = dict(
                conn.execute("SELECT id, archived FROM events WHERE type = 'bench'").fetchall()
            )
            conn.close()
        finally:
            door.terminate()
            office.terminate()
            door.wait(15)
            office.wait(15)
            sim.close()
        oc = sqlite3.connect(tmp / "central.db")
        received = dict(oc.execute("SELECT id, received FROM events WHERE type = 'bench'"))
        oc.close()
    lags = [
        (archived[i] - received[i]) * 1000
        for i in archived
        if archived[i] is not None and i in received
    ]
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"load average at the end: {os.getloadavg()}")
    print(f"events written: {n} at {args.rate}/s for {args.seconds:g} s")
    print(f"archived at the door: {sum(a is not None for a in archived.values())}")
    print(f"in the office's archive: {len(received)}")
    if lags:
        print(
            f"receipt lag (stored -> archived at the door): p50 {pct(lags, 0.5):.1f} ms, "
            f"p99 {pct(lags, 0.99):.1f} ms, max {max(lags):.1f} ms, "
            f"mean {statistics.fmean(lags):.1f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
