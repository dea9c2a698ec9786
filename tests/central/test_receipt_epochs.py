"""The office's receipts per (door, journal epoch) (docs/mqtt.md, receipts), on each engine:
a door from before epochs gets receipts exactly as before, and a door's new store (seq 1
again, another epoch) gets its own run, never the one of the store it replaced."""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Any

from edgegate.contract import messages as m
from edgegate.sim.broker import Broker
from tests.central.conftest import Central, FakeDoor, ServerThread, Subscriber, wait_until


def test_old_doors_keep_their_receipts_and_a_new_store_gets_its_own_run(
    central: Central,
    serving: ServerThread,
    broker: Broker,
    subscriber: Callable[..., Subscriber],
) -> None:
    door = FakeDoor(broker, "front")
    receipts = subscriber(door.topics.receipts)
    seen: list[dict[str, Any]] = []  # the receipts' bodies as sent

    def got(epoch: str | None, upto: int) -> bool:
        try:
            _, payload = receipts.get(0.5)
        except queue.Empty:
            return False
        body = central.verifier.verify(payload)
        seen.append(body)
        m.Receipt.model_validate(body)
        return body.get("epoch") == epoch and body["upto"] == upto

    try:
        for _ in range(5):  # a door from before epochs: its events name none
            door.publish_event(door.event())
        wait_until(lambda: got(None, 5), 15, "the old door's receipt, with no epoch key")
        # Its store is replaced: seq 1 again, a new epoch; 3 of its new events arrive.
        door.seq = 0
        for _ in range(3):
            ev = door.event()
            door.publish_event({**ev, "id": "new-" + ev["id"], "epoch": "e2"})
        wait_until(lambda: got("e2", 3), 15, "the new store's own receipt")
        # Never a run of one life of the journal under the other's name.
        assert all(b["upto"] <= 3 for b in seen if b.get("epoch") == "e2")
        assert all(b["upto"] <= 5 and "epoch" not in b for b in seen if b.get("epoch") != "e2")
        # A malformed epoch is refused and counted, like any malformed event.
        door.publish_event({**door.event(), "epoch": "not an epoch!"})
        wait_until(
            lambda: serving.server.counters["rejected_malformed"] == 1, 10, "malformed epoch"
        )
    finally:
        door.close()
