"""Property tests: whatever arrives on the door's inbound topics, the door refuses it with a
counted reason or applies it, and keeps granting a valid card throughout."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgegate.contract import signing
from edgegate.daemon.app import Daemon
from edgegate.hardware.base import CredentialKind, CredentialRead
from edgegate.sim.broker import free_port
from edgegate.sim.rdm6300 import Rdm6300Simulator
from edgegate.store import credentials as creds
from edgegate.store.credentials import lookup
from edgegate.store.db import transaction
from tests.conftest import enrol, running_door
from tests.sync.central import SIGNER, command, mqtt_config, snapshot_chunks, update

ALICE = "0F00BC614E"


def _enrol_alice(conn) -> None:
    with transaction(conn):
        creds.upsert_person(conn, creds.Person("alice"))
        creds.add_credential(conn, "card", ALICE, "alice")


class _NoBroker:
    host, port = "127.0.0.1", free_port()  # nothing listens: the link just keeps retrying


class DoorThread:
    """The real daemon on an event loop in a thread, so hypothesis can drive it."""

    def __init__(self, tmp_path: Path) -> None:
        self.sim = Rdm6300Simulator()
        self.cfg = mqtt_config(tmp_path, self.sim.port, _NoBroker())
        enrol(self.cfg.storage.path, "alice", ALICE)
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.stop = asyncio.Event()
        self.daemon: Daemon | None = None
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),))
        self.thread.start()
        assert self.ready.wait(15)

    async def _main(self) -> None:
        async with running_door(Path(self.cfg.storage.path).parent, self.sim, self.cfg) as d:
            self.daemon = d.daemon
            await asyncio.wait_for(d.daemon.sync.ready.wait(), 10)
            self.ready.set()
            await self.stop.wait()

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(30)
        self.sim.close()


@pytest.fixture(scope="module")
def door(tmp_path_factory) -> Iterator[DoorThread]:
    d = DoorThread(tmp_path_factory.mktemp("props"))
    yield d
    d.close()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
safe_ids = st.from_regex(r"x[a-z0-9]{0,6}", fullmatch=True)


def _templates() -> list[dict]:
    ops = [{"op": "set_person_enabled", "id": "xnobody", "enabled": False}]
    return [
        command("sync"),
        update(5, 4, ops),
        snapshot_chunks([{"id": "xp"}], [], version=1, per_chunk=1)[0],
    ]


@st.composite
def near_valid(draw) -> bytes:
    """A valid message with one field replaced by anything, correctly signed."""
    msg = dict(draw(st.sampled_from(_templates())))
    key = draw(st.sampled_from(sorted(msg)))
    msg[key] = draw(json_values | safe_ids)
    return SIGNER.sign(msg)


payloads = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"body": json_values, "sig": json_values, "key": json_values}).map(
        lambda d: json.dumps(d).encode()
    ),
    st.dictionaries(st.text(max_size=8), json_values, max_size=5).map(SIGNER.sign),
    near_valid(),
    st.just(signing.Signer(signing.generate()).sign(command("unlock"))),
)


@pytest.mark.slow
@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(topic=st.sampled_from(["cmd", "all_cmd", "credentials", "snapshot"]), payload=payloads)
def test_any_inbound_payload_is_refused_or_applied_and_the_card_still_opens(door, topic, payload):
    sync = door.daemon.sync
    snapshots = sync.counters["snapshots"]
    before = sum(sync.rejected.values()) + sum(
        sync.counters[k] for k in ("commands", "updates", "gaps", "snapshot_chunks")
    )
    door.run(sync.handle(getattr(sync.topics, topic), payload))
    after = sum(sync.rejected.values()) + sum(
        sync.counters[k] for k in ("commands", "updates", "gaps", "snapshot_chunks")
    )
    # Exactly one outcome per message, counted; no store failure.
    assert after == before + 1 and sync.counters["apply_errors"] == 0
    if door.run(door.daemon.store.call(lookup, "card", ALICE)) is None:
        # Only a complete, validly signed snapshot without her may remove her card; put it
        # back so that the next examples check the grant again.
        assert sync.counters["snapshots"] == snapshots + 1
        door.run(door.daemon.store.call(_enrol_alice))
    read = CredentialRead(CredentialKind.CARD, ALICE, "probe")
    decision = door.run(door.daemon.door.handle_read(read))
    assert decision is not None and decision.granted, decision
