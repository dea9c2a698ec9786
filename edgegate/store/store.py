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

from edgegate.store.db import open_db

P = ParamSpec("P")
T = TypeVar("T")


class AsyncStore:
    def __init__(
        self,
        path: Path | str,
        *,
        synchronous: str = "FULL",
        migrations: list[str] | None = None,
    ) -> None:
        self.path = Path(path)
        self._synchronous = synchronous
        self._migrations = migrations
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        def _open() -> sqlite3.Connection:
            return open_db(self.path, synchronous=self._synchronous, migrations=self._migrations)

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
