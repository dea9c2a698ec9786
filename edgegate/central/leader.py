"""Which ``central serve`` instance holds the singleton duties, and the ``instances`` table.

Several instances share the doors' messages (MQTT shared subscriptions, server.py); the duties
that must happen once (publishing new versions, answering snapshot requests, escalating
alarms, delivering webhooks, the visitors' notices and sweeps, archive housekeeping) belong
to the one instance holding ``LEADER_LOCK``, a session-level PostgreSQL advisory lock kept on
a connection of its own. When that instance dies its connection closes (at once for a killed
process; within the TCP keepalive below for a lost host) and PostgreSQL releases the lock;
another instance's next ``check`` (every ``duty_check_seconds``) takes it.

An instance that loses its lock connection gives the duties up at once (``check`` says so):
it cannot know whether the lock is still its own. Every duty is written to survive being
done twice around a handover anyway (versions are refused as replays by the doors, an
escalation records each target it reached, webhooks deliver at least once).

SQLite stays the single-instance default: the first ``serve`` takes an exclusive ``flock`` on
``<store>.serve.lock`` and holds the duties for its lifetime; a second ``serve`` on the same
file is refused with ``SecondInstance``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from pathlib import Path
from typing import IO

import structlog
from sqlalchemy import Connection, Engine, case, delete, func, select, update

from edgegate.central.dialect import upsert
from edgegate.central.engine import reading, sqlite_path
from edgegate.central.schema.archive import instances
from edgegate.errors import EdgegateError

log = structlog.get_logger(__name__)

# pg_advisory_lock key of the duties (the archive's writer lock is ORDER_LOCK, one below).
LEADER_LOCK = 0x6564676567617466
# Server-side keepalive of the lock connection: PostgreSQL notices a vanished host (and
# releases its lock) after about idle + interval * count seconds.
KEEPALIVE = {"idle": 5, "interval": 2, "count": 3}
# An instance row whose heartbeat is older than this many duty checks is a dead instance.
STALE_CHECKS = 10


class SecondInstance(EdgegateError, RuntimeError):
    """Another ``central serve`` already runs as this instance, or on this SQLite store."""


def instance_name(configured: str) -> str:
    return configured or socket.gethostname()


class Duties:
    """Held by one instance at a time (see the module docstring). Blocking: call from a
    worker thread, never from the event loop."""

    def __init__(self, engine: Engine, db: str, instance: str) -> None:
        self.engine = engine
        self.instance = instance
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self._sqlite = sqlite_path(db)
        self._lockfile: IO[bytes] | None = None
        self._conn: Connection | None = None
        self.held = False

    # --- start and stop -------------------------------------------------------------------

    def claim_instance(self, now: float, stale_after: float) -> None:
        """Refuse a second ``serve`` on this SQLite store, or as this instance's name; then
        record this instance (``instances``)."""
        if self._sqlite is not None:
            self._lock_sqlite(self._sqlite)
        with self.engine.begin() as conn:
            row = conn.execute(
                select(instances.c.host, instances.c.pid, instances.c.heartbeat).where(
                    instances.c.id == self.instance
                )
            ).first()
            if (
                row is not None
                and (row.host, row.pid) != (self.host, self.pid)
                and _alive(row.host, row.pid, self.host)
                and now - row.heartbeat < stale_after
            ):
                raise SecondInstance(
                    f"instance {self.instance!r} already runs (host {row.host}, pid "
                    f"{row.pid}); give each `central serve` its own [central] instance"
                )
            stmt = upsert(conn, instances).values(
                id=self.instance,
                host=self.host,
                pid=self.pid,
                started=now,
                heartbeat=now,
                leader=False,
                broker_since=now,
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["id"],
                    set_={
                        "host": stmt.excluded.host,
                        "pid": stmt.excluded.pid,
                        "started": stmt.excluded.started,
                        "heartbeat": stmt.excluded.heartbeat,
                        "leader": False,
                        "broker": "connecting",
                        "broker_since": stmt.excluded.broker_since,
                        "broker_error": "",
                    },
                )
            )

    def _lock_sqlite(self, path: Path) -> None:
        lock = path.with_name(path.name + ".serve.lock")
        f = lock.open("ab")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            raise SecondInstance(
                f"another `central serve` runs on the SQLite store {path}; an SQLite store "
                "takes one instance (several instances need PostgreSQL: docs/production.md)"
            ) from None
        self._lockfile = f

    def close(self) -> None:
        """Give the duties up and remove this instance's row (a clean stop)."""
        self._drop()
        with contextlib.suppress(Exception), self.engine.begin() as conn:
            conn.execute(delete(instances).where(instances.c.id == self.instance))
        if self._lockfile is not None:
            self._lockfile.close()  # releases the flock
            self._lockfile = None

    # --- the duties -----------------------------------------------------------------------

    def check(self, now: float, broker: str, broker_error: str = "") -> bool:
        """Take the duties if free, confirm them if held; heartbeat this instance's row.
        Returns whether this instance holds them now."""
        was = self.held
        if self._sqlite is not None:
            self.held = True  # the flock (claim_instance) is the lock
        else:
            self.held = self._check_postgres()
        if self.held != was:
            log.warning("singleton_duties_taken" if self.held else "singleton_duties_lost")
        with contextlib.suppress(Exception), self.engine.begin() as conn:
            conn.execute(
                update(instances)
                .where(instances.c.id == self.instance)
                .values(
                    heartbeat=now,
                    leader=self.held,
                    broker=broker,
                    broker_error=broker_error,
                    # Since when in this state (`central doors`): moves with the state only.
                    broker_since=case(
                        (instances.c.broker == broker, instances.c.broker_since), else_=now
                    ),
                )
            )
        return self.held

    def _check_postgres(self) -> bool:
        try:
            if self._conn is None:
                self._conn = self.engine.connect()
                ka = KEEPALIVE
                for name, value in (
                    ("tcp_keepalives_idle", ka["idle"]),
                    ("tcp_keepalives_interval", ka["interval"]),
                    ("tcp_keepalives_count", ka["count"]),
                ):
                    self._conn.execute(select(func.set_config(name, str(value), False)))
                self._conn.commit()
            if self.held:
                # Still connected means still ours: a session lock lives as long as it.
                self._conn.execute(select(1)).scalar_one()
                self._conn.commit()
                return True
            got = self._conn.execute(select(func.pg_try_advisory_lock(LEADER_LOCK))).scalar_one()
            self._conn.commit()
            return bool(got)
        except Exception:
            log.exception("singleton_lock_failed")
            self._drop()
            return False

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            # Closing the session releases its advisory lock; invalidate, so the pool never
            # hands out a connection that may still hold it.
            with contextlib.suppress(Exception):
                conn.invalidate()
            with contextlib.suppress(Exception):
                conn.close()
        self.held = False


def _alive(host: str, pid: int, this_host: str) -> bool:
    """Whether an instance row's process may still run (only checkable on this host)."""
    if host != this_host:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def list_instances(engine: Engine) -> list[dict[str, object]]:
    with reading(engine) as conn:
        rows = conn.execute(select(instances).order_by(instances.c.id)).mappings()
        return [dict(r) for r in rows]
