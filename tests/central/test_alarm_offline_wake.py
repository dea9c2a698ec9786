"""``door_offline`` is raised as soon as a door's availability turns offline, not at the next
``[alarms] check_seconds`` (five minutes here, the most it may be): a real ``central serve``
(in a thread) on a real mosquitto, doors whose connection drops without a word (the broker
publishes their last will).

Availability reaches every instance; the first to store it may not hold the duties. The door
``front`` plays that case: its ``offline`` is already in the store (written as another
instance would) when the will reaches the duty holder, whose own write then changes nothing;
the alarm is still raised at once. ``side`` is the plain case: the holder stores it itself."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import Connection, select

from edgegate.central import archive
from edgegate.central.config import load_central
from edgegate.central.schema.alarms import alarms
from edgegate.sim.broker import Broker
from tests.central.conftest import SITE, Central, FakeDoor, ServerThread, make_central, wait_until

pytestmark = [pytest.mark.broker]


def offline_alarms(conn: Connection) -> list[str]:
    q = select(alarms.c.door).where(alarms.c.type == "door_offline")
    return sorted(conn.execute(q).scalars())


def availability(conn: Connection) -> dict[str, str]:
    return {d["door"]: d["availability"] for d in archive.list_doors(conn)}


def test_door_offline_is_raised_at_once(tmp_path: Path, broker: Broker, office_db: str) -> None:
    made = make_central(tmp_path, broker.port, office_db)
    with made.path.open("a") as f:
        f.write("\n[alarms]\ncheck_seconds = 300\n")
    central = Central(made.path, load_central(made.path), made.verifier, made.signer)
    server = ServerThread(central)
    doors = {name: FakeDoor(broker, name) for name in ("front", "side")}
    try:
        wait_until(lambda: server.server.leader, 10, "the duties")
        for door in doors.values():
            door.online()
        wait_until(
            lambda: central.q(availability) == {"front": "online", "side": "online"},
            15,
            "both doors online",
        )
        # ... and the alarms' pass woken by it done (else that pass could find front's
        # offline below and hide the case under test).
        service = server.server.alarms
        assert service is not None
        wait_until(
            lambda: (
                {d[:2] for d in service._doors_seen or ()}
                == {("front", "online"), ("side", "online")}
            ),
            15,
            "the alarms to see both doors online",
        )
        # Another instance stored front's offline first (it holds no duties). Front alone
        # first: side's change would wake the alarms, which then find front's too.
        central.q(archive.set_availability, SITE, "front", "offline", time.time())
        for name, door in doors.items():
            # The connection lost without a DISCONNECT: the broker sends the last will.
            door.client.loop_stop()
            sock = door.client.socket()
            assert sock is not None
            sock.close()
            wait_until(
                lambda name=name: name in central.q(offline_alarms),
                15,
                f"door_offline for {name} (the periodic check is minutes away)",
            )
    finally:
        for door in doors.values():
            door.client.loop_stop()
        server.stop()
        central.close()
