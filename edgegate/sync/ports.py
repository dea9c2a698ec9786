"""What the sync layer needs from the door, as narrow ports the composition root hands it
(``edgegate.daemon.app.Daemon``), in the way Frigate's dispatcher gets its collaborators. The
sync layer imports nothing from ``edgegate.daemon``; any object with these methods will do.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from edgegate.core.decision import DoorMode
from edgegate.store.journal import Event


class DoorControl(Protocol):
    """Commands step the door's rules through this; ``state`` is the MQTT ``state`` body.
    Implemented by the door's rules runtime. Every method is called on the loop."""

    @property
    def mode(self) -> DoorMode:
        """The mode set (normal, lockdown, attended); an emergency is separate."""
        ...

    @property
    def emergency(self) -> bool: ...

    @property
    def area(self) -> str:
        """The anti-passback area this door counts people in."""
        ...

    def set_mode(self, mode: DoorMode | str, source: str) -> None:
        """Raises ValueError on an unknown mode."""
        ...

    def lock(self, source: str) -> None:
        """End a running release now; raises ValueError in an emergency."""
        ...

    def staff_release(self, staff: str | None, source: str, person: str | None = None) -> None: ...

    def state(self) -> dict[str, Any]: ...

    def add_state_listener(self, fn: Callable[[], None]) -> None:
        """``fn()`` whenever ``state()`` may have changed."""
        ...


class DoorJournalPort(Protocol):
    """The door's one journal seam: what the sync layer journals and hears about."""

    def add_listener(self, fn: Callable[[Event], None]) -> None: ...

    def write_tx(
        self, conn: sqlite3.Connection, entries: Sequence[tuple[str, dict[str, Any]]], now: float
    ) -> list[Event]:
        """Journal rows inside the caller's open transaction, on the store thread (a
        credential update or snapshot swap journals with the state it changes); ``publish``
        them on the loop after the commit."""
        ...

    def publish(self, events: Iterable[Event]) -> None:
        """Tell the listeners about events committed elsewhere (credential updates)."""
        ...

    async def record(self, type_: str, **fields: Any) -> Event: ...


class StatusSource(Protocol):
    """The door's health and counters, for telemetry."""

    def status(self) -> dict[str, Any]:
        """``uptime``, ``healthy``, ``loop_lag_ms``, ``readers`` (their status dicts) and
        ``decisions`` at least (``Daemon.status``)."""
        ...

    async def today_counts(self) -> dict[str, int]: ...
