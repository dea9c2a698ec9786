"""A door started under libfaketime with its wall clock a day behind (an RTC-less Pi before
NTP), run by test_wall_clock_steps.py; prints what it decided as one JSON line.

The store was used before (its journal holds today's events). Bob's card expired an hour ago
in real time: with the clock a day behind it would look valid again."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from gpiozero.pins.mock import MockFactory

from edgegate.core.reads import CredentialKind, CredentialRead
from edgegate.daemon.app import Daemon
from edgegate.store.journal import Event
from tests.rules.conftest import CONTACT, make_config

BOB = "1A2B3C4D5E"


async def _first(events: list[Event], types: tuple[str, ...], timeout: float) -> Event | None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        for ev in events:
            if ev.type in types:
                return ev
        await asyncio.sleep(0.02)
    return None


async def main(tmp: Path, step_file: Path) -> dict[str, object]:
    cfg = make_config(tmp, [])
    factory = MockFactory()
    daemon = Daemon(cfg, pin_factory=factory)
    events: list[Event] = []
    daemon.door.add_listener(events.append)
    await daemon.start()
    factory.pin(CONTACT).drive_low()
    out: dict[str, object] = {}
    try:
        behind = await _first(events, ("clock_behind",), 2.0)
        out["clock_behind"] = None if behind is None else behind.payload["behind_seconds"]
        events.clear()
        daemon.door.credential(CredentialRead(CredentialKind.CARD, BOB, "entry"))
        decision = await _first(events, ("access_granted", "access_denied"), 10.0)
        out["bob"] = None if decision is None else [decision.type, decision.payload.get("reason")]
        out["flag"] = None if decision is None else decision.payload.get("clock")
        step_file.write_text("+0")  # NTP steps the clock to the real time
        synced = await _first(events, ("clock_synchronised",), 10.0)
        out["synchronised"] = synced is not None
    finally:
        await daemon.stop()
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))), flush=True)
