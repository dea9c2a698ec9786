"""The door's alarm output: a siren or strobe relay that sounds on the alarms people must hear.

It follows the journal: ``door_forced``, ``door_held_open`` and ``tailgating`` switch it on
for ``[gpio] siren_seconds`` (a new alarm restarts the time); the office's signed ``silence``
command switches it off (``SirenOutput.silence``), and a held-open alarm stops when the door
closes. A ``duress`` never sounds here: the person under threat must not be given away.

Its own changes are journaled (``siren_on`` with the cause, ``siren_off`` with why) through
the door's one journal path, so the office can see that the output followed the alarm.
Everything runs on the event loop; the off-timer is a loop timer, like the relock timer.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

import structlog
from gpiozero import DigitalOutputDevice
from gpiozero.pins import Factory

from edgegate.config.models import GpioConfig
from edgegate.contract.events import SIREN_ALARMS
from edgegate.store.journal import Event

if TYPE_CHECKING:
    from collections.abc import Coroutine
    from typing import Any

log = structlog.get_logger(__name__)

# Journal events that sound the alarm output (shared with the office, which silences it).
SOUNDING = SIREN_ALARMS


class Journal(Protocol):
    """What the siren needs of the door: its one journal path and its task spawner."""

    async def record(self, type_: str, **fields: Any) -> Event: ...

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None: ...


class SirenOutput:
    def __init__(self, cfg: GpioConfig, factory: Factory, journal: Journal) -> None:
        assert cfg.siren is not None
        self.seconds = cfg.siren_seconds
        self.journal = journal
        self.device = DigitalOutputDevice(
            cfg.siren, active_high=cfg.siren_active_high, initial_value=False, pin_factory=factory
        )
        self.cause: str | None = None
        self._timer: asyncio.TimerHandle | None = None

    @property
    def sounding(self) -> bool:
        return bool(self.device.value)

    def on_event(self, event: Event) -> None:
        """Door listener: called on the loop with every committed journal event."""
        if event.type in SOUNDING:
            self._sound(event.type, event.seq)
        elif event.type == "door_closed" and self.cause == "door_held_open":
            self._off("door_closed", None)

    def _sound(self, cause: str, seq: int) -> None:
        self.device.on()
        self.cause = cause
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(self.seconds, self._timeout)
        log.warning("siren_on", cause=cause, alarm_seq=seq, seconds=self.seconds)
        self.journal.spawn(
            self.journal.record("siren_on", cause=cause, alarm_seq=seq, seconds=self.seconds)
        )

    def _timeout(self) -> None:
        self._timer = None
        self._off("timeout", None)

    def silence(self, by: str) -> bool:
        """The office acknowledged the alarm (signed ``silence``). False when it was quiet."""
        if not self.sounding:
            return False
        self._off("silenced", by)
        return True

    def _off(self, reason: str, by: str | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.sounding:
            return
        self.device.off()
        cause, self.cause = self.cause, None
        log.info("siren_off", reason=reason, cause=cause, by=by)
        fields: dict[str, Any] = {"reason": reason, "cause": cause}
        if by:
            fields["by"] = by
        self.journal.spawn(self.journal.record("siren_off", **fields))

    def close(self) -> None:
        """Quiet on stop: a stopped daemon cannot time the output off any more."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.device.off()
        self.device.close()
