"""What synchronous=FULL buys (docs/operations.md, Power cuts): every committed decision is
flushed to the device before the commit returns, i.e. before the relay moves. Checked where
it happens, at the system calls: under strace, each journal commit of the daemon's store
syncs its WAL; with NORMAL, commits return without any sync (a power cut may lose them)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

COMMITS = 20
SCRIPT = """
import asyncio, sys, time
from edgegate.store import journal
from edgegate.store.db import transaction
from edgegate.store.store import AsyncStore

def append(conn, i):
    with transaction(conn):
        journal.append(conn, "access_granted", {"i": i}, site="s", door="d", now=time.time())

async def main(path, mode, n):
    store = AsyncStore(path) if mode == "default" else AsyncStore(path, synchronous=mode)
    await store.open()
    print("synchronous", await store.call(lambda c: c.execute("PRAGMA synchronous").fetchone()[0]))
    print("opened", flush=True)
    for i in range(n):
        await store.call(append, i)
    await store.close()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


def _syncs_per_commit(tmp_path: Path, mode: str) -> tuple[int, float]:
    if shutil.which("strace") is None:
        pytest.fail("strace is missing: run ./scripts/setup.sh test")
    store = tmp_path / f"{mode}.db"
    trace = tmp_path / f"{mode}.strace"
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    strace = ["strace", "-f", "-qq", "-y", "-e", "trace=fsync,fdatasync,write", "-o", str(trace)]
    proc = subprocess.run(
        [*strace, sys.executable, "-c", SCRIPT, str(store), mode, str(COMMITS)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    if proc.returncode != 0 and "ptrace" in proc.stderr.lower():
        pytest.skip(f"strace cannot trace here (no ptrace): {proc.stderr.strip()[:200]}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    level = int(re.search(r"synchronous (\d)", proc.stdout).group(1))
    lines = trace.read_text().splitlines()
    # Only the commits: from the write of "opened" on (opening and migrating sync too).
    start = next(i for i, line in enumerate(lines) if "write(1" in line and "opened" in line)
    wal_syncs = sum(1 for line in lines[start:] if re.search(r"f(data)?sync\(\d+<[^>]*-wal>", line))
    return level, wal_syncs / COMMITS


def test_daemon_store_flushes_every_commit(tmp_path: Path):
    level, per_commit = _syncs_per_commit(tmp_path, "default")
    assert level == 2  # FULL is the store's default, which the daemon uses
    assert per_commit >= 1.0


def test_normal_returns_before_the_disk_has_it(tmp_path: Path):
    level, per_commit = _syncs_per_commit(tmp_path, "NORMAL")
    assert level == 1
    assert per_commit < 0.5  # only a checkpoint would sync; none in 20 small commits
