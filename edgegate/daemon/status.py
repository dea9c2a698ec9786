"""The door's health and status figures: loop lag, crashed tasks, the systemd watchdog, and
the status body that telemetry and the CLI show (the sync layer's ``StatusSource`` port)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import structlog

from edgegate import __version__
from edgegate.config.models import DaemonConfig
from edgegate.daemon import systemd
from edgegate.daemon.door import Door
from edgegate.hardware.base import Reader
from edgegate.hardware.gpio import DoorOutputs

log = structlog.get_logger(__name__)


class DoorStatus:
    def __init__(
        self, config: DaemonConfig, door: Door, readers: list[Reader], outputs: DoorOutputs
    ) -> None:
        self.config = config
        self.door = door
        self.readers = readers
        self.outputs = outputs
        self.started_at = time.time()  # a date, for display
        self.started_mono = time.monotonic()  # uptime: a wall-clock step cannot make it negative
        self.loop_lag = 0.0
        self.healthy = False

    async def watch(self, crashed_tasks: Callable[[], list[str]]) -> None:
        """Measure loop lag and ping the systemd watchdog only while the loop is healthy.

        The ping comes from a loop timer, so a blocked loop stops pinging and systemd restarts
        the daemon; a crashed reader or service task also withholds the ping.
        """
        interval = systemd.watchdog_interval() if self.config.watchdog else None
        period = min(interval or 1.0, 1.0)
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(period)
            self.loop_lag = max(0.0, loop.time() - before - period)
            crashed = crashed_tasks()
            self.healthy = self.loop_lag < self.config.max_loop_lag_seconds and not crashed
            if not self.healthy:
                log.warning("daemon_unhealthy", loop_lag=round(self.loop_lag, 3), crashed=crashed)
            elif interval is not None:
                systemd.notify("WATCHDOG=1")

    def uptime(self) -> float:
        return time.monotonic() - self.started_mono

    def status(self) -> dict[str, Any]:
        return {
            "uptime": round(self.uptime(), 1),
            "version": __version__,
            "healthy": self.healthy,
            "loop_lag_ms": round(self.loop_lag * 1000, 2),
            "readers": [r.status() for r in self.readers],
            "outputs": self.outputs.state(),
            "decisions": dict(self.door.counters),
            "door": self.door.state(),
        }

    async def today_counts(self) -> dict[str, int]:
        return await self.door.today_counts()
