"""Fingerprint at the door: simulated R307 on a pty -> daemon -> relay, retries, staff."""

from __future__ import annotations

import asyncio
import subprocess
import threading
from pathlib import Path

from edgegate.hardware.fingerprint.template_file import read_template_file
from edgegate.sim.fingerprint import CaptureOutcome, FingerprintSimulator, finger_template
from edgegate.store import credentials as creds
from edgegate.store.db import open_db
from edgegate.store.sealed import load_key, unseal
from tests.conftest import EDGEGATE, REPO, running_door
from tests.integration.fp_doors import enrol_finger, fp_config


def test_finger_opens_unknown_denied_poor_captures_then_staff(tmp_path: Path):
    sim = FingerprintSimulator().start()
    sim.enroll(5, "mallory")  # on the sensor but unknown to the store: sync deletes it

    async def scenario():
        from edgegate.sim.rdm6300 import Rdm6300Simulator

        with Rdm6300Simulator() as cards:
            cfg = fp_config(tmp_path, cards.port, sim.port)
            async with running_door(
                tmp_path,
                sim=cards,
                config=cfg,
                setup=lambda c: enrol_finger(c.storage.path, "alice", "alice-index"),
            ) as d:
                await d.daemon.finger_library.wait_idle(5)
                assert list(sim.library.values()) == [finger_template("alice-index")]
                sim.place_finger("alice-index")
                ev = await d.next_event()
                assert ev.type == "access_granted"
                assert ev.payload["kind"] == "finger" and ev.payload["person"] == "alice"
                assert ev.payload["score"] >= 50 and "template" not in ev.payload
                assert d.lock_high
                sim.lift_finger()
                await asyncio.sleep(0.4)
                assert not d.lock_high

                sim.place_finger("mallory")
                ev = await d.next_event()
                assert ev.type == "access_denied" and ev.payload["reason"] == "unknown"
                assert not d.lock_high
                sim.lift_finger()
                await asyncio.sleep(0.15)

                # Two poor captures: retry signal only, then the third failure calls staff.
                sim.script_captures(CaptureOutcome.MESSY)
                sim.place_finger("alice-index")
                await asyncio.sleep(0.3)
                sim.lift_finger()
                await asyncio.sleep(0.15)
                sim.script_captures(CaptureOutcome.FEW_FEATURES)
                sim.place_finger("alice-index")
                ev = await d.next_event()
                assert ev.type == "assist_requested"
                assert ev.payload["failures"] == 3 and ev.payload["kind"] == "finger"
                assert d.daemon.door.counters["assist_requested"] == 1
                assert not any(on for _, on in d.lock_history[2:])

    try:
        asyncio.run(asyncio.wait_for(scenario(), 30))
    finally:
        sim.stop()


def test_enroll_finger_cli(tmp_path: Path, subprocess_env):
    sim = FingerprintSimulator().start()
    cfg_path = tmp_path / "e.toml"
    cfg_path.write_text(
        f'[door]\nsite="t"\nid="d"\n[gpio]\npin_factory="mock"\n'
        f'[fingerprint]\nport="{sim.port}"\n[storage]\npath="{tmp_path / "door.db"}"\n'
    )
    proc = subprocess.Popen(
        [
            *EDGEGATE,
            "enroll",
            "finger",
            "--config",
            str(cfg_path),
            "--person",
            "bob",
            "--timeout",
            "20",
            "--export",
            str(tmp_path / "bob.finger.json"),
        ],
        cwd=REPO,
        env=subprocess_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []

    def drive() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Place"):
                sim.place_finger("bob-thumb")
            elif line.startswith("Lift"):
                sim.lift_finger()

    t = threading.Thread(target=drive)
    t.start()
    try:
        assert proc.wait(30) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        t.join(5)
        sim.stop()
    assert any("enrolled finger of bob" in line for line in lines), lines
    conn = open_db(tmp_path / "door.db", readonly=True)
    value, person, label, data = conn.execute(
        "SELECT value, person_id, label, data FROM credentials WHERE kind='finger'"
    ).fetchone()
    assert person == "bob" and label == "model=r307" and value.startswith("bob.")
    (slot,) = conn.execute("SELECT slot FROM finger_slots WHERE value = ?", (value,)).fetchone()
    # Sealed at rest: the clear template is not in the row, the store key opens it.
    template = sim.library[slot]
    assert template not in data
    assert unseal(load_key(tmp_path / "door.db"), "finger", value, data) == template
    assert creds.lookup(conn, "finger", str(slot)).person_id == "bob"
    # The template file for the central office: same value, model and template, owner-only.
    exported = read_template_file(tmp_path / "bob.finger.json")
    assert (exported.person, exported.value, exported.model) == ("bob", value, "r307")
    assert exported.template_bytes() == template and (exported.site, exported.door) == ("t", "d")
    assert (tmp_path / "bob.finger.json").stat().st_mode & 0o077 == 0
