"""Live updates inside the office process: the live feed (central/live_feed.py) tells the hub
what the office store committed, whichever ``central serve`` instance committed it; each
server-sent-event stream of the console is one subscriber queue.

Runs on the one asyncio loop of ``central serve`` (the live feed, the archive's consumer and
uvicorn share it), so no locks. A slow browser does not hold anything up: its queue is
bounded and, when full, the subscriber is marked lagging and reloads its view instead of
getting every item.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

QUEUE = 1000


@dataclass(eq=False)
class Subscriber:
    topics: frozenset[str]
    queue: asyncio.Queue[tuple[str, Any]] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE)
    )
    lagging: bool = False


class Hub:
    def __init__(self) -> None:
        self._subs: set[Subscriber] = set()

    def subscribe(self, *topics: str) -> Subscriber:
        sub = Subscriber(frozenset(topics))
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subs.discard(sub)

    def publish(self, topic: str, item: Any) -> None:
        for sub in list(self._subs):
            if topic not in sub.topics:
                continue
            try:
                sub.queue.put_nowait((topic, item))
            except asyncio.QueueFull:
                sub.lagging = True

    @property
    def subscribers(self) -> int:
        return len(self._subs)


async def renders(
    hub: Hub, topic: str, refresh: float, min_gap: float = 0.0
) -> AsyncGenerator[None, None]:
    """When a live view renders again: at once, then after each wake on ``topic`` or every
    ``refresh`` seconds without one. A burst of wakes becomes one render, and renders come at
    most every ``min_gap`` seconds (every instance's live feed wakes "doors" for each batch
    any instance committed). Use under ``contextlib.aclosing``: the subscription ends when
    the stream does, not when the generator is collected."""
    sub = hub.subscribe(topic)
    loop = asyncio.get_running_loop()
    try:
        while True:
            rendered = loop.time()
            yield
            try:
                await asyncio.wait_for(sub.queue.get(), refresh)
                await asyncio.sleep(max(0.0, rendered + min_gap - loop.time()))
                while not sub.queue.empty():
                    sub.queue.get_nowait()
            except TimeoutError:
                pass
    finally:
        hub.unsubscribe(sub)
