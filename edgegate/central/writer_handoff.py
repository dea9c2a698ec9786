"""One SQLite file's writers in this process take their turn from a queue, not from SQLite.

SQLite has one write lock per file. A writer that finds it taken waits in SQLite's busy
handler, which *sleeps* (1, 2, 5, 10 ... up to 100 ms between tries) and tries again: it does
not learn when the lock is freed, and a writer that arrives later and tries at the right moment
takes it first. In ``central serve`` the archive's writer (every door event, every receipt)
takes the lock again and again, as do the alarms, the visitors' and the outbox's loops; a
console change (a lost card disabled) could lose that race many times in a row and wait more
than a second before its version was even signed and sent (docs/benchmarks.md, "Lost card ->
door denies").

``WriterHandoff`` is the queue in front of SQLite's lock for the writers of one process: a
writer asks for its turn before it begins a write transaction and the turn is *handed over*
to the next waiter when the holder's connection commits or rolls back (engine.py calls
``acquire``/``release``; the DBAPI connection releases after its COMMIT or ROLLBACK returned,
so the next writer's ``BEGIN IMMEDIATE`` finds the lock free). Nobody polls and nobody barges
in: waiters are served in arrival order, interactive ones (an operator's change through the
console, the API or the CLI) before bulk ones (archive batches, background loops), with at most
``MAX_INTERACTIVE_RUN`` interactive turns in a row while a bulk writer waits so that a long
import from the console cannot starve the archive.

What it does not change: readers never ask (WAL readers do not wait for a writer); another
process on the same file (the CLI while ``serve`` runs) still meets SQLite's busy timeout, as
does this process's turn holder against it. A waiter gives up waiting for its turn after the
busy timeout and goes on to SQLite (logged, counted): a bug that leaked a turn makes writers
slower, never stuck. A thread that already holds the turn and writes on a second connection
does not wait for itself (that was, and stays, SQLite's busy timeout).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, Protocol, TypeVar

import structlog

log = structlog.get_logger(__name__)

# While a bulk writer waits, interactive writers may go first this many times in a row.
MAX_INTERACTIVE_RUN = 8


class Writes(StrEnum):
    """Whose writes an engine carries: an operator's (served first) or background batches."""

    INTERACTIVE = "interactive"
    BULK = "bulk"


class _Queued(Protocol):
    @property
    def priority(self) -> Writes: ...


T = TypeVar("T", bound=_Queued)


class TurnQueue(Generic[T]):
    """Who is next: interactive waiters in arrival order before bulk ones in arrival order,
    except that a bulk waiter gets the turn after ``MAX_INTERACTIVE_RUN`` interactive turns
    given while it waited. No threads here: ``WriterHandoff`` calls it under its lock."""

    def __init__(self) -> None:
        self._waiting: dict[Writes, deque[T]] = {w: deque() for w in Writes}
        self._interactive_run = 0  # interactive turns given in a row while bulk waited

    def __len__(self) -> int:
        return sum(len(q) for q in self._waiting.values())

    def push(self, item: T) -> None:
        self._waiting[item.priority].append(item)

    def remove(self, item: T) -> None:
        """Take a waiter out (it stopped waiting), by identity."""
        queue = self._waiting[item.priority]
        for i, queued in enumerate(queue):
            if queued is item:
                del queue[i]
                return

    def pop(self) -> T | None:
        interactive, bulk = self._waiting[Writes.INTERACTIVE], self._waiting[Writes.BULK]
        if interactive and (not bulk or self._interactive_run < MAX_INTERACTIVE_RUN):
            self._interactive_run = self._interactive_run + 1 if bulk else 0
            return interactive.popleft()
        self._interactive_run = 0
        return bulk.popleft() if bulk else None


@dataclass(eq=False, slots=True)
class _Ticket:
    owner: object
    thread: int
    priority: Writes
    arrived: float = field(default_factory=time.monotonic)
    since: float = field(default_factory=time.monotonic)  # holds the turn since (holder only)


class WriterHandoff:
    """The write turn of one SQLite file in this process (see the module docstring)."""

    def __init__(self, name: str) -> None:
        self.name = name
        # One plain lock under the condition: every field below is read and changed under it.
        self._cond = threading.Condition(threading.Lock())
        self._holder: _Ticket | None = None
        self._waiting: TurnQueue[_Ticket] = TurnQueue()
        self.counters: Counter[str] = Counter()
        # Per priority: turns that had to wait, and how long in all and at most (ms).
        self._waits: dict[Writes, list[float]] = {w: [0, 0.0, 0.0] for w in Writes}

    def holder(self) -> object | None:
        """The owner holding the turn now, if any."""
        with self._cond:
            return None if self._holder is None else self._holder.owner

    def waiting(self) -> int:
        """How many writers wait for their turn now."""
        with self._cond:
            return len(self._waiting)

    def stats(self) -> dict[str, float]:
        """Turns taken, and per priority the turns that waited: how many, ms in all, ms at
        most (``central serve`` logs them as ``writer_handoff_stats`` when it stops)."""
        with self._cond:
            out: dict[str, float] = dict(self.counters)
            for w, (n, total, most) in self._waits.items():
                out[f"{w}_waited"] = n
                out[f"{w}_waited_ms"] = round(total, 1)
                out[f"{w}_waited_max_ms"] = round(most, 1)
            return out

    def acquire(self, owner: object, priority: Writes, timeout: float) -> bool:
        """Wait for the turn for ``owner`` (a DBAPI connection). True: ``owner`` holds it and
        must ``release`` it. False: go on without it (already held by this thread on another
        connection, or ``timeout`` seconds passed): SQLite's busy timeout decides then."""
        ticket = _Ticket(owner, threading.get_ident(), priority)
        with self._cond:
            holder = self._holder
            if holder is None:
                self._holder = ticket
                self.counters["turns"] += 1
                return True
            if holder.owner is owner:
                return True  # already this connection's turn (a second BEGIN after a failure)
            if holder.thread == ticket.thread:
                # Waiting would be waiting for ourselves: this thread holds the turn on
                # another connection and only its own commit can free it.
                self.counters["nested_writer"] += 1
                log.warning("writer_handoff_nested", store=self.name)
                return False
            self._waiting.push(ticket)
            deadline = ticket.arrived + timeout
            try:
                while self._holder is not ticket:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        self._waiting.remove(ticket)
                        self.counters["wait_timeout"] += 1
                        held = self._holder
                        log.warning(
                            "writer_handoff_timeout",
                            store=self.name,
                            waited_s=round(timeout, 1),
                            holder_held_s=(
                                round(time.monotonic() - held.since, 1) if held else None
                            ),
                        )
                        return False
                    self._cond.wait(left)
            except BaseException:
                # Interrupted while queued (a signal's exception out of the wait): no ticket
                # may stay behind, or a release would hand the turn to nobody and every
                # writer after it would wait out its timeout. Handed the turn already: on.
                if self._holder is ticket:
                    self._hand_on()
                else:
                    self._waiting.remove(ticket)
                raise
            self.counters["turns"] += 1
            self.counters["handed_over"] += 1
            # From arrival to running again: the queue, then the wake-up (a CPU to run on).
            waited = (time.monotonic() - ticket.arrived) * 1000
            stat = self._waits[priority]
            stat[0] += 1
            stat[1] += waited
            stat[2] = max(stat[2], waited)
            return True

    def release(self, owner: object) -> None:
        """End ``owner``'s turn (no-op when it does not hold it) and hand it to the next."""
        with self._cond:
            if self._holder is None or self._holder.owner is not owner:
                return
            self._hand_on()

    def _hand_on(self) -> None:
        """Under ``_cond``: the turn to the next waiter. Handed over, not freed: the next
        waiter holds it before anyone else can ask, so a writer arriving now queues behind it
        (no barging)."""
        self._holder = self._waiting.pop()
        if self._holder is not None:
            self._holder.since = time.monotonic()
            self._cond.notify_all()


_registry: dict[str, WriterHandoff] = {}
_registry_lock = threading.Lock()


def for_file(path: str | os.PathLike[str]) -> WriterHandoff:
    """The process's one hand-off for the SQLite file at ``path`` (every engine on that file,
    whichever component opened it, queues on the same one)."""
    key = os.path.realpath(path)
    with _registry_lock:
        handoff = _registry.get(key)
        if handoff is None:
            handoff = _registry[key] = WriterHandoff(os.path.basename(key))
        return handoff
