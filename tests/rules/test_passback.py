"""Anti-passback of each kind, with the person's in/out state surviving a daemon restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgegate.sim.rdm6300 import Rdm6300Simulator
from edgegate.store.db import open_db
from edgegate.store.rules_state import get_presence

from .conftest import ALICE, FakeClock, enrol, make_config, run, running_door


def _config(tmp_path: Path, entry: Rdm6300Simulator, exit_: Rdm6300Simulator, mode: str):
    return make_config(
        tmp_path,
        [("entry", entry.port, "in"), ("exit", exit_.port, "out")],
        door={"area": "hall"},
        rules={"passback": mode, "passback_minutes": 10},
    )


async def _decide(d, sim: Rdm6300Simulator, uid: str):
    sim.tap(uid)
    while True:
        ev = await d.next_event()
        if ev.type in ("access_granted", "access_denied"):
            return ev


@pytest.mark.parametrize("mode", ["hard", "soft", "timed"])
def test_passback_across_restart(tmp_path: Path, mode: str):
    async def scenario():
        clock = FakeClock()
        with Rdm6300Simulator() as entry, Rdm6300Simulator() as exit_:
            cfg = _config(tmp_path, entry, exit_, mode)
            enrol(cfg.storage.path, "alice", ALICE)
            sims = {"entry": entry, "exit": exit_}
            async with running_door(cfg, sims, clock) as d:
                ev = await _decide(d, entry, ALICE)
                assert ev.type == "access_granted" and "flags" not in ev.payload
            # The daemon restarts: presence is in the store, not in memory.
            conn = open_db(cfg.storage.path, check=False)
            presence = get_presence(conn, "alice", "hall")
            conn.close()
            assert presence is not None and presence.state == "in"
            clock.advance(60)
            async with running_door(cfg, sims, clock) as d:
                ev = await _decide(d, entry, ALICE)
                if mode == "soft":
                    assert ev.type == "access_granted" and ev.payload["flags"] == ["passback"]
                else:
                    assert ev.type == "access_denied" and ev.payload["reason"] == "passback"
                if mode == "timed":
                    d.clock.advance(10 * 60 - 60)  # presence expires 10 min after entry
                    ev = await _decide(d, entry, ALICE)
                    assert ev.type == "access_granted"
                    ev = await _decide(d, exit_, ALICE)
                    assert ev.type == "access_granted"
                    ev = await _decide(d, exit_, ALICE)
                    assert ev.payload["reason"] == "passback"
                    return
                # Going out clears the way back in.
                ev = await _decide(d, exit_, ALICE)
                assert ev.type == "access_granted" and ev.payload["direction"] == "out"
                ev = await _decide(d, exit_, ALICE)
                if mode == "hard":
                    assert ev.payload.get("reason") == "passback"
                else:
                    assert ev.payload.get("flags") == ["passback"]
                ev = await _decide(d, entry, ALICE)
                assert ev.type == "access_granted" and "flags" not in ev.payload

    run(scenario())


def test_passback_off_never_denies(tmp_path: Path):
    async def scenario():
        with Rdm6300Simulator() as entry, Rdm6300Simulator() as exit_:
            cfg = _config(tmp_path, entry, exit_, "off")
            enrol(cfg.storage.path, "alice", ALICE)
            async with running_door(cfg, {"entry": entry, "exit": exit_}) as d:
                for _ in range(3):
                    ev = await _decide(d, entry, ALICE)
                    assert ev.type == "access_granted" and "flags" not in ev.payload

    run(scenario())
