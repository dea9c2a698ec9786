"""Keeps the door's fingerprint sensor in step with the store (a daemon service).

``request()`` is cheap and synchronous: it marks the library dirty. The service task runs a
library sync pass (edgegate/hardware/fingerprint/library_sync.py) when the daemon starts and
after each request, coalescing bursts of credential changes into one pass. It also runs one
after the reader reopened the sensor (a module swapped or reset may hold another library) and
every ``period`` seconds as a safety net for changes made without a notification (the
``edgegate people`` CLI writing the store under a running daemon). A pass that fails (sensor
unplugged, store key missing) is retried with backoff; the door keeps deciding with the slots
it already has meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from typing import TYPE_CHECKING

import structlog

from edgegate.config.models import FingerprintConfig, StorageConfig
from edgegate.hardware.fingerprint.errors import FingerprintError
from edgegate.store.sealed import SealError, load_key
from edgegate.store.store import AsyncStore

if TYPE_CHECKING:
    from edgegate.hardware.fingerprint.reader import FingerprintReader

log = structlog.get_logger(__name__)


class FingerLibraryService:
    def __init__(
        self,
        reader: FingerprintReader,
        store: AsyncStore,
        fingerprint: FingerprintConfig,
        storage: StorageConfig,
        *,
        retry_initial: float = 1.0,
        retry_max: float = 60.0,
        period: float = 600.0,
    ) -> None:
        self.reader = reader
        self.store = store
        self.model = fingerprint.model
        self.storage = storage
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.period = period
        self.key_errors = 0
        self._dirty = asyncio.Event()
        self._idle = asyncio.Event()
        self._key: bytes | None = None
        self._reopens_synced = 0  # the reader's reopen count when the last pass started
        self._dirty.set()  # the first pass runs at start

    def request(self) -> None:
        """Credentials changed: sync the sensor soon (call on the loop thread)."""
        self._idle.clear()
        self._dirty.set()

    async def wait_idle(self, timeout: float | None = None) -> None:
        """Until no pass is pending or running (tests, benchmarks)."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def _load_key(self) -> bytes:
        if self._key is None:
            path, key_file = self.storage.path, self.storage.key_file
            # File IO: on the store thread, never on the loop.
            self._key = await self.store.call(lambda _conn: load_key(path, key_file))
        return self._key

    async def _next_reason(self) -> None:
        """Return when a pass is due: requested, the sensor was reopened, or the period ran."""
        loop = asyncio.get_running_loop()
        due = loop.time() + self.period
        while not self._dirty.is_set():
            # A one-second tick: cheap, and a reopen is noticed without a hook in the reader.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), 1.0)
            if self.reader.counters.reopens != self._reopens_synced or loop.time() >= due:
                self.request()
        self._dirty.clear()

    async def run(self) -> None:
        delay = self.retry_initial
        while True:
            await self._next_reason()
            while not self.reader.healthy:
                # Reopening with backoff is the reader's job; wait for it rather than fail.
                await asyncio.sleep(0.1)
            self._reopens_synced = self.reader.counters.reopens
            try:
                key = await self._load_key()
                await self.reader.sync_library(self.store, key, self.model)
            except SealError as exc:
                self.key_errors += 1
                log.error("finger_sync_no_key", reader=self.reader.name, error=str(exc))
                await self._retry_later(delay)
            except (OSError, FingerprintError, sqlite3.Error) as exc:
                self.reader.sync_counters.failed_passes += 1
                log.warning("finger_sync_failed", reader=self.reader.name, error=str(exc))
                await self._retry_later(delay)
            else:
                delay = self.retry_initial
                if not self._dirty.is_set():
                    self._idle.set()
                continue
            delay = min(delay * 2, self.retry_max)

    async def _retry_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._dirty.set()
