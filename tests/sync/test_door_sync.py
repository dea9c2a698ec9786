"""The door on a real broker: events, state, availability, telemetry, outages, commands."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edgegate.sim.broker import Broker
from edgegate.sim.rdm6300 import Rdm6300Simulator
from tests.conftest import enrol, running_door, until
from tests.sync.central import Central, mqtt_config

pytestmark = pytest.mark.broker
ALICE, BOB = "0F00BC614E", "1A2B3C4D5E"


def run(coro, timeout: float = 60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def door_setup(config) -> None:
    enrol(config.storage.path, "alice", ALICE)
    enrol(config.storage.path, "bob", BOB)


def test_events_state_availability_telemetry(tmp_path: Path, broker: Broker):
    central = Central(broker)
    sim = Rdm6300Simulator()
    cfg = mqtt_config(tmp_path, sim.port, broker, telemetry_seconds=1)

    async def scenario():
        async with running_door(tmp_path, sim=sim, config=cfg, setup=door_setup) as d:
            t = central.topics
            await until(lambda: central.messages(t.availability)[-1:] == [b"online"])
            await until(lambda: bool(central.messages(t.state)))
            sim.tap(ALICE)
            await until(lambda: central.events_of("access_granted"))
            ev = central.events_of("access_granted")[0]
            assert {"id", "seq", "ts", "site", "door", "type"} <= ev.keys()
            assert (ev["person"], ev["kind"], ev["site"], ev["door"]) == (
                "alice",
                "card",
                "test",
                "d1",
            )
            # state follows the lock: released after the grant, locked again after it.
            await until(
                lambda: any(json.loads(p)["lock"] == "released" for p in central.messages(t.state))
            )
            await until(lambda: json.loads(central.messages(t.state)[-1])["lock"] == "locked")
            await until(lambda: bool(central.messages(t.telemetry)), 4)
            tele = json.loads(central.messages(t.telemetry)[-1])
            assert tele["credentials"]["count"] == 2 and tele["journal"]["unsent"] == 0
            assert {
                "uptime",
                "version",
                "readers",
                "bad_frames",
                "rejected",
                "disk_free",
            } <= tele.keys()
            assert tele["decisions"]["granted"] == 1
            # Flat figures for the office and Home Assistant: journal depth, today's traffic.
            assert tele["journal_depth"] == 0 and tele["today"]["granted"] == 1
            assert tele["credentials_version"] == tele["credentials"]["version"]
            # Every event the central office received is marked sent in the journal.
            rows = await d.daemon.store.call(
                lambda c: c.execute("SELECT id, sent FROM events").fetchall()
            )
            received = {e["id"] for e in central.events}
            assert rows and all(sent for eid, sent in rows if eid in received)
        # A clean stop says offline (retained) itself.
        await until(lambda: central.messages(t.availability)[-1:] == [b"offline"])

    try:
        run(scenario())
    finally:
        central.close()
        sim.close()


def test_events_made_while_broker_is_down_arrive_in_order(tmp_path: Path, broker: Broker):
    central = Central(broker)
    sim = Rdm6300Simulator()
    cfg = mqtt_config(tmp_path, sim.port, broker)
    n = 200

    async def scenario():
        async with running_door(tmp_path, sim=sim, config=cfg, setup=door_setup) as d:
            link = d.daemon.sync.link
            await until(lambda: link.connected.is_set())
            broker.stop(kill=True)
            await until(lambda: not link.connected.is_set())
            for i in range(n):
                await d.daemon.door.record("test_event", i=i)
            unsent = await d.daemon.store.call(
                lambda c: c.execute("SELECT COUNT(*) FROM events WHERE sent=0").fetchone()[0]
            )
            assert unsent == n  # nothing marked sent without a broker
            broker.start()
            await until(lambda: len(central.events_of("test_event")) >= n, 15)
            await until(lambda: d.daemon.sync.drainer.acked >= n)
            await d.daemon.sync.drainer.flush()
            unsent = await d.daemon.store.call(
                lambda c: c.execute("SELECT COUNT(*) FROM events WHERE sent=0").fetchone()[0]
            )
            assert unsent == 0

    try:
        run(scenario())
    finally:
        central.close()
        sim.close()
    got = central.events_of("test_event")
    firsts: dict[str, int] = {}
    for e in got:
        firsts.setdefault(e["id"], e["payload_i"] if "payload_i" in e else e["i"])
    order = list(firsts.values())
    assert order == list(range(n)), "first arrivals not in seq order"
    seqs = [e["seq"] for e in got]
    assert len(set(seqs)) == n


def test_events_refused_by_the_broker_stay_unsent_until_accepted(tmp_path: Path):
    """An ACL that forbids the door to publish: PUBACK with 'not authorized' (MQTT 5). The
    events stay unsent and are offered again, and arrive once the ACL allows them."""
    acl = tmp_path / "acl"
    # Everything but the events topic, which the door may not publish to.
    allowed = ["availability", "state", "telemetry", "credentials/request"]
    acl.write_text(
        "topic read edgegate/#\n" + "".join(f"topic write edgegate/test/d1/{t}\n" for t in allowed)
    )
    with Broker(extra_config=f"acl_file {acl}\n") as broker:
        sim = Rdm6300Simulator()
        cfg = mqtt_config(tmp_path, sim.port, broker)

        async def scenario():
            async with running_door(tmp_path, sim=sim, config=cfg, setup=door_setup) as d:
                drainer = d.daemon.sync.drainer
                await d.daemon.door.record("test_event", i=0)
                await until(lambda: drainer.failed >= 1)
                count = "SELECT COUNT(*) FROM events WHERE sent = 0"
                assert await d.daemon.store.call(lambda c: c.execute(count).fetchone()[0]) == 1
                acl.write_text("topic readwrite edgegate/#\n")
                assert broker.proc is not None
                broker.proc.send_signal(signal.SIGHUP)  # mosquitto reloads its ACL
                await until(lambda: drainer.acked >= 1, 10)
                await drainer.flush()
                assert await d.daemon.store.call(lambda c: c.execute(count).fetchone()[0]) == 0

        try:
            run(scenario())
        finally:
            sim.close()


def test_home_assistant_discovery_published_on_connect(tmp_path: Path, broker: Broker):
    from edgegate.config.models import HomeAssistantConfig
    from edgegate.sync.homeassistant import discovery_messages

    central = Central(broker)
    sim = Rdm6300Simulator()
    cfg = mqtt_config(tmp_path, sim.port, broker).model_copy(
        update={"homeassistant": HomeAssistantConfig(enabled=True)}
    )
    expected = {topic: payload for topic, payload, _retain in discovery_messages(cfg)}
    assert expected
    got: dict[str, bytes] = {}
    ha = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    ha.on_message = lambda _c, _u, msg: got.__setitem__(msg.topic, msg.payload)
    ha.connect(broker.host, broker.port)
    ha.subscribe("homeassistant/#", qos=1)
    ha.loop_start()

    async def scenario():
        async with running_door(tmp_path, sim=sim, config=cfg, setup=door_setup):
            await until(lambda: got.keys() == expected.keys())
            assert {t: json.loads(p) for t, p in got.items()} == expected

    try:
        run(scenario())
    finally:
        ha.loop_stop()
        ha.disconnect()
        central.close()
        sim.close()
