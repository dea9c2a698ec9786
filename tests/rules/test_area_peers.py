"""Rules across doors through a real broker and two real door daemons (issue 20): presence
shared by an area's doors (anti-passback holds across them, through a broker outage), the
area's occupancy in telemetry, the interlock following its peer's real state, and the offline
policy following the office's presence on the broker."""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from edgegate.config import parse
from edgegate.config.models import Config
from edgegate.contract.topics import office_availability
from edgegate.sim.broker import Broker, BrokerUnavailable
from edgegate.sim.rdm6300 import Rdm6300Simulator
from tests.conftest import enrol, running_door, until
from tests.sync.central import mqtt_config

pytestmark = pytest.mark.broker
ALICE, BOB = "0F00BC614E", "1A2B3C4D5E"
# The same card tapped twice in a row must be read twice (the test taps on purpose).
NO_HOLD = {"hold_off_seconds": 0}


@pytest.fixture
def broker() -> Any:
    """A broker that keeps the doors' persistent sessions across its own kill -9: what a
    peer published while another door was cut off waits for it (mosquitto persistence)."""
    try:
        b = Broker(extra_config="autosave_on_changes true\nautosave_interval 1\n")
    except BrokerUnavailable as exc:
        pytest.fail(f"{exc}: run ./scripts/setup.sh test")
    with b:
        yield b


def run(coro: Any, timeout: float = 60) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def door_config(
    tmp_path: Path, door: str, entry: str, exit_: str, broker: Broker, **top: Any
) -> Config:
    base = mqtt_config(tmp_path, entry, broker)
    raw = base.model_dump(mode="json", exclude_none=True)
    (tmp_path / door).mkdir()
    raw["door"].update({"id": door, "area": "hall"})
    raw["mqtt"]["client_id"] = f"test-{door}"
    raw["readers"] = [
        {"type": "rdm6300", "port": entry, "name": "entry", "direction": "in", **NO_HOLD},
        {"type": "rdm6300", "port": exit_, "name": "exit", "direction": "out", **NO_HOLD},
    ]
    raw["storage"] = {"path": str(tmp_path / door / "door.db")}
    raw["rules"] = {"passback": "hard"}
    raw.update(top)
    cfg = parse(raw, tmp_path / door / "edgegate.toml")
    enrol(cfg.storage.path, "alice", ALICE)
    enrol(cfg.storage.path, "bob", BOB)
    return cfg


async def decision(d: Any, sim: Rdm6300Simulator, uid: str) -> Any:
    sim.tap(uid)
    while True:
        ev = await d.next_event(5)
        if ev.type in ("access_granted", "access_denied"):
            return ev


async def presence(d: Any, person: str) -> str | None:
    row = await d.daemon.store.call(
        lambda c: c.execute(
            "SELECT state FROM presence WHERE person_id = ? AND area = 'hall'", (person,)
        ).fetchone()
    )
    return None if row is None else row[0]


async def known(d: Any, person: str, state: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while await presence(d, person) != state:
        if time.monotonic() > deadline:
            raise AssertionError(f"{person} never became {state!r} at this door")
        await asyncio.sleep(0.02)


def test_anti_passback_across_an_area_through_a_broker_outage(tmp_path: Path, broker: Broker):
    sims = [Rdm6300Simulator() for _ in range(4)]
    a_in, a_out, b_in, b_out = sims
    cfg_a = door_config(tmp_path, "a", a_in.port, a_out.port, broker, area={"peers": ["b"]})
    cfg_b = door_config(tmp_path, "b", b_in.port, b_out.port, broker, area={"peers": ["a"]})

    async def scenario() -> None:
        async with AsyncExitStack() as stack:
            a = await stack.enter_async_context(running_door(tmp_path, sim=a_in, config=cfg_a))
            b = await stack.enter_async_context(running_door(tmp_path, sim=b_in, config=cfg_b))
            for d in (a, b):
                await until(lambda d=d: d.daemon.sync.link.connected.is_set())
            await asyncio.sleep(0.3)  # both subscribed to each other's events
            # Alice enters through A; B learns it from A's event and refuses her entry.
            assert (await decision(a, a_in, ALICE)).type == "access_granted"
            await known(b, "alice", "in")
            refused = await decision(b, b_in, ALICE)
            assert refused.payload["reason"] == "passback"
            # The broker goes away: each door decides alone on what it knows.
            broker.stop(kill=True)
            await until(lambda: not a.daemon.sync.link.connected.is_set())
            assert (await decision(b, b_out, ALICE)).type == "access_granted"  # leaves via B
            assert await presence(a, "alice") == "in"  # A cannot know yet
            # Bob enters through A while the broker is down.
            assert (await decision(a, a_in, BOB)).type == "access_granted"
            broker.start()
            # Back on the broker, the doors catch up from each other's journals.
            await known(a, "alice", "out", 15)
            await known(b, "bob", "in", 15)
            assert (await decision(a, a_in, ALICE)).type == "access_granted"
            await known(b, "alice", "in")
            assert (await decision(b, b_in, BOB)).payload["reason"] == "passback"
            # Both doors count the same two people inside the hall.
            # A applied Alice's exit from B; B applied Alice, Bob and Alice again from A.
            for d, applied in ((a, 1), (b, 3)):
                tele = await d.daemon.sync.telemetry()
                assert tele["area"] == {"id": "hall", "occupancy": 2}
                assert tele["peers"] == {"applied": applied}

    try:
        run(scenario())
    finally:
        for s in sims:
            s.close()


def test_interlock_follows_the_peer_door_over_the_broker(tmp_path: Path, broker: Broker):
    sims = [Rdm6300Simulator() for _ in range(4)]
    a_in, a_out, b_in, b_out = sims
    cfg_a = door_config(tmp_path, "a", a_in.port, a_out.port, broker, interlock={"peer": "b"})
    cfg_b = door_config(tmp_path, "b", b_in.port, b_out.port, broker)

    async def scenario() -> None:
        async with running_door(tmp_path, sim=a_in, config=cfg_a) as a:
            await until(lambda: a.daemon.sync.link.connected.is_set())
            # B has never been seen: A refuses to release.
            assert (await decision(a, a_in, ALICE)).payload["reason"] == "interlock"
            async with running_door(tmp_path, sim=b_in, config=cfg_b) as b:
                await until(lambda: a.daemon.door.state()["interlock"]["allows"] is True)
                # B releases for Bob: A refuses while B is released.
                assert (await decision(b, b_in, BOB)).type == "access_granted"
                await until(lambda: a.daemon.door.state()["interlock"]["allows"] is False)
                assert (await decision(a, a_out, ALICE)).payload["reason"] == "interlock"
                # B relocks (unlock_seconds): A may release again.
                await until(lambda: a.daemon.door.state()["interlock"]["allows"] is True, 5)
                assert (await decision(a, a_out, ALICE)).type == "access_granted"
            # B stopped (its availability says offline): unknown again, so A refuses.
            await until(lambda: a.daemon.door.state()["interlock"]["allows"] is False)

    try:
        run(scenario())
    finally:
        for s in sims:
            s.close()


def test_offline_policy_follows_the_office_presence(tmp_path: Path, broker: Broker):
    sims = [Rdm6300Simulator() for _ in range(2)]
    enrol_groups = {"alice": ["staff"], "bob": ["visitors"]}
    cfg = door_config(
        tmp_path,
        "a",
        sims[0].port,
        sims[1].port,
        broker,
        offline={"after_minutes": 0.005, "allowed_groups": ["staff"]},
        rules={"passback": "off"},
    )
    from edgegate.store import credentials as creds
    from edgegate.store.db import open_db, transaction

    conn = open_db(cfg.storage.path, synchronous="NORMAL")
    with transaction(conn):
        for person, groups in enrol_groups.items():
            creds.update_person_attrs(conn, person, {"groups": groups})
    conn.close()
    office = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="office-test")
    topic = office_availability("test", "host-1")

    async def scenario() -> None:
        async with running_door(tmp_path, sim=sims[0], config=cfg) as a:
            await until(lambda: a.daemon.sync.link.connected.is_set())
            await asyncio.sleep(0.4)  # no office on the broker yet: silent too long
            assert a.daemon.door.state()["offline_too_long"] is True
            assert (await decision(a, sims[0], BOB)).payload["reason"] == "offline"
            assert (await decision(a, sims[0], ALICE)).type == "access_granted"
            # The office comes online (a retained presence, as central serve publishes).
            office.connect(broker.host, broker.port)
            office.loop_start()
            office.publish(topic, b"online", qos=1, retain=True).wait_for_publish(3)
            await until(lambda: a.daemon.door.state()["offline_too_long"] is False)
            assert (await decision(a, sims[0], BOB)).type == "access_granted"
            # The office instance goes away: its presence is cleared.
            office.publish(topic, b"", qos=1, retain=True).wait_for_publish(3)
            await until(lambda: a.daemon.door.state()["offline_too_long"] is True)
            state = json.loads(json.dumps(a.daemon.door.state()))
            assert state["offline_too_long"] is True

    try:
        run(scenario())
    finally:
        office.loop_stop()
        office.disconnect()
        for s in sims:
            s.close()
