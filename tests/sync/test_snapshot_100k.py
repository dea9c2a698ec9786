"""A 100,000-person snapshot lands in one step: the old set decides until the last chunk is
in, then the new one, never a mixture; and cards keep being decided while it is staged."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from edgegate.hardware.base import CredentialKind, CredentialRead
from edgegate.sim.broker import Broker
from edgegate.store.credentials import count_credentials, lookup
from tests.sync.central import SIGNER, snapshot_chunks
from tests.sync.test_door_inbound import scenario_door
from tests.sync.test_door_sync import ALICE, until

pytestmark = [pytest.mark.broker, pytest.mark.slow]
N = 100_000


def card(i: int) -> str:
    return f"{0x10_0000_0000 + i:010X}"


def test_100k_snapshot_is_atomic_and_decisions_go_on(tmp_path: Path, broker: Broker):
    people = [
        {"id": f"p{i}", "name": f"Person {i}", "attrs": {"groups": ["staff"]}} for i in range(N)
    ]
    cards = [{"kind": "card", "value": card(i), "person": f"p{i}"} for i in range(N)]
    # Signed beforehand: the central office's CPU is not the door's.
    signed = [SIGNER.sign(c) for c in snapshot_chunks(people, cards, version=7, per_chunk=5000)]
    first, last = card(0), card(N - 1)
    vectors: list[tuple[bool, bool, bool]] = []
    latencies: list[float] = []

    def probe(conn) -> tuple[bool, bool, bool]:
        # One store call: nothing else runs on the store thread between the three lookups.
        return tuple(lookup(conn, "card", v) is not None for v in (ALICE, first, last))

    async def body(d, central, sim):
        sync = d.daemon.sync
        sender = asyncio.create_task(
            asyncio.to_thread(lambda: [central.send(central.topics.snapshot, c) for c in signed])
        )
        t0 = time.monotonic()
        while sync.version != 7:
            vectors.append(await d.daemon.store.call(probe))
            start = time.perf_counter()
            await d.daemon.door.handle_read(CredentialRead(CredentialKind.CARD, ALICE, "probe"))
            latencies.append((time.perf_counter() - start) * 1000)
            await asyncio.sleep(0.05)
            assert time.monotonic() - t0 < 120
        applied = time.monotonic() - t0
        await sender
        vectors.append(await d.daemon.store.call(probe))
        assert await d.daemon.store.call(count_credentials) == N
        await until(
            lambda: d.daemon.sync._cleaning is not None and d.daemon.sync._cleaning.done(), 30
        )
        tables = await d.daemon.store.call(
            lambda c: {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        )
        assert not {"people_old", "credentials_old", "people_stage", "credentials_stage"} & tables
        latencies.sort()
        print(
            f"snapshot of {N}: applied in {applied:.1f} s, {len(latencies)} decisions meanwhile, "
            f"p50 {latencies[len(latencies) // 2]:.1f} ms, max {latencies[-1]:.1f} ms"
        )

    scenario_door(tmp_path, broker, body)
    old, new = (True, False, False), (False, True, True)
    assert set(vectors) <= {old, new}, set(vectors) - {old, new}
    switch = vectors.index(new)
    assert all(v == old for v in vectors[:switch]) and all(v == new for v in vectors[switch:])
    assert switch > 5  # the old set really served while chunks were staged
