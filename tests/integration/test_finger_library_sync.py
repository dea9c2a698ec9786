"""A template from the central side lands in two doors' sensors and opens both; removing or
disabling the person deletes it from each sensor; other families' templates are skipped.

No MQTT yet: the credentials are written into each door's store the way an incoming
credential update would (site-wide value, ``model=`` label, template sealed with that door's
key), then ``Daemon.credentials_changed()`` is called, as the credential listener will.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from contextlib import AsyncExitStack
from pathlib import Path

from edgegate.hardware.fingerprint.protocol import Instruction
from edgegate.sim.fingerprint import FingerprintSimulator, finger_template
from edgegate.sim.rdm6300 import Rdm6300Simulator
from edgegate.store import credentials as creds
from edgegate.store.db import MIGRATIONS, open_db, transaction
from edgegate.store.finger_slots import model_label
from edgegate.store.sealed import is_sealed, load_key, unseal
from tests.conftest import enrol, running_door
from tests.integration.fp_doors import enrol_finger, fp_config, put_person_finger

ALICE, BOB, CAROL = "alice-index", "bob-thumb", "carol-index"


async def apply_update(door, fn, *args) -> None:
    """What the door-side credential sync does: one transaction on the store thread, then
    notify the listeners."""
    db = door.daemon.config.storage.path

    def tx(conn):
        with transaction(conn):
            fn(conn, db, *args)

    await door.daemon.store.call(tx)
    door.daemon.credentials_changed()
    await door.daemon.finger_library.wait_idle(10)


def central_update(conn, db: Path, value: str) -> None:
    put_person_finger(conn, db, "alice", ALICE, value=value)
    put_person_finger(conn, db, "bob", BOB, model="r503", value="bob.r503")  # other family
    put_person_finger(conn, db, "carol", CAROL, value="carol.1")
    creds.set_person_enabled(conn, "carol", False)  # disabled: never written


async def touch(door, sim: FingerprintSimulator, finger: str):
    sim.place_finger(finger)
    try:
        return await door.next_event()
    finally:
        sim.lift_finger()
        await asyncio.sleep(0.15)  # the reader sees the lift before the next touch


def test_template_from_central_lands_in_two_doors_and_leaves_on_removal(tmp_path: Path):
    value = "alice.0123456789abcdef"

    async def scenario() -> None:
        async with AsyncExitStack() as stack:
            doors, sims = [], []
            for name in ("a", "b"):
                cards = stack.enter_context(Rdm6300Simulator())
                sim = stack.enter_context(FingerprintSimulator())
                sim.enroll(0, "left-over")  # on the sensor, unknown to the store
                cfg = fp_config(tmp_path, cards.port, sim.port, door=name)
                door = await stack.enter_async_context(
                    running_door(
                        tmp_path,
                        sim=cards,
                        config=cfg,
                        setup=lambda c: enrol(c.storage.path, "dave", "0F00BC614E"),
                    )
                )
                await door.daemon.finger_library.wait_idle(10)
                assert sim.library == {}  # the start-up pass removed the unknown template
                doors.append(door)
                sims.append(sim)

            for door, sim in zip(doors, sims, strict=True):
                await apply_update(door, central_update, value)
                # DownChar + Store of alice only: bob is an r503 template, carol is disabled.
                assert list(sim.library.values()) == [finger_template(ALICE)]
                assert sim.commands[Instruction.DOWN_CHAR] == 1
                assert sim.commands[Instruction.STORE] == 1
                counters = door.daemon.readers[-1].sync_counters
                assert counters.wrong_model >= 1 and counters.written == 1
                assert door.daemon.status()["readers"][-1]["library_sync"]["written"] == 1

                ev = await touch(door, sim, ALICE)
                assert ev.type == "access_granted" and ev.payload["person"] == "alice"
                assert ev.payload["kind"] == "finger" and "template" not in ev.payload
                ev = await touch(door, sim, BOB)
                assert ev.type == "access_denied" and ev.payload["reason"] == "unknown"

                # At rest in the store: sealed with this door's key, bound to the value.
                db = door.daemon.config.storage.path
                conn = open_db(db, readonly=True)
                data, label = conn.execute(
                    "SELECT data, label FROM credentials WHERE value = ?", (value,)
                ).fetchone()
                conn.close()
                assert is_sealed(data) and label == model_label("r307")
                assert unseal(load_key(db), "finger", value, data) == finger_template(ALICE)

            # Door a: the person is disabled; door b: the person is removed.
            await apply_update(doors[0], lambda c, _db: creds.set_person_enabled(c, "alice", 0))
            await apply_update(doors[1], lambda c, _db: creds.remove_person(c, "alice"))
            for door, sim in zip(doors, sims, strict=True):
                assert sim.library == {}
                assert sim.commands[Instruction.DELETE_CHAR] >= 2  # left-over, then alice
                ev = await touch(door, sim, ALICE)
                assert ev.type == "access_denied" and ev.payload["reason"] == "unknown"
                # Cards decide as before on the same daemon.
                door.sim.tap("0F00BC614E")
                ev = await door.next_event()
                assert ev.type == "access_granted" and ev.payload["person"] == "dave"

            # Re-enabled on door a: written again.
            await apply_update(doors[0], lambda c, _db: creds.set_person_enabled(c, "alice", 1))
            assert list(sims[0].library.values()) == [finger_template(ALICE)]

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_clear_templates_of_an_old_store_are_sealed_at_start(tmp_path: Path):
    """A store from before sealing and site-wide values: slot-valued credential, template in
    clear. After one daemon start, a copy of the db file alone reveals no template byte
    string, and the finger still opens through the migrated slot mapping."""
    db = tmp_path / "d" / "door.db"
    db.parent.mkdir()
    template = finger_template(ALICE)
    # The version-2 schema, as an older edgegate left it.
    old = sqlite3.connect(db, isolation_level=None)
    old.executescript("".join(MIGRATIONS[:2]) + "; PRAGMA user_version = 2;")
    old.execute("INSERT INTO people(id, updated_at) VALUES ('alice', 0)")
    old.execute(
        "INSERT INTO credentials(kind, value, person_id, label, data, updated_at) "
        "VALUES ('finger', '3', 'alice', 'model=r307', ?, 0)",
        (template,),
    )
    old.close()
    assert template in db.read_bytes() + _wal(db)

    async def scenario() -> None:
        with Rdm6300Simulator() as cards, FingerprintSimulator() as sim:
            sim.enroll(3, ALICE)
            cfg = fp_config(tmp_path, cards.port, sim.port)
            async with running_door(tmp_path, sim=cards, config=cfg) as door:
                await door.daemon.finger_library.wait_idle(10)
                # Copied while the daemon runs (its WAL not yet merged at a close).
                shutil.copy(db, copy)
                assert sim.library == {3: template}  # kept: mapped by the migration
                ev = await touch(door, sim, ALICE)
                assert ev.type == "access_granted" and ev.payload["person"] == "alice"

    copy = tmp_path / "copied.db"
    asyncio.run(asyncio.wait_for(scenario(), 30))
    assert template not in copy.read_bytes()
    assert template not in db.read_bytes() + _wal(db)
    conn = open_db(copy, readonly=True)
    (data,) = conn.execute("SELECT data FROM credentials WHERE value = '3'").fetchone()
    conn.close()
    conn = open_db(db, readonly=True)
    (digest,) = conn.execute("SELECT digest FROM finger_slots WHERE value = '3'").fetchone()
    conn.close()
    assert digest  # adopted: a later change of this template will be noticed
    assert unseal(load_key(db), "finger", "3", data) == template


def _wal(db: Path) -> bytes:
    wal = db.with_name(db.name + "-wal")
    return wal.read_bytes() if wal.exists() else b""


def test_missing_store_key_is_reported_and_the_door_keeps_deciding(tmp_path: Path):
    async def scenario() -> None:
        with Rdm6300Simulator() as cards, FingerprintSimulator() as sim:
            cfg = fp_config(tmp_path, cards.port, sim.port)
            cfg = cfg.model_copy(
                update={"storage": cfg.storage.model_copy(update={"key_file": tmp_path / "no.key"})}
            )
            setup = lambda c: enrol(c.storage.path, "dave", "0F00BC614E")  # noqa: E731
            async with running_door(tmp_path, sim=cards, config=cfg, setup=setup) as door:
                service = door.daemon.finger_library
                deadline = asyncio.get_running_loop().time() + 5
                while service.key_errors == 0:
                    assert asyncio.get_running_loop().time() < deadline
                    await asyncio.sleep(0.02)
                cards.tap("0F00BC614E")
                ev = await door.next_event()
                assert ev.type == "access_granted"
                assert all(not t.done() for t in door.daemon._tasks)  # nothing crashed

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_sensor_swapped_for_an_empty_one_is_refilled_after_it_reopens(tmp_path: Path):
    async def scenario() -> None:
        with Rdm6300Simulator() as cards, FingerprintSimulator() as sim:
            cfg = fp_config(tmp_path, cards.port, sim.port)
            setup = lambda c: enrol_finger(c.storage.path, "erin", "erin-thumb")  # noqa: E731
            async with running_door(tmp_path, sim=cards, config=cfg, setup=setup) as door:
                reader = door.daemon.readers[-1]
                await door.daemon.finger_library.wait_idle(10)
                assert list(sim.library.values()) == [finger_template("erin-thumb")]
                sim.unplug()  # the module is swapped: a fault, then a new, empty module
                ev = await door.next_event()
                assert ev.type == "reader_fault"
                sim.library.clear()
                sim.replug()
                ev = await door.next_event(10)
                assert ev.type == "reader_recovered"
                deadline = asyncio.get_running_loop().time() + 10
                # Refilled with no credential change at all. The counter is bumped after the
                # sensor's Store answers, so wait on the counter, then look at the sensor.
                while reader.sync_counters.written < 2:
                    assert asyncio.get_running_loop().time() < deadline
                    await asyncio.sleep(0.05)
                assert reader.sync_counters.written == 2
                assert list(sim.library.values()) == [finger_template("erin-thumb")]
                ev = await touch(door, sim, "erin-thumb")
                assert ev.type == "access_granted" and ev.payload["person"] == "erin"

    asyncio.run(asyncio.wait_for(scenario(), 40))
