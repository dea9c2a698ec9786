"""Door rules end to end: RDM6300 simulators on ptys, gpiozero MockFactory pins, SQLite,
and a clock the test drives (the door's clock; loop timers only wake the machine up)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpiozero.pins.mock import MockFactory, MockPin

from edgegate.config import parse
from edgegate.config.models import Config
from edgegate.daemon.app import Daemon
from edgegate.sim.rdm6300 import Rdm6300Simulator
from edgegate.store import credentials as creds
from edgegate.store.db import open_db, transaction
from edgegate.store.journal import Event

LOCK, GREEN, RED, BUZZER = 17, 27, 22, 23
CONTACT, EXIT, FIRE, PASSAGE, OBSTRUCTION, STAFF, RESET = 5, 6, 13, 19, 26, 20, 21
# Monday 2027-01-04 10:00:00 UTC: schedules in the tests use timezone = "UTC".
T0 = 1_799_056_800.0

ALICE, BOB, CAROL, DAVE, EVE = "0F00BC614E", "1A2B3C4D5E", "0E0E0E0E0E", "4400DEAD01", "5500BEEF02"


class ClosedContactPin(MockPin):
    """A pin held low by a closed contact when the daemon opens it (MockPin drives itself
    high when its pull-up is set, which a pin held by a closed contact does not)."""

    def _set_pull(self, value: str) -> None:
        self._pull = value
        self._state = False


class FakeClock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def make_config(
    tmp_path: Path,
    ports: list[tuple[str, str, str]],
    *,
    door: dict[str, Any] | None = None,
    rules: dict[str, Any] | None = None,
    gpio: dict[str, Any] | None = None,
    **top: Any,
) -> Config:
    """``ports``: (name, port, direction) per reader."""
    return parse(
        {
            "door": {"site": "test", "id": "d1", "unlock_seconds": 3.0, **(door or {})},
            "gpio": {
                "pin_factory": "mock",
                "lock": LOCK,
                "green_led": GREEN,
                "red_led": RED,
                "buzzer": BUZZER,
                "door_contact": CONTACT,
                "exit_button": EXIT,
                "fire_alarm": FIRE,
                "passage": PASSAGE,
                "obstruction": OBSTRUCTION,
                "staff_release": STAFF,
                "fire_reset": RESET,
                "deny_led_seconds": 0.1,
                "deny_beep_seconds": 0.05,
                "grant_beep_seconds": 0.02,
                **(gpio or {}),
            },
            "readers": [
                {"type": "rdm6300", "port": p, "name": n, "direction": d, "hold_off_seconds": 0}
                for n, p, d in ports
            ],
            "storage": {"path": str(tmp_path / "door.db")},
            "rules": {"timezone": "UTC", **(rules or {})},
            "daemon": {"watchdog": False},
            **top,
        },
        tmp_path / "test.toml",
    )


def enrol(
    db: Path,
    person: str,
    uid: str,
    attrs: dict[str, Any] | None = None,
    valid_from: float | None = None,
    valid_until: float | None = None,
) -> None:
    conn = open_db(db, synchronous="NORMAL")
    with transaction(conn):
        creds.upsert_person(
            conn,
            creds.Person(person, person.title(), True, valid_from, valid_until, attrs or {}),
        )
        creds.add_credential(conn, "card", uid, person)
    conn.close()


async def decide_next(d: Any, sim: Any, uid: str) -> Any:
    """Tap ``uid`` and return the decision event it produces (skipping other events)."""
    sim.tap(uid)
    while True:
        ev = await d.next_event()
        if ev.type in ("access_granted", "access_denied"):
            return ev


async def settle(n: int = 5) -> None:
    """Let call_soon_threadsafe callbacks from gpiozero run (no time passes)."""
    for _ in range(n):
        await asyncio.sleep(0)


@dataclass
class DoorUnderTest:
    daemon: Daemon
    factory: MockFactory
    clock: FakeClock
    sims: dict[str, Rdm6300Simulator]
    events: asyncio.Queue[Event]
    seen: list[Event] = field(default_factory=list)

    @property
    def locked(self) -> bool:
        return not self.factory.pin(LOCK).state

    @property
    def door(self):
        return self.daemon.door

    def press(self, pin: int) -> None:
        self.factory.pin(pin).drive_low()

    def release(self, pin: int) -> None:
        self.factory.pin(pin).drive_high()

    async def next_event(self, timeout: float = 3.0) -> Event:
        ev = await asyncio.wait_for(self.events.get(), timeout)
        self.seen.append(ev)
        return ev

    async def wait_for(self, type_: str, timeout: float = 3.0) -> Event:
        """Read events until one of ``type_`` arrives; earlier ones stay in ``seen``."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            ev = await self.next_event(max(0.01, end - loop.time()))
            if ev.type == type_:
                return ev

    async def quiet(self, seconds: float = 0.15) -> list[Event]:
        """Events that arrive within ``seconds`` (for asserting that nothing happened)."""
        got = []
        try:
            while True:
                got.append(await self.next_event(seconds))
        except TimeoutError:
            return got

    async def tick(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.door.rules.tick()
        await settle()


@asynccontextmanager
async def running_door(
    config: Config,
    sims: dict[str, Rdm6300Simulator],
    clock: FakeClock | None = None,
    before_start: Callable[[MockFactory], None] | None = None,
    close_door: bool = True,
    edge_sources: dict[str, Any] | None = None,
) -> AsyncIterator[DoorUnderTest]:
    clock = clock or FakeClock()
    factory = MockFactory()
    if before_start:
        before_start(factory)
    daemon = Daemon(config, pin_factory=factory, edge_sources=edge_sources)
    daemon.door.clock = clock
    daemon.door.monotonic = clock  # the test drives durations and dates alike
    queue: asyncio.Queue[Event] = asyncio.Queue()
    daemon.door.add_listener(queue.put_nowait)
    await daemon.start()
    if close_door and config.gpio.door_contact is not None:
        # Mock pins start pulled up, so the daemon found the door open at start (journaled
        # door_opened with at_start, tested in test_contact_exit). The door stands closed in
        # every scenario: the contact pulls its pin low, and the start-up pair is consumed.
        factory.pin(CONTACT).drive_low()
        await settle()
        others = []
        while (ev := await asyncio.wait_for(queue.get(), 3.0)).type != "door_closed":
            if not (ev.type == "door_opened" and ev.payload.get("at_start")):
                others.append(ev)
        for ev in others:
            queue.put_nowait(ev)
    # Let the readers open their ptys before anyone taps a card.
    for _ in range(200):
        if all(r.healthy or r.last_error for r in daemon.readers):
            break
        await asyncio.sleep(0.005)
    try:
        yield DoorUnderTest(daemon, factory, clock, sims, queue)
    finally:
        await daemon.stop()


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))
