"""The whole chain on one real broker: `edgegate central` (CLI and `serve`) and two real door
daemons, each with an RDM6300 and a fingerprint sensor on ptys and mock pins.

New doors ask for a snapshot, the office answers, both doors apply it; the fingerprint template
enrolled at the office lands in both sensors and opens both doors; a lost card disabled at the
office is denied at both doors within a second; every door event reaches the office archive.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from edgegate.central.archive import list_doors, query_events
from edgegate.config import parse
from edgegate.config.models import Config
from edgegate.contract import signing
from edgegate.sim.broker import Broker
from edgegate.sim.fingerprint import FingerprintSimulator, finger_template
from edgegate.sim.rdm6300 import Rdm6300Simulator
from edgegate.store import journal
from edgegate.store.db import open_db
from tests.central.conftest import ServerThread, make_central
from tests.conftest import office_mqtt, running_door, until
from tests.integration.fp_doors import fp_config

pytestmark = [pytest.mark.broker, pytest.mark.slow]

ALICE_CARD, ALICE_FINGER = "0F00BC614E", "alice-index"


def door_config(tmp_path: Path, name: str, cards: str, fp: str, broker: Broker, key: str) -> Config:
    raw = fp_config(tmp_path, cards, fp, door=name).model_dump(mode="json", exclude_none=True)
    raw["door"]["site"] = "hq"
    raw["readers"][0]["hold_off_seconds"] = 0  # the test taps the same card again at once
    raw["mqtt"] = office_mqtt(broker, key, keepalive=5)
    raw["daemon"] = {"watchdog": False}
    return parse(raw, tmp_path / f"{name}.toml")


async def decision(door) -> object:
    while True:
        ev = await door.next_event(5)
        if ev.type in ("access_granted", "access_denied"):
            return ev


def test_office_to_two_doors(tmp_path: Path, broker: Broker, office_db: str):
    (tmp_path / "office").mkdir()
    central = make_central(tmp_path / "office", broker.port, office_db)
    key = signing.public_text(central.signer._key.public_key())
    template = tmp_path / "alice.tpl"
    template.write_bytes(finger_template(ALICE_FINGER))
    # The office enrols before any door exists: the doors catch up by snapshot.
    assert central.run("people", "add", "alice", "--name", "Alice", "--card", ALICE_CARD) == 0
    assert (
        central.run(
            "people", "add-credential", "alice", "--kind", "finger",
            "--data-file", str(template), "--label", "model=r307",
        )
        == 0
    )  # fmt: skip
    server = ServerThread(central)

    async def scenario() -> None:
        async with AsyncExitStack() as stack:
            doors = []
            for name in ("north", "south"):
                cards = stack.enter_context(Rdm6300Simulator())
                sensor = stack.enter_context(FingerprintSimulator())
                cfg = door_config(tmp_path, name, cards.port, sensor.port, broker, key)
                door = await stack.enter_async_context(
                    running_door(tmp_path, sim=cards, config=cfg)
                )
                doors.append((door, cards, sensor))

            for door, cards, sensor in doors:
                # Snapshot applied, then the library sync wrote the template into the sensor.
                await until(lambda d=door: d.daemon.sync.version >= 2, what="snapshot")
                await until(lambda s=sensor: s.library, what="template in the sensor")
                assert list(sensor.library.values()) == [finger_template(ALICE_FINGER)]
                cards.tap(ALICE_CARD)
                ev = await decision(door)
                assert ev.type == "access_granted" and ev.payload["person"] == "alice"
                sensor.place_finger(ALICE_FINGER)
                ev = await decision(door)
                sensor.lift_finger()
                assert ev.type == "access_granted" and ev.payload["kind"] == "finger"
                assert ev.payload["person"] == "alice"

            # A lost card, disabled at the office, is denied at both doors. How fast is a
            # benchmark's question (bench/console_live.py, docs/benchmarks.md); here: it is
            # denied, by the version, without waiting on a timer (the sweep is 30 s).
            t0 = time.monotonic()
            # In a thread: the CLI blocks until the broker's PUBACK, the doors' loop must not.
            assert await asyncio.to_thread(central.run, "cards", "disable", ALICE_CARD) == 0
            for door, cards, _sensor in doors:
                while True:
                    await asyncio.sleep(0.05)
                    cards.tap(ALICE_CARD)
                    ev = await decision(door)
                    if ev.type == "access_denied":
                        break
                    assert time.monotonic() - t0 < 20, "card still opens after 20 s"
                assert ev.payload["reason"] == "revoked"

            # Every door event reaches the office archive, once, and both doors show online.
            journaled = set()
            for door, _cards, _sensor in doors:
                conn = open_db(door.daemon.config.storage.path, readonly=True)
                try:
                    await until(lambda c=conn: journal.unsent_count(c) == 0, what="all sent")
                    journaled |= {e.id for e in journal.recent(conn, limit=10_000)}
                finally:
                    conn.close()
            archived = {e["id"] for e in central.q(query_events)}
            assert journaled <= archived, f"{len(journaled - archived)} events not archived"
            states = {d["door"]: d["availability"] for d in central.q(list_doors)}
            assert states == {"north": "online", "south": "online"}

    try:
        asyncio.run(asyncio.wait_for(scenario(), 90))
    finally:
        server.stop()
        central.close()
