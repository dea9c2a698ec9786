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
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.engine import URL, Engine, make_url

if TYPE_CHECKING:
    from sqlite3 import Connection as SQLiteConnection

LOCK_TIMEOUT_MS = 10_000


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


def _sqlite_own_begin(dbapi_conn: SQLiteConnection, _record: object) -> None:
    # SQLAlchemy emits BEGIN itself (_sqlite_begin); pysqlite must not start transactions.
    dbapi_conn.isolation_level = None


def _sqlite_pragmas(dbapi_conn: SQLiteConnection, _record: object) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    # NORMAL under WAL: a commit survives a crash of the process; a power cut may lose the
    # last commits, never corrupt the file (the door's store makes the same choice).
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


READ = "edgegate_read"  # execution option: this connection only reads (store.reading)
P = ParamSpec("P")
R = TypeVar("R")


def _sqlite_begin(conn: Connection) -> None:
    # A reader takes no write lock: it may run while its caller holds one in another engine.
    reads = conn.get_execution_options().get(READ, False)
    conn.exec_driver_sql("BEGIN" if reads else "BEGIN IMMEDIATE")


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


def make_engine(where: str | Path, *, immediate: bool = False, **kwargs: object) -> Engine:
    """The office store's engine for a file path or URL (see the module docstring)."""
    url = store_url(where)
    if url.get_backend_name() == "postgresql":
        # The busy timeout's twin: a statement waits at most this long for a lock (a long
        # import), then fails and its caller retries, instead of hanging unseen.
        args = dict(kwargs.pop("connect_args", None) or {})  # type: ignore[call-overload]
        args.setdefault("options", f"-c lock_timeout={LOCK_TIMEOUT_MS}")
        kwargs = {"pool_pre_ping": True, **kwargs, "connect_args": args}
    engine = create_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        path = sqlite_path(where)
        if path is not None:
            create_private(path)
        event.listen(engine, "connect", _sqlite_pragmas)
        if immediate:
            event.listen(engine, "connect", _sqlite_own_begin)
            event.listen(engine, "begin", _sqlite_begin)
    return engine
