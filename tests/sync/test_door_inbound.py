"""Orders and credentials from the central office, over the real broker, into the real door."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from edgegate.contract import signing
from edgegate.sim.broker import Broker
from edgegate.sim.rdm6300 import Rdm6300Simulator
from tests.conftest import running_door
from tests.sync.central import Central, command, mqtt_config, snapshot_chunks, update
from tests.sync.test_door_sync import ALICE, BOB, door_setup, run, until

pytestmark = pytest.mark.broker


def scenario_door(tmp_path: Path, broker: Broker, body, **mqtt_over) -> Central:
    central = Central(broker)
    sim = Rdm6300Simulator()
    cfg = mqtt_config(tmp_path, sim.port, broker, **mqtt_over)

    async def scenario():
        async with running_door(tmp_path, sim=sim, config=cfg, setup=door_setup) as d:
            await until(lambda: d.daemon.sync.link.connected.is_set())
            # The broker has the door's subscriptions once its availability is seen.
            await until(lambda: central.messages(central.topics.availability)[-1:] == [b"online"])
            await asyncio.sleep(0.1)
            await body(d, central, sim)

    try:
        run(scenario())
    finally:
        central.close()
        sim.close()
    return central


def test_disabled_card_is_denied_within_a_second(tmp_path: Path, broker: Broker):
    async def body(d, central, sim):
        sim.tap(ALICE)
        assert (await d.next_event()).type == "access_granted"
        # Past the reader's hold-off (a card re-read within 0.3 s counts once).
        await asyncio.sleep(0.4)
        op = {"op": "set_credential_enabled", "kind": "card", "value": ALICE, "enabled": False}
        t0 = time.monotonic()
        await asyncio.to_thread(central.send, central.topics.credentials, update(1, 0, [op]))
        while True:
            ev = await d.next_event()
            if ev.type == "credentials_updated":
                break
        applied = time.monotonic() - t0
        sim.tap(ALICE)
        ev = await d.next_event()
        denied = time.monotonic() - t0
        assert ev.type == "access_denied" and ev.payload["reason"] == "revoked"
        assert applied < 1.0 and denied < 1.0, (applied, denied)
        assert d.daemon.sync.version == 1

    scenario_door(tmp_path, broker, body)


def test_commands_are_acknowledged_and_replays_refused(tmp_path: Path, broker: Broker):
    async def body(d, central, sim):
        sync = d.daemon.sync
        t = central.topics
        unlock = command("unlock")
        await asyncio.to_thread(central.send, t.cmd, unlock)
        await until(lambda: d.lock_high)
        await until(lambda: central.events_of("command_ack"))
        ack = central.events_of("command_ack")[0]
        assert (ack["cmd_id"], ack["result"], ack["cmd"]) == (unlock["id"], "ok", "unlock")
        await asyncio.to_thread(central.send, t.cmd, command("lock"))
        await until(lambda: not d.lock_high)
        # The same signed bytes again: a replay.
        await asyncio.to_thread(central.send, t.cmd, unlock)
        await until(lambda: sync.rejected["replayed"] == 1)
        await asyncio.to_thread(
            central.send, t.cmd, command("unlock", ttl=-1, issued="2020-01-01T00:00:00Z")
        )
        await until(lambda: sync.rejected["expired"] == 1)
        await asyncio.to_thread(central.send, t.cmd, command("unlock", door="other"))
        await until(lambda: sync.rejected["wrong_door"] == 1)
        await asyncio.to_thread(central.send, t.all_cmd, command("lockdown", door="all"))
        await until(lambda: d.daemon.door.state()["mode"] == "lockdown")
        sim.tap(BOB)
        ev = await d.next_event()
        while ev.type != "access_denied":
            ev = await d.next_event()
        assert ev.payload["reason"] == "lockdown"
        await asyncio.to_thread(central.send, t.cmd, command("emergency"))
        await until(lambda: d.daemon.door.state()["mode"] == "emergency" and d.lock_high)
        await asyncio.to_thread(central.send, t.cmd, command("lock"))
        await until(lambda: any(a["result"] == "refused" for a in central.events_of("command_ack")))
        assert d.lock_high  # an emergency release is not ended by 'lock'
        await asyncio.to_thread(central.send, t.cmd, command("normal"))
        await until(lambda: d.daemon.door.state()["mode"] == "normal")
        before = sync.counters["snapshot_requests"]
        await asyncio.to_thread(central.send, t.cmd, command("sync"))
        await until(lambda: sync.counters["snapshot_requests"] == before + 1)
        await until(lambda: len(central.messages(t.snapshot_request)) >= 2)
        req = json.loads(central.messages(t.snapshot_request)[-1])
        assert (req["type"], req["have"], req["reason"]) == ("snapshot_request", 0, "command")
        await until(lambda: len(central.events_of("command_ack")) == 7)
        acks = central.events_of("command_ack")
        assert [a["cmd"] for a in acks] == [
            "unlock",
            "lock",
            "lockdown",
            "emergency",
            "lock",
            "normal",
            "sync",
        ]

    scenario_door(tmp_path, broker, body)


def test_gap_asks_for_a_snapshot_which_replaces_the_set(tmp_path: Path, broker: Broker):
    async def body(d, central, sim):
        sync = d.daemon.sync
        t = central.topics
        versions: list[int] = []
        d.daemon.door.add_credentials_listener(versions.append)
        # A new door (version 0) asks on connect.
        await until(lambda: central.messages(t.snapshot_request))
        assert json.loads(central.messages(t.snapshot_request)[0])["reason"] == "new"
        put = {"op": "put_person", "person": {"id": "carol", "name": "Carol"}}
        await asyncio.to_thread(central.send, t.credentials, update(1, 0, [put]))
        await until(lambda: sync.version == 1)
        # Version 3 on base 2: the door missed 2.
        await asyncio.to_thread(central.send, t.credentials, update(3, 2, [put]))
        await until(lambda: sync.counters["gaps"] == 1)
        await until(
            lambda: any(
                json.loads(p)["reason"] == "gap" for p in central.messages(t.snapshot_request)
            )
        )
        people = [{"id": "carol", "name": "Carol"}, {"id": "dan"}]
        cards = [{"kind": "card", "value": "0A0B0C0D0E", "person": "dan"}]
        for chunk in snapshot_chunks(people, cards, version=3, per_chunk=1):
            await asyncio.to_thread(central.send, t.snapshot, chunk)
        await until(lambda: sync.version == 3)
        sim.tap("0A0B0C0D0E")
        sim.tap(ALICE)
        seen = []
        while len(seen) < 2:
            ev = await d.next_event()
            if ev.type.startswith("access_"):
                seen.append((ev.type, ev.payload.get("person")))
        # alice was not in the snapshot: gone. dan came with it.
        assert seen == [("access_granted", "dan"), ("access_denied", None)]
        # The face gallery and fingerprint library hear of every change.
        assert versions == [1, 3]
        # An older update is now a replay.
        await asyncio.to_thread(central.send, t.credentials, update(2, 1, [put]))
        await until(lambda: sync.rejected["replayed"] == 1)

    scenario_door(tmp_path, broker, body)


def test_bad_payloads_of_every_kind_while_the_door_decides(tmp_path: Path, broker: Broker):
    other = signing.Signer(signing.generate())

    async def body(d, central, sim):
        sync = d.daemon.sync
        t = central.topics
        good = central_signed = __import__("tests.sync.central", fromlist=["SIGNER"]).SIGNER
        bad = [
            (t.cmd, b"not json", "malformed"),
            (t.cmd, b"[]", "malformed"),
            (t.cmd, json.dumps(command("unlock")).encode(), "unsigned"),
            (t.cmd, other.sign(command("unlock")), "unknown_key"),
            (t.cmd, central_signed.sign({"type": "command", "cmd": "fly"}), "malformed"),
            (t.credentials, good.sign(update(1, 0, [{"op": "explode"}])), "malformed"),
            (
                t.credentials,
                good.sign(
                    update(
                        1,
                        0,
                        [
                            {
                                "op": "put_credential",
                                "credential": {"kind": "card", "value": "ZZ", "person": "alice"},
                            }
                        ],
                    )
                ),
                "malformed",
            ),
            (
                t.credentials,
                good.sign(
                    update(
                        1,
                        0,
                        [
                            {
                                "op": "put_credential",
                                "credential": {
                                    "kind": "card",
                                    "value": "0102030405",
                                    "person": "nobody",
                                },
                            }
                        ],
                    )
                ),
                "malformed",
            ),
            (t.snapshot, good.sign({"type": "snapshot", "chunk": 3}), "malformed"),
            (t.all_cmd, good.sign(command("unlock")), "wrong_door"),
        ]
        outer = json.loads(good.sign(command("unlock")))
        outer["body"] = outer["body"].replace("unlock", "lockdown")
        bad.append((t.cmd, json.dumps(outer).encode(), "bad_signature"))
        for topic, payload, _ in bad:
            await asyncio.to_thread(central.send, topic, payload)
        expected: dict[str, int] = {}
        for _, _, reason in bad:
            expected[reason] = expected.get(reason, 0) + 1
        await until(lambda: dict(sync.rejected) == expected)
        assert sync.version == 0 and not d.lock_high
        sim.tap(ALICE)
        ev = await d.next_event()
        while ev.type != "access_granted":
            ev = await d.next_event()
        tele = await sync.telemetry()
        assert tele["rejected"] == expected

    scenario_door(tmp_path, broker, body)


def test_silence_doctor_and_assist_release_commands(tmp_path: Path, broker: Broker):
    """The v1 extension commands through the real broker: 'silence' on a door without an
    alarm output is refused with the reason; 'doctor' journals a doctor_report that reaches
    the office; 'staff_release' names the operator and the person verified. The door's
    name and location ride on its retained state."""

    async def body(d, central, sim):
        t = central.topics
        await asyncio.to_thread(central.send, t.cmd, command("silence"))
        await until(lambda: central.events_of("command_ack"))
        ack = central.events_of("command_ack")[0]
        assert (ack["cmd"], ack["result"]) == ("silence", "refused")
        assert "no alarm output" in ack["reason"]
        doctor = command("doctor")
        await asyncio.to_thread(central.send, t.cmd, doctor)
        await until(lambda: central.events_of("doctor_report"), timeout=15)
        report = central.events_of("doctor_report")[0]
        assert report["trigger"] == f"command:{doctor['id']}"
        parts = {c["part"]: c["status"] for c in report["checks"]}
        assert parts["broker"] == "ok" and parts["reader entry"] == "ok"
        release = command("staff_release", by="op-anna", args={"person": "alice"})
        await asyncio.to_thread(central.send, t.cmd, release)
        await until(lambda: central.events_of("staff_release"))
        ev = central.events_of("staff_release")[0]
        assert (ev["staff"], ev["person"], ev["source"]) == (
            "op-anna",
            "alice",
            f"command:{release['id']}",
        )
        state = json.loads(central.messages(t.state)[-1])
        assert state["name"] == "" and state["location"] == ""

    scenario_door(tmp_path, broker, body)
