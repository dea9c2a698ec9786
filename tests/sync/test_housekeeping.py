"""Journal pruning (sent events only, by count and age), telemetry sensors, the wire form of
an event, credential listeners."""

from __future__ import annotations

import json
import time
from pathlib import Path

from edgegate.store import journal
from edgegate.store.db import open_db, transaction
from edgegate.sync.drain import PRUNE_BATCH, mark_sent, prune_step
from edgegate.sync.telemetry import cpu_temperature, disk_free


def _fill(conn, n: int, ts: float) -> list[int]:
    with transaction(conn):
        return [
            journal.append(conn, "t", {"i": i}, site="s", door="d", now=ts).seq for i in range(n)
        ]


def test_prune_keeps_unsent_and_the_newest_sent(tmp_path: Path):
    conn = open_db(tmp_path / "j.db", synchronous="NORMAL")
    old = _fill(conn, 50, time.time() - 10 * 86400)
    new = _fill(conn, 50, time.time())
    mark_sent(conn, old[:40] + new[:40])  # 10 old and 10 new stay unsent
    # Age limit of 5 days, keep the newest 30 seqs: only old sent events beyond those go.
    cutoff = journal.rfc3339(time.time() - 5 * 86400)
    assert prune_step(conn, 30, cutoff) == 40
    left = {r[0]: r[1] for r in conn.execute("SELECT seq, sent FROM events")}
    assert set(old[40:]) <= left.keys() and set(new) <= left.keys()
    # Without an age limit, keep 5: every sent event but the newest 5 seqs goes; unsent stay.
    prune_step(conn, 5, None)
    left = {r[0]: r[1] for r in conn.execute("SELECT seq, sent FROM events")}
    assert sum(1 for s in left.values() if s == 0) == 20
    assert all(seq > new[-1] - 5 for seq, sent in left.items() if sent)
    assert PRUNE_BATCH >= 1000


def test_wire_form_is_the_event_message(tmp_path: Path):
    conn = open_db(tmp_path / "j.db", synchronous="NORMAL")
    with transaction(conn):
        a = journal.append(conn, "x", {"person": "é", "n": [1, 2]}, site="s", door="d", now=1.5)
        b = journal.append(conn, "y", {}, site="s", door="d", now=2.0)
    wire = journal.unsent_wire(conn, 0, 10)
    assert [s for s, _ in wire] == [a.seq, b.seq]
    assert json.loads(wire[0][1]) == a.as_message()
    assert json.loads(wire[1][1]) == b.as_message()
    assert list(json.loads(wire[0][1]))[:5] == ["id", "seq", "epoch", "ts", "type"]


def test_cpu_temperature_and_disk_free(tmp_path: Path):
    f = tmp_path / "temp"
    f.write_text("48312\n")
    assert cpu_temperature(f) == 48.3
    assert cpu_temperature(tmp_path / "none") is None
    f.write_text("garbage")
    assert cpu_temperature(f) is None
    assert (disk_free(tmp_path / "door.db") or 0) > 0
