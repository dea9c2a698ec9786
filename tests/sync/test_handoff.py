"""The hand-off from paho's network thread to the asyncio loop (edgegate/mqtt/handoff.py),
used by the door's link for PUBACKs and by the office for the doors' messages: every item
arrives once and in order, the loop is woken once per batch and never left asleep with items
in, and a put after the loop closed (shutdown) does not kill paho's thread."""

from __future__ import annotations

import asyncio
import threading
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from edgegate.mqtt.handoff import Handoff

chunks_st = st.lists(st.integers(1, 50), min_size=1, max_size=20)


def _produce(handoff: Handoff[int], chunks: list[int]) -> threading.Thread:
    """A producer thread putting in bursts, as paho's thread does."""

    def produce() -> None:
        n = 0
        for size in chunks:
            for _ in range(size):
                handoff.put(n)
                n += 1
            time.sleep(0.0005)

    thread = threading.Thread(target=produce)
    thread.start()
    return thread


@settings(max_examples=40, deadline=None)
@given(chunks=chunks_st, limits=st.lists(st.integers(1, 30), min_size=1, max_size=10))
def test_a_consumer_waiting_on_an_event_takes_every_item_once_in_order(
    chunks: list[int], limits: list[int]
) -> None:
    """The office's way: ``ready`` sets an event, the loop takes batches of varying sizes."""

    async def run() -> list[int]:
        ready = asyncio.Event()
        handoff: Handoff[int] = Handoff(asyncio.get_running_loop(), ready.set)
        producer = _produce(handoff, chunks)
        got: list[int] = []
        k = 0
        while len(got) < sum(chunks):
            # Only ever woken by put: a lost wake-up hangs here (and the timeout fails).
            await asyncio.wait_for(ready.wait(), 10)
            ready.clear()
            while batch := handoff.take(limits[k % len(limits)]):
                k += 1
                got.extend(batch)
                await asyncio.sleep(0)  # a batch being stored: the producer goes on
        producer.join()
        assert len(handoff) == 0
        return got

    assert asyncio.run(run()) == list(range(sum(chunks)))


@settings(max_examples=40, deadline=None)
@given(chunks=chunks_st)
def test_a_ready_callback_taking_all_gets_every_item_once_in_order_one_wake_per_batch(
    chunks: list[int],
) -> None:
    """The door's way (PUBACKs): ``ready`` itself takes everything there is. It is called at
    most once per item and never with nothing scheduled to take what came since."""

    async def run() -> tuple[list[int], int]:
        got: list[int] = []
        wakes = 0
        done = asyncio.Event()

        def ready() -> None:
            nonlocal wakes
            wakes += 1
            got.extend(handoff.take())
            if len(got) == sum(chunks):
                done.set()

        handoff: Handoff[int] = Handoff(asyncio.get_running_loop(), ready)
        producer = _produce(handoff, chunks)
        await asyncio.wait_for(done.wait(), 10)  # a lost wake-up hangs here
        producer.join()
        assert len(handoff) == 0
        return got, wakes

    got, wakes = asyncio.run(run())
    assert got == list(range(sum(chunks)))
    assert 1 <= wakes <= sum(chunks)


def test_a_put_after_the_loop_closed_is_kept_and_does_not_raise() -> None:
    loop = asyncio.new_event_loop()
    handoff: Handoff[str] = Handoff(loop, lambda: None)
    loop.close()
    errors: list[BaseException] = []

    def late_puback() -> None:
        try:
            handoff.put("late")
        except BaseException as exc:  # what would end paho's network thread
            errors.append(exc)

    thread = threading.Thread(target=late_puback)
    thread.start()
    thread.join()
    assert errors == [] and len(handoff) == 1
