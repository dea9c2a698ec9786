"""The singleton duties of ``central serve`` (edgegate/central/leader.py): one holder at a time
on PostgreSQL, taken over when the holder's session ends; SQLite refuses a second instance;
an instance name in use is refused."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import select, text

from edgegate.central import leader
from edgegate.central.engine import sqlite_path
from edgegate.central.schema.archive import instances
from edgegate.central.store import open_master
from edgegate.sim.broker import free_port
from edgegate.sim.postgres import Postgres
from tests.central.conftest import make_central
from tests.conftest import EDGEGATE, REPO


def _engine(db: str):
    return open_master(db, key=b"k" * 32)


@pytest.fixture
def pg_db(postgres_cluster: Postgres, office_template: str) -> str:
    return postgres_cluster.database(template=office_template)


def test_postgres_duties_one_holder_and_takeover(pg_db: str) -> None:
    office_db = pg_db
    a_engine, b_engine = _engine(office_db), _engine(office_db)
    a = leader.Duties(a_engine, office_db, "a")
    b = leader.Duties(b_engine, office_db, "b")
    a.claim_instance(time.time(), 10)
    b.claim_instance(time.time(), 10)
    assert a.check(time.time(), "connected") is True
    assert b.check(time.time(), "connected") is False
    assert a.check(time.time(), "connected") is True  # still held, not taken twice
    rows = {r["id"]: r["leader"] for r in leader.list_instances(a_engine)}
    assert rows == {"a": True, "b": False}
    # The holder's session dies as a killed process's would: PostgreSQL ends it.
    pid = a._conn.execute(text("SELECT pg_backend_pid()")).scalar_one()  # type: ignore[union-attr]
    a._conn.commit()  # type: ignore[union-attr]
    with b_engine.connect() as conn:
        assert conn.execute(select(text(f"pg_terminate_backend({pid})"))).scalar_one()
    deadline = time.monotonic() + 10
    while not b.check(time.time(), "connected"):
        assert time.monotonic() < deadline, "the lock was not released"
        time.sleep(0.1)
    # The old holder notices it lost its session and gives the duties up.
    assert a.check(time.time(), "connected") is False
    a.close()
    b.close()
    with b_engine.connect() as conn:
        assert conn.execute(select(instances.c.id)).all() == []
    a_engine.dispose()
    b_engine.dispose()


def test_an_instance_name_in_use_is_refused(office_db: str) -> None:
    engine = _engine(office_db)
    first = leader.Duties(engine, office_db, "same")
    first.claim_instance(time.time(), 10)
    if sqlite_path(office_db) is None:
        second = leader.Duties(engine, office_db, "same")
        second.pid = first.pid + 1 if first.pid > 1 else 2  # another process, same host
        second.host = "elsewhere"  # on another host its liveness cannot be checked here
        with pytest.raises(leader.SecondInstance, match="give each"):
            second.claim_instance(time.time(), 10)
        # A stale row (its heartbeat long gone) is a dead instance: taken over.
        second.claim_instance(time.time() + 60, 10)
    first.close()
    engine.dispose()


def test_second_serve_on_sqlite_is_refused(tmp_path: Path, subprocess_env) -> None:
    """SQLite takes one ``serve``: a second one exits 2 and says why, before touching it."""
    central = make_central(tmp_path, free_port())
    first = leader.Duties(central.db(), central.config.central.db, "first")
    first.claim_instance(time.time(), 10)
    try:
        proc = subprocess.run(
            [*EDGEGATE, "central", "serve", "--config", str(central.path)],
            cwd=REPO,
            env=subprocess_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode != 0
        assert "another `central serve` runs on the SQLite store" in proc.stderr + proc.stdout
    finally:
        first.close()
        central.close()
