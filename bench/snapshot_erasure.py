"""A snapshot naming erased people swapped into a door whose journal is large: how long the
swap's transaction holds the store thread (card decisions wait behind it).

The door's store (SQLite, ``synchronous=NORMAL``) holds 200 people with a card each and a
journal of R decisions naming them in turn. A one-chunk snapshot naming E people erased is
staged and swapped in (``store.credential_sync.swap``): the erased people leave the set and
their journal rows are rewritten in the swap's transaction (docs/mqtt.md, snapshot
``erased``). ``--unseen``: the erased people are not this door's (a new door is told every
erasure of the office's log): their cost is the search alone.

    python bench/snapshot_erasure.py --rows 100000 --erased 1 10 100 [--unseen]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgegate.contract.messages import SnapshotChunk
from edgegate.daemon.door_journal import DoorJournal
from edgegate.store import credential_sync as cs
from edgegate.store import credentials as creds
from edgegate.store.db import open_db, transaction
from edgegate.sync import credentials_apply as ca

PEOPLE = 200


def one(rows: int, erased: int, unseen: bool) -> tuple[float, int]:
    """(swap seconds, journal rows rewritten) on a fresh door store."""
    write = DoorJournal(None, site="s", door="d", turnstile=False, clock=time.time).write_tx  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as tmp:
        conn = open_db(Path(tmp) / "door.db", synchronous="NORMAL")
        with transaction(conn):
            for i in range(PEOPLE):
                creds.upsert_person(conn, creds.Person(f"p{i}", f"Person {i}"))
                creds.add_credential(conn, "card", f"{i:010X}", f"p{i}")
        for start in range(0, rows, 5000):
            batch = [
                ("access_granted", {"person": f"p{i % PEOPLE}", "credential": f"{i % PEOPLE:010X}",
                                    "kind": "card", "direction": "in", "reader": "entry"})
                for i in range(start, min(rows, start + 5000))
            ]  # fmt: skip
            with transaction(conn):
                write(conn, batch, 1_780_000_000.0)
        names = [f"{'gone' if unseen else 'p'}{i}" for i in range(erased)]
        chunk = SnapshotChunk.model_validate(
            {"type": "snapshot", "site": "s", "door": "d", "snapshot": "bench", "version": 5,
             "chunk": 0, "chunks": 1, "issued": "2026-12-02T22:00:00Z", "people": [],
             "credentials": [], "erased": names}
        )  # fmt: skip
        ca.stage_chunk_rows(conn, chunk, [], [], last=True)
        started = time.perf_counter()
        event = cs.swap(conn, "bench", 5, journal_tx=write, now=time.time())
        seconds = time.perf_counter() - started
        conn.close()
    assert event is not None
    return seconds, int(event.payload.get("journal_rewritten", 0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=100_000, help="journal rows")
    ap.add_argument("--erased", type=int, nargs="+", default=[1, 10, 100])
    ap.add_argument("--unseen", action="store_true", help="erased people this door never had")
    args = ap.parse_args()
    print(f"{platform.node()} {platform.machine()} cpus={os.cpu_count()} "
          f"load={os.getloadavg()[0]:.1f} python={platform.python_version()}")  # fmt: skip
    for n in args.erased:
        seconds, rewritten = one(args.rows, n, args.unseen)
        print(f"journal {args.rows} rows, {n} erased{' (unseen)' if args.unseen else ''}: "
              f"swap {seconds * 1000:.0f} ms, {rewritten} rows rewritten")  # fmt: skip


if __name__ == "__main__":
    main()
