"""A door run under libfaketime by test_wall_clock_steps.py (not a test module itself).

The door runs in this process with gpiozero mock pins; reads are handed to it as a reader
would. The parent preloads libfaketime with a timestamp file and CLOCK_MONOTONIC left alone
(``DONT_FAKE_MONOTONIC=1``), as an NTP step or a hand-set date does on a real Pi; this script
steps the wall clock back an hour by rewriting that file, then prints what the door did as
one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from gpiozero.pins.mock import MockFactory

from edgegate.core.reads import CredentialKind, CredentialRead
from edgegate.daemon.app import Daemon
from edgegate.store.journal import Event
from tests.rules.conftest import ALICE, CONTACT, enrol, make_config

UNKNOWN = "7700112233"


async def _wait(events: list[Event], type_: str, timeout: float = 5.0) -> Event | None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        for ev in events:
            if ev.type == type_:
                return ev
        await asyncio.sleep(0.02)
    return None


async def _decide(daemon: Daemon, events: list[Event], read) -> list[object] | None:
    """Alice's card read: [decision, reason]."""
    events.clear()
    read(ALICE)
    loop = asyncio.get_running_loop()
    end = loop.time() + 10.0  # generous: the machine may be busy
    while loop.time() < end:
        for ev in events:
            if ev.type in ("access_granted", "access_denied"):
                return [ev.type, ev.payload.get("reason")]
        await asyncio.sleep(0.02)
    return None


async def main(tmp: Path, step_file: Path, step: str) -> dict[str, object]:
    cfg = make_config(
        tmp,
        [],
        door={"unlock_seconds": 1.0, "held_open_seconds": 1.5, "prealarm_seconds": 0},
        rules={"lockout_attempts": 2, "lockout_window_seconds": 30, "lockout_seconds": 5},
    )
    enrol(cfg.storage.path, "alice", ALICE)
    factory = MockFactory()
    daemon = Daemon(cfg, pin_factory=factory)
    events: list[Event] = []
    daemon.door.add_listener(events.append)
    await daemon.start()
    factory.pin(CONTACT).drive_low()  # the door stands closed
    await asyncio.sleep(0.1)

    def read(uid: str) -> None:
        daemon.door.credential(CredentialRead(CredentialKind.CARD, uid, "entry"))

    out: dict[str, object] = {}
    try:
        for _ in range(2):
            read(UNKNOWN)
            await asyncio.sleep(0.1)
        out["lockout"] = (await _wait(events, "lockout")) is not None
        locked_at = time.monotonic()
        factory.pin(CONTACT).drive_high()  # the door is propped open
        wall_before, mono_before = time.time(), time.monotonic()
        step_file.write_text(step)  # the wall clock steps
        await asyncio.sleep(0.05)
        # The wall clock's move minus the time that really passed (a busy machine is slow).
        out["stepped_by"] = round((time.time() - wall_before) - (time.monotonic() - mono_before))
        out["uptime_after_step"] = daemon.status()["uptime"]
        out["alice_during_lockout"] = await _decide(daemon, events, read)
        out["during_at"] = round(time.monotonic() - locked_at, 2)
        # The 1.5 s held-open alarm is due (and, below, the 5 s lockout's end).
        held = await _wait(events, "door_held_open", timeout=5.0)
        out["held_open_after"] = None if held is None else held.payload["open_seconds"]
        factory.pin(CONTACT).drive_low()
        await asyncio.sleep(max(0.0, locked_at + 5.3 - time.monotonic()))
        out["alice"] = await _decide(daemon, events, read)
        out["uptime_end"] = daemon.status()["uptime"]
    finally:
        await daemon.stop()
    return out


if __name__ == "__main__":
    tmp, step_file, step = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    print(json.dumps(asyncio.run(main(tmp, step_file, step))), flush=True)
