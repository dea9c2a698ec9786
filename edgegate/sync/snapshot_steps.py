"""A snapshot chunk through the store thread in short steps: stage, and after the last chunk
drop orphan credentials and swap the new set in.

Every step is one short call on the store thread, so card decisions interleave with a
100,000-person snapshot (docs/benchmarks.md); the service (edgegate/sync/service.py) keeps
the counters, the log lines and what a new version means for the door.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from edgegate.contract.messages import SnapshotChunk
from edgegate.contract.signing import RejectedMessage
from edgegate.store import credential_sync as cs
from edgegate.store import journal
from edgegate.store.db import truncate_wal
from edgegate.store.journal import JournalTx
from edgegate.store.store import AsyncStore
from edgegate.sync import credentials_apply as ca


@dataclass(frozen=True)
class Swapped:
    """A snapshot that is now the door's set."""

    version: int
    event: journal.Event  # the credentials_snapshot event, written in the swap's transaction
    orphans: int  # credentials of people the snapshot does not have, dropped before the swap
    swap_ms: float


class LocalPeopleHeld(RejectedMessage):
    """The snapshot would replace people enrolled at the door, and the office did not say so
    (``replace_local``): refused, the local set keeps deciding."""

    def __init__(self, version: int, local: int, event: Any) -> None:
        super().__init__(
            "local_people",
            f"snapshot {version} would replace {local} people enrolled at this door; "
            "the office must import or discard them first",
        )
        self.version = version
        self.local = local
        self.event = event  # the journal's refusal (None when this version was refused before)


async def stage(store: AsyncStore, msg: SnapshotChunk, rows: tuple[list[Any], list[Any]]) -> None:
    """Stage one chunk's rows, ``cs.STAGE_BATCH`` rows per store call."""
    people, creds = rows
    step = cs.STAGE_BATCH
    slices = max(1, -(-max(len(people), len(creds)) // step))
    for i in range(slices):
        await store.call(
            ca.stage_chunk_rows,
            msg,
            people[i * step : (i + 1) * step],
            creds[i * step : (i + 1) * step],
            last=i == slices - 1,
        )


async def finish(
    store: AsyncStore,
    snapshot: str,
    *,
    journal_tx: JournalTx,
    now: float,
    replace_local: bool = False,
) -> Swapped | None:
    """Swap ``snapshot`` in if all its chunks are staged (None while some are missing).

    RejectedMessage("replayed") when a delta overtook it while it was being staged;
    LocalPeopleHeld when it would replace the door's own people without the office's say.
    """
    complete = await store.call(cs.snapshot_complete, snapshot)
    if complete is None:
        return None
    local = await store.call(cs.local_people_guard, replace_local)
    if local:
        event = await store.call(
            cs.refuse_snapshot, complete[1], local, journal_tx=journal_tx, now=now
        )
        raise LocalPeopleHeld(complete[1], local, event)
    after: tuple[str, str] | None = None
    orphans = 0
    while True:
        after, dropped = await store.call(cs.remove_orphans_step, after)
        orphans += dropped
        if after is None:
            break
    started = time.perf_counter()
    event = await store.call(cs.swap, snapshot, complete[1], journal_tx=journal_tx, now=now)
    if event is None:
        raise RejectedMessage("replayed", f"snapshot {complete[1]} overtaken by a delta")
    if event.payload.get("erased"):
        # As after an erasure by delta: secure_delete zeroed the cells, the WAL still holds
        # the pages as they were until it is truncated.
        await store.call(truncate_wal)
    return Swapped(complete[1], event, orphans, (time.perf_counter() - started) * 1000)


async def clean_old(store: AsyncStore) -> None:
    """Drop the replaced set in small batches; decisions interleave on the store thread."""
    while await store.call(cs.clean_step):
        await asyncio.sleep(0)
