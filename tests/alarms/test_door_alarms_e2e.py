"""The whole chain: a real door daemon (RDM6300 and R307 simulators on ptys, gpiozero mock
pins with a siren relay), a real broker and a real `central serve`, driven by the office CLI.

A forced door sounds the siren and raises an alarm at the office, which is escalated to a
webhook receiver and a local SMTP server, then acknowledged by an operator: the siren stops.
Three unmatched fingers call staff; the operator releases the door naming the person
verified, and both the door's journal and the office's archive show who let whom in. The
fingerprint sensor unplugged and plugged back appears in the fault history with its downtime.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from edgegate.config import parse
from edgegate.config.models import Config
from edgegate.contract import signing
from edgegate.sim.broker import Broker
from edgegate.sim.fingerprint import FingerprintSimulator
from edgegate.sim.rdm6300 import Rdm6300Simulator
from edgegate.store import journal
from edgegate.store.db import open_db
from tests.alarms.conftest import alarm_office
from tests.alarms.receivers import MailReceiver, WebhookReceiver
from tests.central.conftest import ServerThread
from tests.conftest import running_door
from tests.integration.test_central_to_doors import door_config as two_doors_config
from tests.integration.test_central_to_doors import until

pytestmark = [pytest.mark.broker, pytest.mark.slow]

CONTACT, SIREN = 5, 16


def door_config(tmp_path: Path, cards: str, fp: str, broker: Broker, key: str) -> Config:
    """The integration tests' door on this broker, plus a door contact, a siren and a name."""
    base = two_doors_config(tmp_path, "front", cards, fp, broker, key)
    raw = base.model_dump(mode="json", exclude_none=True)
    raw["door"].update(name="Front entrance", location="Building A, ground floor")
    raw["gpio"].update(door_contact=CONTACT, siren=SIREN, siren_seconds=60)
    raw["mqtt"]["telemetry_seconds"] = 1
    return parse(raw, tmp_path / "front.toml")


def test_siren_assist_release_and_fault_history(
    tmp_path: Path, broker: Broker, webhook: WebhookReceiver, mail: MailReceiver, capsys
):
    (tmp_path / "office").mkdir()
    central = alarm_office(tmp_path / "office", broker, webhook, mail)
    key = signing.public_text(central.signer._key.public_key())
    mail.start()
    fp = FingerprintSimulator().start()

    def cli_json(*args: str) -> object:
        capsys.readouterr()
        assert central.run(*args, "--json") == 0
        return json.loads(capsys.readouterr().out)

    async def office(*args: str) -> int:
        return await asyncio.to_thread(central.run, *args)

    def office_alarms() -> dict[str, dict]:
        return {a["type"]: a for a in cli_json("alarms", "list", "--all")}

    async def scenario() -> None:
        with Rdm6300Simulator() as cards:
            cfg = door_config(tmp_path, cards.port, fp.port, broker, key)
            async with running_door(tmp_path, sim=cards, config=cfg) as d:
                await until(lambda: d.daemon.sync.link.connected.is_set())
                siren = d.factory.pin(SIREN)
                seen: list = []

                async def door_event(type_: str, timeout: float = 10.0):
                    deadline = time.monotonic() + timeout
                    while True:
                        for ev in seen:
                            if ev.type == type_:
                                seen.remove(ev)
                                return ev
                        seen.append(await d.next_event(max(0.05, deadline - time.monotonic())))

                # The door closes, then is forced open: the siren sounds.
                d.factory.pin(CONTACT).drive_low()
                await door_event("door_closed")
                d.factory.pin(CONTACT).drive_high()
                await door_event("door_forced")
                await door_event("siren_on")
                assert siren.state
                alarms = await until(
                    lambda: "door_forced" in (a := office_alarms()) and a, what="office alarm"
                )
                forced = alarms["door_forced"]
                # Not acknowledged within 0.02 min: escalated to the webhook and by e-mail.
                await until(lambda: webhook.bodies and mail.messages, what="escalation")
                assert webhook.bodies[0]["alarm"]["id"] == forced["id"]
                assert "door_forced at front" in mail.messages[0]["Subject"]
                # The operator acknowledges: the door's siren stops.
                assert await office("alarms", "ack", str(forced["id"]), "--by", "op-anna") == 0
                off = await door_event("siren_off")
                assert (off.payload["reason"], off.payload["by"]) == ("silenced", "op-anna")
                assert not siren.state

                # Three unmatched fingers: staff are called.
                for _ in range(3):
                    fp.place_finger("stranger")
                    await door_event("access_denied")
                    fp.lift_finger()
                    await asyncio.sleep(0.2)
                ev = await door_event("assist_requested")
                assert ev.payload["failures"] == 3
                assist = (
                    await until(
                        lambda: "assist_requested" in (a := office_alarms()) and a, what="assist"
                    )
                )["assist_requested"]
                assert assist["detail"]["kind"] == "finger"
                assert assist["detail"]["failures"] == 3
                # The operator checks the person's ID and releases naming them.
                assert (
                    await office(
                        "alarms",
                        "release",
                        str(assist["id"]),
                        "--person",
                        "alice",
                        "--by",
                        "op-anna",
                        "--note",
                        "photo ID checked",
                    )
                    == 0
                )
                released = await door_event("staff_release")
                # Nothing else released the lock in this test: the relay followed the release.
                assert [on for _, on in d.lock_history][:1] == [True]
                assert (released.payload["staff"], released.payload["person"]) == (
                    "op-anna",
                    "alice",
                )
                shown = cli_json("alarms", "show", str(assist["id"]))
                assert shown["alarm"]["state"] == "cleared"
                note = next(h for h in shown["history"] if h["action"] == "released")
                assert note["operator"] == "op-anna" and "person alice verified" in note["note"]
                cmd_id = note["note"].split("command ")[1].split(";")[0]
                assert released.payload["source"] == f"command:{cmd_id}"

                # The fingerprint sensor unplugged for a while, then plugged back.
                fp.unplug()
                await door_event("reader_fault")
                await asyncio.sleep(1.0)
                fp.replug()
                await door_event("reader_recovered")
                rep = await until(
                    lambda: (r := cli_json("maintenance", "faults"))["readers"] and r,
                    what="fault history",
                )
                reader = rep["readers"][0]
                assert (reader["door"], reader["reader"], reader["faults"]) == (
                    "front",
                    cfg.fingerprint.name,
                    1,
                )
                assert 1.0 <= reader["downtime"] < 10
                # The door's name and location reached the equipment register.
                reg = await until(
                    lambda: (e := cli_json("equipment", "list")) and e[0]["location"] and e,
                    what="register",
                )
                assert (reg[0]["name"], reg[0]["location"]) == (
                    "Front entrance",
                    "Building A, ground floor",
                )
                assert set(reg[0]["reported_readers"]) >= {"rdm6300"}
                # The doctor while running, on the office's signed command, reported back.
                assert await office("cmd", "front", "doctor", "--by", "op-anna") == 0
                reg = await until(
                    lambda: (e := cli_json("equipment", "list"))[0]["doctor"] and e,
                    what="doctor report",
                )
                doctor = reg[0]["doctor"]
                assert doctor["trigger"].startswith("command:")
                assert doctor["counts"]["ok"] >= 3  # store, broker, the readers at least
                assert doctor["result"] in ("ok", "warn")  # the clock may be unsynchronised
                # Both journals: the door's own store and the office's archive.
                conn = open_db(cfg.storage.path)
                door_rows = journal.recent(conn, 50, "staff_release")
                conn.close()
                assert [(e.payload["staff"], e.payload["person"]) for e in door_rows] == [
                    ("op-anna", "alice")
                ]

                def archive_rows() -> list[dict]:
                    capsys.readouterr()
                    central.run("events", "--type", "staff_release", "--json")
                    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]

                archived = await until(archive_rows, what="archive")
                assert (archived[0]["staff"], archived[0]["person"]) == ("op-anna", "alice")

    server = ServerThread(central)
    try:
        asyncio.run(asyncio.wait_for(scenario(), 90))
    finally:
        server.stop()
        fp.stop()
