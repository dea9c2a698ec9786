"""Handing what paho's network thread receives to the asyncio loop, in batches.

Both sides run paho's network loop in a thread of its own: the door's link
(``edgegate.sync.link``) hands the broker's PUBACKs to its loop, the office
(``edgegate.central.server``) the doors' messages. One ``call_soon_threadsafe`` per item costs
a write to the loop's self-pipe, a wake-up of the loop and a queue operation each: at
thousands of events per second that was a large share of the CPU, all of it under the GIL
that the network thread needs to read the next packet. Here paho's thread only appends to a
list under a lock and wakes the loop once, when the list stops being empty (``ready`` is
scheduled on the loop); the loop then takes whole batches (the office: group commit, whatever
arrived while the last batch was being committed; the door: every PUBACK that came meanwhile).

Thread hazards, said once: ``put`` runs on paho's thread, ``take`` (and ``ready``) on the
loop. ``_signalled`` is true from the wake-up that ``put`` scheduled until ``take`` empties the
list, so between the two an item is either in the list or taken, never left without a
wake-up to come. A consumer that waits on an event set by ``ready`` clears it before it
takes, never after: an item put in between then finds ``_signalled`` true (no new wake-up)
and is in the list the next ``take`` empties.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Handoff(Generic[T]):
    """Items from paho's thread to ``loop``, arrival order kept; ``ready()`` is called on
    the loop once per batch (after the first ``put`` into an empty list)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, ready: Callable[[], None]) -> None:
        self._loop = loop
        self._ready = ready
        self._lock = threading.Lock()
        self._items: list[T] = []
        self._signalled = False

    def put(self, item: T) -> None:
        """Any thread (paho's): keep ``item``; the loop is woken once per batch."""
        with self._lock:
            self._items.append(item)
            wake = not self._signalled
            self._signalled = True
        if wake and not self._loop.is_closed():
            # The loop may close between the check and the call (shutdown): nobody takes
            # the item then, and paho's thread must not die of it.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._ready)

    def take(self, limit: int | None = None) -> list[T]:
        """Loop thread: up to ``limit`` items (all without one), oldest first."""
        with self._lock:
            if limit is None or limit >= len(self._items):
                batch, self._items = self._items, []
            else:
                batch = self._items[:limit]
                del self._items[:limit]
            if not self._items:
                self._signalled = False
        return batch

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
