"""A command seen before a restart is still refused as a replay after it, whatever the
journal's pruning (ids live in the store's seen_commands table until the command expires),
and a command valid for longer than command_max_age_seconds is refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from edgegate.sim.rdm6300 import Rdm6300Simulator
from edgegate.store import journal, open_db
from tests.conftest import running_door
from tests.sync.central import SIGNER, command, mqtt_config, now_iso
from tests.sync.test_inbound_props import _NoBroker


def _prune_everything(store: Path) -> int:
    """What the prune loop does with keep_sent_events = 0 once the events were sent."""
    conn = open_db(store)
    try:
        conn.execute("UPDATE events SET sent = 1")
        return journal.prune(conn, keep_sent=0)
    finally:
        conn.close()


@pytest.mark.parametrize("prune", [False, True], ids=["journal-kept", "journal-pruned"])
def test_replay_after_restarts_is_refused(tmp_path: Path, prune: bool):
    sim = Rdm6300Simulator()
    cfg = mqtt_config(tmp_path, sim.port, _NoBroker(), keep_sent_events=0)
    payload = SIGNER.sign(command("unlock", ttl=3000))

    async def once() -> tuple[dict, list[str]]:
        async with running_door(tmp_path, sim=sim, config=cfg) as d:
            sync = d.daemon.sync
            await asyncio.wait_for(sync.ready.wait(), 10)
            await sync.handle(sync.topics.cmd, payload)
            acks = []
            while not d.events.empty():
                ev = d.events.get_nowait()
                if ev.type == "command_ack":
                    acks.append(ev.payload["result"])
            return dict(sync.rejected), acks

    try:
        assert asyncio.run(once()) == ({}, ["ok"])
        if prune:  # the ack (and the staff release) gone from the journal
            assert _prune_everything(cfg.storage.path) >= 2
        for _ in range(2):
            assert asyncio.run(once()) == ({"replayed": 1}, [])
    finally:
        sim.close()


def test_command_issued_in_the_future_cannot_stretch_the_window(tmp_path: Path):
    """expires - issued within the maximum, but expires far beyond now: refused."""
    sim = Rdm6300Simulator()
    cfg = mqtt_config(tmp_path, sim.port, _NoBroker(), command_max_age_seconds=600)
    late = command("unlock", issued=now_iso(86_400), expires=now_iso(86_400 + 60))
    ok = command("unlock", ttl=500)

    async def go() -> dict:
        async with running_door(tmp_path, sim=sim, config=cfg) as d:
            sync = d.daemon.sync
            await asyncio.wait_for(sync.ready.wait(), 10)
            await sync.handle(sync.topics.cmd, SIGNER.sign(late))
            await sync.handle(sync.topics.cmd, SIGNER.sign(ok))
            return dict(sync.rejected)

    try:
        assert asyncio.run(go()) == {"expired": 1}
    finally:
        sim.close()
