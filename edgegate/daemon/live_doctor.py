"""The doctor while the door runs: the checks that do not take the door out of service.

``edgegate doctor`` opens the serial ports and GPIO pins itself, which a running daemon holds,
so it needs the door stopped. These checks are the ones that are safe beside the daemon:
the store (read-only integrity check: SQLite in WAL mode lets it read while the daemon
writes), the clock, the broker (its own client id), plus what the daemon already knows of
its readers (healthy or the last error). Not run here: listening to card readers and opening
the fingerprint sensor or camera (held by the daemon) and the GPIO pins (idem); the face
gallery check (it loads the face stack, too heavy beside live decisions).

The results are journaled as one ``doctor_report`` event (so the office archives them like
every other event), on a schedule (``[daemon] doctor_minutes``) and on the office's signed
``doctor`` command. The checks block (file reads, a TCP connect), so they run in a worker
thread; one run at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from edgegate.config.models import Config
from edgegate.doctor import Check, Status, fail, ok
from edgegate.doctor.broker import check_broker
from edgegate.doctor.local import check_clock, check_store

if TYPE_CHECKING:
    from edgegate.daemon.door import Door

log = structlog.get_logger(__name__)

ReaderStatus = Callable[[], list[dict[str, object]]]


def blocking_checks(config: Config) -> list[Check]:
    """The safe checks that block (worker thread)."""
    return [*check_store(config), *check_clock(), *check_broker(config, timeout=3.0)]


def reader_checks(statuses: list[dict[str, object]]) -> list[Check]:
    out = []
    for status in statuses:
        name = f"reader {status.get('name')}"
        if status.get("healthy"):
            out.append(ok(name, "reading"))
        else:
            out.append(fail(name, f"not reading: {status.get('last_error') or 'not opened yet'}"))
    return out


def report_fields(checks: list[Check], trigger: str) -> dict[str, Any]:
    counts = {str(s): sum(c.status is s for c in checks) for s in Status}
    return {
        "trigger": trigger,
        "result": "fail" if counts["fail"] else "warn" if counts["warn"] else "ok",
        "counts": counts,
        "checks": [c.as_dict() for c in checks],
    }


class LiveDoctor:
    def __init__(self, config: Config, door: Door, readers: ReaderStatus) -> None:
        self.config = config
        self.door = door
        self.readers = readers
        self._lock = asyncio.Lock()

    async def run_once(self, trigger: str) -> dict[str, Any]:
        """Run the checks and journal the ``doctor_report``; returns its fields."""
        async with self._lock:
            loop = asyncio.get_running_loop()
            checks = await loop.run_in_executor(None, blocking_checks, self.config)
            checks += reader_checks(self.readers())
            fields = report_fields(checks, trigger)
            log.info("doctor_report", trigger=trigger, result=fields["result"], **fields["counts"])
            await self.door.record("doctor_report", **fields)
            return fields

    def request(self, trigger: str) -> None:
        """Run soon, off the caller's path (the signed ``doctor`` command)."""
        self.door.spawn(self.run_once(trigger))

    async def run(self) -> None:
        """Daemon service: every ``[daemon] doctor_minutes`` (0: never by itself)."""
        minutes = self.config.daemon.doctor_minutes
        if minutes <= 0:
            return
        while True:
            await asyncio.sleep(minutes * 60)
            try:
                await self.run_once("schedule")
            except Exception:
                log.exception("doctor_report_failed")
