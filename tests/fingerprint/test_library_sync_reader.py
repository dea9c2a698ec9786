"""Library sync through a running reader: never mixed into a poll, survives a sensor fault."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from fp_helpers import RecordingSink, wait_until
from test_fp_reader import make_reader, polls, running

from edgegate.hardware.fingerprint.protocol import Instruction
from edgegate.sim.fingerprint import FingerprintSimulator, finger_template
from edgegate.store import credentials as creds
from edgegate.store.db import transaction
from edgegate.store.finger_slots import put_finger, slot_map
from edgegate.store.store import AsyncStore

KEY = bytes(range(32))


async def open_store(path: Path, people: int) -> AsyncStore:
    store = AsyncStore(path, synchronous="NORMAL")
    await store.open()

    def fill(conn) -> None:
        with transaction(conn):
            for i in range(people):
                creds.upsert_person(conn, creds.Person(f"p{i}"))
                put_finger(conn, KEY, f"p{i}", f"p{i}.v", "r307", finger_template(f"p{i}"))

    await store.call(fill)
    return store


def test_sync_while_a_finger_is_read_continuously(
    tmp_path: Path, sim: FingerprintSimulator, sink: RecordingSink
):
    """Sync's DownChar + Store and the poll's Img2Tz + Search share char buffer 1: were they
    interleaved, a live finger could be stored in a slot or a template reported as a touch."""
    stop = threading.Event()

    def finger_on_off() -> None:
        while not stop.is_set():
            sim.place_finger("zed")  # never enrolled: every touch is unrecognised
            time.sleep(0.03)
            sim.lift_finger()
            time.sleep(0.02)

    async def main() -> None:
        store = await open_store(tmp_path / "s.db", 12)
        reader = make_reader(sim, sink)
        toucher = threading.Thread(target=finger_on_off)
        try:
            async with running(reader):
                toucher.start()
                await wait_until(lambda: len(sink.of("unrecognised")) >= 2)
                plan = await reader.sync_library(store, KEY, "r307")
                touches_during = len(sink.of("unrecognised"))
                assert len(plan.write) == 12
                await wait_until(lambda: len(sink.of("unrecognised")) > touches_during + 2)
            mapped = await store.call(slot_map)
        finally:
            stop.set()
            if toucher.is_alive():
                toucher.join()
            await store.close()
        assert {sim.library[e.slot] for e in mapped.values()} == {
            finger_template(f"p{i}") for i in range(12)
        }
        assert finger_template("zed") not in sim.library.values()

    asyncio.run(asyncio.wait_for(main(), 30))
    assert sink.reads == []  # no downloaded template was ever reported as a touch
    assert sim.commands[Instruction.DOWN_CHAR] == 12 and reader_counts_ok(sim)


def reader_counts_ok(sim: FingerprintSimulator) -> bool:
    # Each Store followed its own DownChar: as many Stores as downloads, no extra.
    return sim.commands[Instruction.STORE] == sim.commands[Instruction.DOWN_CHAR]


def test_unplugged_sensor_fails_the_pass_then_next_pass_completes(
    tmp_path: Path, sim: FingerprintSimulator, sink: RecordingSink
):
    async def main() -> None:
        store = await open_store(tmp_path / "s.db", 3)
        reader = make_reader(sim, sink)
        try:
            async with running(reader):
                sim.unplug()
                try:
                    await reader.sync_library(store, KEY, "r307")
                except OSError:
                    pass
                else:
                    raise AssertionError("a pass on an unplugged sensor must fail")
                sim.replug()
                await polls(sim, 2)
                await reader.sync_library(store, KEY, "r307")
                assert len(await store.call(slot_map)) == 3
        finally:
            await store.close()

    asyncio.run(asyncio.wait_for(main(), 30))
    assert sorted(sim.library.values()) == sorted(finger_template(f"p{i}") for i in range(3))


def test_module_from_another_door_is_caught_and_rewritten(
    tmp_path: Path, sim: FingerprintSimulator, sink: RecordingSink
):
    """The sensor module comes from another door: the slot this door maps to p1 holds
    mallory's template. The next pass (at start, after a reopen) reads each mapped slot back,
    rewrites the one that differs and journals it; mallory's finger no longer opens as p1."""

    async def main() -> int:
        store = await open_store(tmp_path / "s.db", 3)
        reader = make_reader(sim, sink)
        try:
            async with running(reader):
                await reader.sync_library(store, KEY, "r307")
                slot = (await store.call(slot_map))["p1.v"].slot
                sim.enroll(slot, "mallory")  # the swapped module's content
                plan = await reader.sync_library(store, KEY, "r307")
                assert plan.write == [] and plan.delete == []  # occupancy alone looks fine
                assert reader.sync_counters.verified == 3
                assert reader.sync_counters.mismatched == 1
                return slot
        finally:
            await store.close()

    slot = asyncio.run(asyncio.wait_for(main(), 30))
    assert sim.library[slot] == finger_template("p1")
    assert finger_template("mallory") not in sim.library.values()
    assert sink.of("finger_template_mismatch") == [
        {"slot": slot, "value": "p1.v", "action": "rewritten"}
    ]
