"""What a journaled decision costs on this disk, and what synchronous=FULL buys.

The card benchmark's method (bench/card_latency.py, "where the time goes"): one decision is
one transaction appending one journal row; time each commit with ``synchronous=FULL`` (what
the daemon uses) and ``NORMAL``, and a bare ``write`` + ``fdatasync`` of 4 KiB (the floor: one
flush of the device's write cache). Run it on the disk the store lives on::

    python bench/store_fsync.py --dir /var/lib/edgegate --commits 500

With WAL and FULL, SQLite syncs the WAL once per commit (and the database at a checkpoint,
every ~1000 pages), so a decision costs one device flush; on a Pi that is the SD card's flush
latency, the one figure to predict from this run's ``fdatasync`` line measured on the card.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from edgegate.store import journal
from edgegate.store.db import open_db, transaction


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def commits(directory: Path, mode: str, n: int) -> list[float]:
    db = directory / f"bench-{mode}.db"
    conn = open_db(db, synchronous=mode)
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        with transaction(conn):
            journal.append(
                conn, "access_granted", {"i": i}, site="bench", door="d1", now=time.time()
            )
        out.append((time.perf_counter() - t0) * 1000)
    conn.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return out


def flushes(directory: Path, n: int) -> list[float]:
    path = directory / "bench-flush"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    block = os.urandom(4096)
    out = []
    try:
        for i in range(n):
            t0 = time.perf_counter()
            os.pwrite(fd, block, (i % 256) * 4096)
            os.fdatasync(fd)
            out.append((time.perf_counter() - t0) * 1000)
    finally:
        os.close(fd)
        path.unlink()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=None, help="a directory on the disk to test")
    parser.add_argument("--commits", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        d = Path(tmp)
        rows = [
            ("commit, synchronous=FULL", commits(d, "FULL", args.commits)),
            ("commit, synchronous=NORMAL", commits(d, "NORMAL", args.commits)),
            ("write 4 KiB + fdatasync", flushes(d, args.commits)),
        ]
    print(f"{args.commits} each, on {args.dir or tempfile.gettempdir()}; load {os.getloadavg()}")
    for name, values in rows:
        print(
            f"{name:<28} p50 {statistics.median(values):.3f} ms  p99 {pct(values, 99):.3f} ms  "
            f"max {max(values):.3f} ms"
        )


if __name__ == "__main__":
    main()
