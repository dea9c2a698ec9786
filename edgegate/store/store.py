"""The store as the daemon uses it: one connection, owned by one thread.

sqlite3 calls block (an SD card can stall a commit for tens of milliseconds during a
checkpoint), so the daemon never runs them on the event loop: every call goes to a single
dedicated thread. One thread also serialises all writes, which is what SQLite wants anyway.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

import structlog

from edgegate.store import reserve
from edgegate.store.db import StoreError, open_db

log = structlog.get_logger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


class AsyncStore:
    def __init__(
        self,
        path: Path | str,
        *,
        synchronous: str = "FULL",
        migrations: list[str] | None = None,
        identity: bool = False,
        reserve_mb: float | None = None,
    ) -> None:
        self.path = Path(path)
        self._identity = identity
        self._reserve_mb = reserve_mb
        self._synchronous = synchronous
        self._migrations = migrations
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        def _open_db() -> sqlite3.Connection:
            return open_db(
                self.path,
                synchronous=self._synchronous,
                migrations=self._migrations,
                identity=self._identity,
            )

        def _open() -> sqlite3.Connection:
            if self._reserve_mb is None:
                return _open_db()
            try:
                conn = _open_db()
            except StoreError as exc:
                if not reserve.is_disk_full(exc.__cause__ or exc, self.path):
                    raise
                freed = reserve.release(self.path)
                if not freed:
                    raise  # the caller's one fatal line says "disk full"
                log.error(
                    "store_disk_full",
                    message=f"disk full: the store {self.path} could not be opened; released "
                    f"the {freed // 1024} KiB reserve to go on",
                    file=str(self.path),
                    free_bytes=reserve.free_bytes(self.path),
                    fix=f"free space on the file system of {self.path.parent}",
                )
                conn = _open_db()
            reserve.ensure(self.path, self._reserve_mb)
            return conn

        self._conn = await asyncio.get_running_loop().run_in_executor(self._executor, _open)

    async def call(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run ``fn(conn, *args, **kwargs)`` on the store thread and await its result."""
        conn = self._conn
        if conn is None:
            raise RuntimeError("store is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(conn, *args, **kwargs))

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)
