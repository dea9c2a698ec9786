"""A command seen before a restart is still refused as a replay after it (ids are reloaded
from the journal's command_ack events until the command expires)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from edgegate.sim.rdm6300 import Rdm6300Simulator
from tests.conftest import running_door
from tests.sync.central import SIGNER, command, mqtt_config
from tests.sync.test_inbound_props import _NoBroker


def test_replay_after_restart_is_refused(tmp_path: Path):
    sim = Rdm6300Simulator()
    cfg = mqtt_config(tmp_path, sim.port, _NoBroker())
    payload = SIGNER.sign(command("unlock"))

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
        first = asyncio.run(once())
        assert first == ({}, ["ok"])
        second = asyncio.run(once())
        assert second == ({"replayed": 1}, [])
    finally:
        sim.close()
