"""What every reader has in common: the read it reports, the sink it reports to, its health.

Modelled on zigpy's radio base class: a small abstract class that the daemon talks to, one
subclass per device family. A reader only reads and reports; it never decides.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Protocol

import structlog

# Domain values live in the core; re-exported here for the reader families that build them.
from edgegate.core.feedback import Outcome
from edgegate.core.reads import CredentialKind, CredentialRead, Direction

__all__ = [
    "CredentialKind",
    "CredentialRead",
    "Direction",
    "HoldOff",
    "Reader",
    "ReaderCounters",
    "ReaderSink",
]

log = structlog.get_logger(__name__)


class ReaderSink(Protocol):
    """Where a reader reports. Implemented by the daemon; called on the event loop thread."""

    def credential(self, read: CredentialRead) -> None: ...

    def fault(self, reader: str, reason: str) -> None: ...

    def recovered(self, reader: str) -> None: ...

    def reader_event(self, reader: str, type_: str, **fields: object) -> None:
        """Journal an event a reader reports about itself (reader_tamper, ...)."""


@dataclass
class ReaderCounters:
    """Counters every reader keeps; shown in telemetry and `edgegate doctor`."""

    reads: int = 0
    repeats_suppressed: int = 0
    bad_checksum: int = 0
    bad_frames: int = 0
    noise_bytes: int = 0
    faults: int = 0
    reopens: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class HoldOff:
    """Counts a credential that keeps coming (a card resting on a reader) once.

    The same value within ``seconds`` of its last sighting is a repeat, and each repeat
    slides the window, so it counts again only after being away for ``seconds``.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._last: str | None = None
        self._seen = 0.0

    def repeat(self, value: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        is_repeat = value == self._last and now - self._seen < self.seconds
        self._last, self._seen = value, now
        return is_repeat


class Reader(ABC):
    """A credential reader. ``run`` reads until cancelled, reopening the device on faults.

    Subclasses implement ``open``, ``close`` and ``serve`` (read until the device fails). The
    base class owns the fault/recovery cycle with capped exponential backoff so that every
    device family reports ``reader_fault`` and ``reader_recovered`` the same way.
    """

    family: str = "reader"

    def __init__(
        self,
        name: str,
        sink: ReaderSink,
        direction: Direction = Direction.IN,
        *,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self.name = name
        self.sink = sink
        self.direction = Direction(direction)
        self.counters = ReaderCounters()
        self.healthy = False
        self.last_error: str | None = None
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max

    @abstractmethod
    async def open(self) -> None:
        """Open the device; raise ``OSError`` (or a subclass) when it cannot be opened."""

    @abstractmethod
    async def serve(self) -> None:
        """Read until the device fails (raise ``OSError``) or the task is cancelled."""

    @abstractmethod
    def close(self) -> None:
        """Release the device. Must be safe to call more than once."""

    def feedback(
        self, granted: bool, outcome: Outcome | None = None, text: str | None = None
    ) -> None:
        """The door decided on a read from this reader (called on the loop once the decision
        is journaled): ``outcome`` is its class and ``text`` what to show, in the configured
        language (edgegate/core/feedback.py). The door's own LEDs and buzzer are GPIO outputs;
        readers with their own (OSDP) override this to show the decision on the reader too."""
        return None

    def status(self) -> dict[str, object]:
        return {
            "name": self.name,
            "family": self.family,
            "healthy": self.healthy,
            "last_error": self.last_error,
            **self.counters.as_dict(),
        }

    async def run(self) -> None:
        delay = self._backoff_initial
        reported_fault = False
        while True:
            try:
                await self.open()
                if reported_fault:
                    self.counters.reopens += 1
                    log.info("reader_recovered", reader=self.name, family=self.family)
                    self.sink.recovered(self.name)
                    reported_fault = False
                self.healthy = True
                self.last_error = None
                delay = self._backoff_initial
                await self.serve()
                raise OSError("reader stopped serving")
            except asyncio.CancelledError:
                self.close()
                self.healthy = False
                raise
            except (OSError, ValueError) as exc:
                # pyserial's SerialException is an OSError; a vanished device shows up here.
                self.close()
                self.healthy = False
                self.last_error = str(exc) or type(exc).__name__
                if not reported_fault:
                    self.counters.faults += 1
                    log.warning(
                        "reader_fault", reader=self.name, family=self.family, error=self.last_error
                    )
                    self.sink.fault(self.name, self.last_error)
                    reported_fault = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff_max)
