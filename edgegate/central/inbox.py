"""The hand-off of the doors' messages from paho's network thread to the office's loop.

One ``call_soon_threadsafe`` per message (what ``central serve`` did) costs a write to the
loop's self-pipe, a wake-up of the loop and a queue operation for every event: at thousands
of events per second that was a large share of the office's CPU, all of it under the GIL
that the network thread needs to read the next message. Here paho's thread only appends to a
list under a lock and wakes the loop once, when the list stops being empty; the loop then
takes whole batches (group commit: whatever arrived while the last batch was being
committed).

Thread hazards, said once: ``put`` runs on paho's thread, ``take`` and ``wait`` on the loop.
``_signalled`` is true from the wake-up that ``put`` scheduled until ``take`` empties the
list, so between the two a message is either in the list or taken, never left without a
wake-up to come.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class Inbox(Generic[T]):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._items: list[T] = []
        self._signalled = False
        self._ready = asyncio.Event()  # touched on the loop only (set through the loop)

    def put(self, item: T) -> None:
        """Any thread (paho's): keep ``item``; the loop is woken once per batch."""
        with self._lock:
            self._items.append(item)
            wake = not self._signalled
            self._signalled = True
        if wake:
            self._loop.call_soon_threadsafe(self._ready.set)

    def take(self, limit: int) -> list[T]:
        """Loop thread: up to ``limit`` items, oldest first (arrival order is kept)."""
        with self._lock:
            batch = self._items[:limit]
            del self._items[:limit]
            if not self._items:
                self._signalled = False
        return batch

    async def wait(self) -> None:
        """Loop thread: until something may have arrived since the last ``wait``."""
        await self._ready.wait()
        self._ready.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
