"""One SQLAlchemy engine for the office store, on SQLite (embedded default) or PostgreSQL.

``make_engine`` takes either a plain file path (SQLite, as ``[central] db`` always was) or a
SQLAlchemy URL (``postgresql+psycopg://...``). SQLite gets the same discipline as the door's
store: WAL so readers never wait for the archive's writer, foreign keys on, a busy timeout so
two office processes on one file wait instead of failing, and the file created 0600 (it
holds people's names and, sealed, their biometrics).

SQLite transactions: an engine made with ``immediate=True`` (the office store's,
``store.open_master``) switches pysqlite's implicit BEGIN off and begins every transaction
with ``BEGIN IMMEDIATE``: a writer takes the write lock at its start, so two writers wait for
each other (busy timeout) instead of one failing when it upgrades a read to a write, and
savepoints work. Its users keep transactions short and close them. Other engines keep
pysqlite's default (a transaction starts at the first write), so a feature that reads in one
engine's transaction while the master commits in another does not hold a stale snapshot.

Writers of one process take turns (``writer_handoff.py``): before a write transaction begins
(``BEGIN IMMEDIATE``, or on the other engines the first INSERT/UPDATE/DELETE/REPLACE, where
pysqlite begins one) the connection waits for the file's turn, handed over when the holder's
COMMIT or ROLLBACK has returned, instead of polling SQLite's busy handler; ``writes=`` says
whether an engine carries an operator's changes (first) or background batches. Readers never
ask. Other processes still meet the busy timeout. PostgreSQL engines have none of this (row
locks; the archive and the master do not serialise there).
"""

from __future__ import annotations

import functools
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.engine import URL, Engine, make_url

from edgegate.central.writer_handoff import WriterHandoff, Writes, for_file

if TYPE_CHECKING:
    from sqlite3 import Connection as SQLiteConnection

LOCK_TIMEOUT_MS = 10_000
WRITES = "edgegate_writes"  # execution option: a Writes, whose writes this engine carries


def store_url(where: str | Path) -> URL:
    """A SQLAlchemy URL for ``where``: a URL as given, or a SQLite file path."""
    text = str(where)
    if "://" in text:
        return make_url(text)
    return make_url(f"sqlite+pysqlite:///{Path(text).expanduser()}")


def sqlite_path(where: str | Path) -> Path | None:
    """The file of an SQLite store, None for a server URL."""
    url = store_url(where)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


class HandoffConnection(sqlite3.Connection):
    """A pysqlite connection that gives its write turn back (``writer_handoff``) once its
    COMMIT or ROLLBACK has returned: released before, the next writer's BEGIN IMMEDIATE would
    find SQLite's lock still held and fall back to the busy handler's sleeps. SQLAlchemy's
    ``commit``/``rollback`` events fire *before* the DBAPI call, hence this subclass (handed to
    ``sqlite3.connect`` as its ``factory``). Every path that ends a transaction comes here:
    ``engine.begin()`` commits or rolls back (also on an exception), the pool rolls back a
    connection returned to it, and an invalidated connection is closed."""

    handoff: WriterHandoff | None = None  # set on connect for a file store
    # How long a writer waits for its turn before it goes on to SQLite's lock (and its busy
    # timeout) without it: a leaked turn makes writers slow and logged, never stuck.
    turn_timeout = LOCK_TIMEOUT_MS / 1000
    # The connection's turn in the current transaction: None not asked, True held, False
    # went without it (nested or timed out: not asked again until the transaction ends).
    # Only the thread using the connection reads or sets it.
    turn: bool | None = None

    def take_turn(self, writes: Writes) -> None:
        if self.handoff is not None and self.turn is None:
            self.turn = self.handoff.acquire(self, writes, self.turn_timeout)

    def give_turn(self) -> None:
        self.turn = None
        if self.handoff is not None:
            self.handoff.release(self)

    def _ended(self) -> None:
        try:
            still_open = self.in_transaction
        except sqlite3.Error:  # closed or broken: nothing of it holds SQLite's lock
            still_open = False
        if not still_open:  # a failed COMMIT leaves it open: its ROLLBACK releases
            self.give_turn()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._ended()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._ended()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.give_turn()


def _writes(conn: Connection) -> Writes:
    return Writes(conn.get_execution_options().get(WRITES, Writes.INTERACTIVE))


def _dbapi(conn: Connection) -> HandoffConnection | None:
    raw = conn.connection.dbapi_connection
    return raw if isinstance(raw, HandoffConnection) else None


def _sqlite_own_begin(dbapi_conn: SQLiteConnection, _record: object) -> None:
    # SQLAlchemy emits BEGIN itself (_sqlite_begin); pysqlite must not start transactions.
    dbapi_conn.isolation_level = None


def _handoff_on_connect(handoff: WriterHandoff) -> Callable[..., None]:
    def on_connect(dbapi_conn: SQLiteConnection, _record: object) -> None:
        if isinstance(dbapi_conn, HandoffConnection):
            dbapi_conn.handoff = handoff

    return on_connect


def _sqlite_pragmas(busy_timeout_ms: int) -> Callable[..., None]:
    def on_connect(dbapi_conn: SQLiteConnection, _record: object) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        # NORMAL under WAL: a commit survives a crash of the process; a power cut may lose
        # the last commits, never corrupt the file (the door's store makes the same choice).
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    return on_connect


READ = "edgegate_read"  # execution option: this connection only reads (store.reading)
P = ParamSpec("P")
R = TypeVar("R")


def _sqlite_begin(conn: Connection) -> None:
    # A reader takes no write lock: it may run while its caller holds one in another engine.
    if conn.get_execution_options().get(READ, False):
        conn.exec_driver_sql("BEGIN")
        return
    dbapi = _dbapi(conn)
    try:
        if dbapi is not None:
            dbapi.take_turn(_writes(conn))
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        # No transaction began (busy timeout against another process, or interrupted), so
        # no COMMIT or ROLLBACK will come to give the turn back: give it back here.
        if dbapi is not None:
            dbapi.give_turn()
        raise


# The statements before which pysqlite (its default, "legacy" transaction control) opens a
# transaction: the first of them in a transaction takes SQLite's write lock.
_PYSQLITE_BEGINS_BEFORE = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def _sqlite_dml_turn(
    conn: Connection,
    cursor: sqlite3.Cursor,
    statement: str,
    _parameters: object,
    _context: object,
    _executemany: bool,
) -> None:
    # Engines without immediate=True: pysqlite begins at the first write, so the turn is
    # taken there (a transaction that only reads never asks).
    dbapi = cursor.connection
    if not isinstance(dbapi, HandoffConnection) or dbapi.turn is not None:
        return
    if conn.get_execution_options().get(READ, False):
        return
    if statement.lstrip()[:7].upper().startswith(_PYSQLITE_BEGINS_BEFORE):
        dbapi.take_turn(_writes(conn))


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection that only reads: on SQLite its transaction takes no write lock (WAL
    readers never wait), so it may be used while the caller holds one elsewhere."""
    with engine.connect() as conn:
        conn.execution_options(**{READ: True})
        yield conn


def reads(fn: Callable[Concatenate[Connection, P], R]) -> Callable[..., R]:
    """A read function of the store takes a ``Connection`` (inside the caller's transaction)
    or an ``Engine`` (then it reads on a short connection of its own, ``reading``)."""

    @functools.wraps(fn)
    def wrapper(where: Connection | Engine, *args: P.args, **kwargs: P.kwargs) -> R:
        if isinstance(where, Engine):
            with reading(where) as conn:
                return fn(conn, *args, **kwargs)
        return fn(where, *args, **kwargs)

    return wrapper


def create_private(path: Path) -> None:
    """Create ``path`` (and its WAL companions' directory) readable by the owner only, or
    take read access away from others on an existing store of an older version."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            try:
                if p.stat().st_mode & 0o077:
                    p.chmod(0o600)
            except FileNotFoundError:
                pass
            except PermissionError:
                pass  # a read-only user of someone else's store: the owner's mode stands
        return
    os.close(fd)


def make_engine(
    where: str | Path,
    *,
    immediate: bool = False,
    writes: Writes = Writes.INTERACTIVE,
    busy_timeout_ms: int = LOCK_TIMEOUT_MS,
    **kwargs: object,
) -> Engine:
    """The office store's engine for a file path or URL (see the module docstring).
    ``writes``: whose writes it carries, for the SQLite writers' turns (interactive first);
    ``busy_timeout_ms``: how long a writer waits for SQLite's lock held by another process."""
    url = store_url(where)
    if url.get_backend_name() == "postgresql":
        # The busy timeout's twin: a statement waits at most this long for a lock (a long
        # import), then fails and its caller retries, instead of hanging unseen.
        args = dict(kwargs.pop("connect_args", None) or {})  # type: ignore[call-overload]
        args.setdefault("options", f"-c lock_timeout={LOCK_TIMEOUT_MS}")
        kwargs = {"pool_pre_ping": True, **kwargs, "connect_args": args}
    path = sqlite_path(where) if url.get_backend_name() == "sqlite" else None
    if path is not None:
        args = dict(kwargs.pop("connect_args", None) or {})  # type: ignore[call-overload]
        args.setdefault("factory", HandoffConnection)
        options = dict(kwargs.pop("execution_options", None) or {})  # type: ignore[call-overload]
        options.setdefault(WRITES, Writes(writes))
        kwargs = {**kwargs, "connect_args": args, "execution_options": options}
    engine = create_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        if path is not None:
            create_private(path)
            event.listen(engine, "connect", _handoff_on_connect(for_file(path)))
        event.listen(engine, "connect", _sqlite_pragmas(busy_timeout_ms))
        if immediate:
            event.listen(engine, "connect", _sqlite_own_begin)
            event.listen(engine, "begin", _sqlite_begin)
        else:
            event.listen(engine, "before_cursor_execute", _sqlite_dml_turn)
    return engine
