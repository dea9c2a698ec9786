"""``central backup --to FILE``: an online copy of the SQLite store, 0600, that opens as a
store with the same people and events; refused (with the way to do it) on PostgreSQL."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from edgegate.central import archive, store
from edgegate.contract import messages as m
from tests.central.conftest import make_central


def test_backup_while_the_archive_is_written(tmp_path: Path, capsys):
    central = make_central(tmp_path, 1)
    with central.db().begin() as conn:
        store.commit_ops(conn, [m.PutPerson(op="put_person", person=m.PersonMsg(id="alice"))])
    stop = threading.Event()

    def write() -> None:  # `central serve` archiving meanwhile
        i = 0
        while not stop.is_set():
            ev = {"id": f"e{i}", "seq": i + 1, "ts": "2026-12-01T00:00:00Z", "type": "t"}
            with central.db().begin() as conn:
                archive.archive_events(conn, "hq", "front", [ev], 1.0)
            i += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        target = tmp_path / "backups" / "central-copy.db"
        assert central.run("backup", "--to", str(target)) == 0
    finally:
        stop.set()
        writer.join()
    assert "backed up" in capsys.readouterr().out
    assert target.stat().st_mode & 0o777 == 0o600
    copy = store.open_master(target, key_file=tmp_path / "store.key")
    assert [p["id"] for p in store.list_people(copy)] == ["alice"]
    n = archive.count_events(copy)
    assert [e["id"] for e in archive.query_events(copy)] == [f"e{i}" for i in range(n)]
    copy.dispose()
    # A second backup to the same file is refused, the first one kept.
    assert central.run("backup", "--to", str(target)) == 1
    assert "exists" in capsys.readouterr().err
    central.close()


def test_backup_of_a_postgresql_store_names_the_tools(tmp_path: Path, postgres_cluster, capsys):
    central = make_central(tmp_path, 1, postgres_cluster.database())
    assert central.run("backup", "--to", str(tmp_path / "x.db")) == 1
    assert "pg_dump" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "x.db")
    central.close()
