"""The door end to end: RDM6300 frames on a real pty, pyserial, gpiozero mock pins, SQLite."""

from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path

from edgegate.sim.rdm6300 import Rdm6300Simulator
from edgegate.store.db import open_db
from tests.conftest import GREEN, RED, enrol, running_door

ALICE, BOB, CAROL, DAVE = "0F00BC614E", "1A2B3C4D5E", "0E0E0E0E0E", "4400DEAD01"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def setup_people(config) -> None:
    now = time.time()
    db = config.storage.path
    enrol(db, "alice", ALICE)
    enrol(db, "bob", BOB, enabled=False)
    enrol(db, "carol", CAROL, valid_until=now - 60)
    enrol(db, "dave", DAVE, valid_from=now + 3600)


def test_known_card_opens_for_unlock_seconds_then_relocks(tmp_path: Path):
    async def scenario():
        async with running_door(tmp_path, setup=setup_people) as d:
            assert not d.lock_high
            d.sim.tap(ALICE)
            ev = await d.next_event()
            assert ev.type == "access_granted"
            assert ev.payload["person"] == "alice" and ev.payload["credential"] == ALICE
            assert ev.payload["kind"] == "card" and ev.payload["direction"] == "in"
            assert d.lock_high
            assert d.factory.pin(GREEN).state
            await asyncio.sleep(0.45)
            assert not d.lock_high
            opened, closed = d.lock_history[0], d.lock_history[1]
            assert opened[1] is True and closed[1] is False
            # Held for unlock_seconds (0.3 s), give or take the loop's timer slack.
            assert 0.28 <= closed[0] - opened[0] <= 0.4

    run(scenario())


def test_denials_with_reasons_never_open(tmp_path: Path):
    async def scenario():
        async with running_door(tmp_path, setup=setup_people) as d:
            expected = [
                ("7700112233", "unknown"),
                (BOB, "revoked"),
                (CAROL, "expired"),
                (DAVE, "not_yet_valid"),
            ]
            for uid, reason in expected:
                d.sim.tap(uid)
                ev = await d.next_event()
                assert ev.type == "access_denied"
                assert ev.payload["reason"] == reason, uid
                assert not d.lock_high
                assert d.factory.pin(RED).state
            assert all(on is False for _, on in d.lock_history)
            assert d.daemon.door.counters["denied"] == 4

    run(scenario())


def test_noise_and_bad_checksums_never_open_and_never_crash(tmp_path: Path):
    async def scenario():
        async with running_door(tmp_path, setup=setup_people) as d:
            rng = random.Random(1234)
            for _ in range(50):
                d.sim.write(rng.randbytes(rng.randint(1, 64)))
                d.sim.tap_bad_checksum(ALICE)
            await asyncio.sleep(0.3)
            assert not d.lock_high
            assert d.lock_history == []
            c = d.daemon.readers[0].counters
            assert c.bad_checksum >= 40 and c.noise_bytes > 0
            assert d.daemon.readers[0].healthy
            # ...and the reader still decides afterwards.
            d.sim.write(b"\x03\x03")  # close any frame the noise left open
            await asyncio.sleep(0.05)
            d.sim.tap(ALICE)
            ev = await d.next_event()
            assert ev.type == "access_granted"

    run(scenario())


def test_held_card_counts_once(tmp_path: Path):
    async def scenario():
        async with running_door(tmp_path, setup=setup_people) as d:
            frames = await d.sim.hold(ALICE, 0.6)
            await asyncio.sleep(0.1)
            assert frames >= 5
            assert (await d.next_event()).type == "access_granted"
            assert d.events.empty()
            assert d.daemon.readers[0].counters.repeats_suppressed == frames - 1

    run(scenario())


def test_journal_holds_every_decision_in_order(tmp_path: Path):
    async def scenario():
        async with running_door(tmp_path, setup=setup_people) as d:
            uids = [ALICE, "7700112233", BOB, ALICE, CAROL]
            for uid in uids:
                d.sim.tap(uid)
                await d.next_event()
                await asyncio.sleep(0.35)  # past the hold-off, so the same card counts again
            return d.daemon.config.storage.path

    db = run(scenario())
    conn = open_db(db, readonly=True)
    rows = conn.execute("SELECT seq, type, payload FROM events ORDER BY seq").fetchall()
    decisions = [r for r in rows if r[1].startswith("access_")]
    assert [r[1] for r in decisions] == [
        "access_granted",
        "access_denied",
        "access_denied",
        "access_granted",
        "access_denied",
    ]
    seqs = [r[0] for r in rows]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_reader_fault_and_recovery(tmp_path: Path):
    """The serial device vanishes (adaptor unplugged) and comes back on the same path."""
    link = tmp_path / "ttyRFID"
    first = Rdm6300Simulator()
    os.symlink(first.port, link)

    async def scenario():
        from tests.conftest import make_config

        config = make_config(tmp_path, str(link))
        async with running_door(tmp_path, sim=first, config=config, setup=setup_people) as d:
            reader = d.daemon.readers[0]
            reader._backoff_initial = 0.05
            first.close()  # hang-up: the reader's next read fails
            ev = await d.next_event()
            assert ev.type == "reader_fault" and ev.payload["reader"] == "entry"
            assert not reader.healthy
            second = Rdm6300Simulator()
            os.unlink(link)
            os.symlink(second.port, link)
            ev = await d.next_event(5)
            assert ev.type == "reader_recovered"
            assert reader.healthy
            second.tap(ALICE)
            assert (await d.next_event()).type == "access_granted"
            second.close()

    run(scenario())


def test_stop_leaves_lock_in_safe_state(tmp_path: Path):
    async def scenario():
        async with running_door(tmp_path, setup=setup_people) as d:
            d.sim.tap(ALICE)
            await d.next_event()
            assert d.lock_high
            daemon = d.daemon
        assert daemon.outputs.final_state == {
            "unlocked": False,
            "green_led": False,
            "red_led": False,
            "buzzer": False,
        }

    run(scenario())
