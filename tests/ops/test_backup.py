"""`edgegate backup`: a consistent copy of a live store."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

from edgegate.store.db import open_db
from tests.conftest import EDGEGATE, REPO, enrol, write_config_file


def test_backup_while_the_store_is_open(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    """`edgegate backup` copies a store another connection holds open in WAL mode, with the
    last commit (still in the WAL) included; it refuses to overwrite."""
    cfg = write_config_file(tmp_path, "/dev/null")
    db = tmp_path / "door.db"
    holder = open_db(db, synchronous="NORMAL")  # stands in for the running daemon
    try:
        enrol(db, "alice", "AABBCCDDEE")
        enrol(db, "bob", "0102030405")
        target = tmp_path / "backup.db"
        args = [*EDGEGATE, "backup", "--config", str(cfg), "--to", str(target)]
        proc = subprocess.run(args, capture_output=True, text=True, cwd=REPO, env=subprocess_env)
        assert proc.returncode == 0, proc.stderr
        assert "2 people, 2 credentials" in proc.stdout
        assert target.stat().st_mode & 0o777 == 0o600
        copy = sqlite3.connect(target)
        assert copy.execute("SELECT id FROM people ORDER BY id").fetchall() == [
            ("alice",),
            ("bob",),
        ]
        copy.close()
        again = subprocess.run(args, capture_output=True, text=True, cwd=REPO, env=subprocess_env)
        assert again.returncode == 1 and "exists" in again.stderr
    finally:
        holder.close()
