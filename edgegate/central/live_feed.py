"""The live feed: what the office store committed, told to this ``central serve`` instance's
live views (the console's hub) and its outbox, whichever instance committed it.

Several instances share the doors' events and telemetry (MQTT shared subscriptions,
server.py): each message is stored by one instance only, so an instance's own commits are not
what its console must show. Every instance therefore reads the archive itself: the rows after
its cursor ``n``, in arrival order. ``archive.py`` makes arrival order commit order (the
writer lock), so a reader at ``n`` never skips a row committed later with a lower ``n``, and
the cursor moves past each row once: no event is shown twice, none is missed.

What wakes a read is the only difference between the engines:

* **PostgreSQL**: a ``NOTIFY`` on ``CHANNEL`` sent inside the archive's insert transaction
  (``archive.insert_in_order``), and inside every transaction that changes a door row, an
  alarm or a command (``archive.announce``, ``archive.changing``: the alarm service's raise,
  escalate, acknowledge and clear, central/alarms.py; a command recorded or sent,
  services/commands.py; whoever calls them). PostgreSQL
  delivers it at commit, never for a rolled back transaction, in commit order, to this
  instance's ``LISTEN`` connection: its own, outside the engine's pool (a pooled connection
  is reset and shared; a listening one must stay put). It runs on serve's asyncio loop
  (psycopg 3's ``AsyncConnection.notifies``), so a notification only sets a flag there.
  The connection is made again after a database restart or a kill, with backoff.
* **SQLite** (one instance only): ``central serve`` wakes the feed in process after each
  commit (``local``: the archive's batches, and the ``changed`` hook of ``archive.changing``,
  which serve hands to its own alarm service and to its console's office); nobody else
  writes the archive while it runs.

Either way a periodic read (``POLL_SECONDS``; ``POLL_UNHEARD_SECONDS`` while no LISTEN
connection is up) is the safety net: a notification lost with its connection costs latency,
never an event. Door rows and commands carry no cursor: their notification says "re-read", and
(re)connecting the LISTEN connection says so once, for whatever changed unheard. Alarms have a
mark that every change moves (``alarms.history_mark``): each read compares it, so an alarm a
CLI process acknowledged on SQLite (no NOTIFY, not serve's hook) shows at the next poll.
Commands have one too on SQLite (``archive.commands_mark``): a command sent from the CLI
shows on the console's commands page at the next poll.

Enrolment steps come to every instance from the broker and belong to the console session of
the one that started them (server.py ``EVERY_INSTANCE``): they pass through ``local`` as they
are, on the loop, in the order they came.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog
from sqlalchemy import Engine

from edgegate.central import alarms, archive

log = structlog.get_logger(__name__)

CHANNEL = archive.LIVE_CHANNEL
# What a notification's payload names.
EVENTS, DOORS, ALARMS = archive.LIVE_EVENTS, archive.LIVE_DOORS, archive.LIVE_ALARMS
COMMANDS = archive.LIVE_COMMANDS
KINDS = frozenset({EVENTS, DOORS, ALARMS, COMMANDS})
POLL_SECONDS = 5.0  # the safety net while the LISTEN connection is up (or on SQLite)
POLL_UNHEARD_SECONDS = 0.5  # while it is down: latency stays under a second
READ_ROWS = 1000  # rows per read; a longer backlog is read in several, at once
RECONNECT_MAX_SECONDS = 5.0
# The LISTEN connection's name in pg_stat_activity (the instance is appended): operators and
# tests find it there.
APPLICATION_NAME = "edgegate-live"
# Client-side TCP keepalive of the LISTEN connection: a server that vanished without a word
# (a lost host) is noticed in about idle + interval * count seconds, not in hours.
KEEPALIVE = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3}

# ("event", event with site and door), ("door", {}), ("alarm", {}), ("command", {}),
# ("enrol", {...}).
Change = tuple[str, dict[str, Any]]
Sink = Callable[[list[Change]], None]


class LiveFeed:
    """Runs on serve's asyncio loop (``start``, ``local`` and the sink too); the archive is
    read on a thread of its own, so neither the loop nor the archive's store thread waits."""

    def __init__(self, engine: Engine, sink: Sink, instance: str = "") -> None:
        self.engine = engine
        self.sink = sink
        self.instance = instance
        self.postgres = engine.dialect.name == "postgresql"
        self.cursor = 0
        self.alarm_mark = 0  # alarms.history_mark at the last read (live thread)
        # archive.commands_mark at the last read, SQLite only (live thread; None on
        # PostgreSQL).
        self.command_mark: tuple[int, float, float] | None = None
        self.listening = False  # a LISTEN connection is up (loop thread only)
        self.reads = 0
        self.failures = 0  # reads failed in a row (the store away)
        self._due: set[str] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="live")

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """From the archive's end: a console shows what arrives from now on."""
        loop = asyncio.get_running_loop()
        self.cursor = await loop.run_in_executor(self._pool, archive.last_n, self.engine)
        self.alarm_mark = await loop.run_in_executor(self._pool, alarms.history_mark, self.engine)
        self.command_mark = await loop.run_in_executor(self._pool, self._command_mark)
        self._tasks.append(asyncio.create_task(self._reader()))
        if self.postgres:
            self._tasks.append(asyncio.create_task(self._listen()))
        log.info("live_feed_started", cursor=self.cursor, notify=self.postgres)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._pool.shutdown(wait=True)

    # --- wakes ----------------------------------------------------------------------------

    def local(self, kinds: Iterable[str], passed: list[Change] | None = None) -> None:
        """Loop thread, after this instance committed: ``kinds`` it changed (``KINDS``);
        ``passed`` goes to the sink as it is (enrolment steps). On PostgreSQL the commit's
        own NOTIFY wakes every instance, this one included: one path for all of them."""
        if passed:
            self._tell(list(passed))
        if not self.postgres:
            self._note(kinds)

    def _note(self, kinds: Iterable[str]) -> None:
        self._due.update(k for k in kinds if k in KINDS)
        self._wake.set()

    # --- reading --------------------------------------------------------------------------

    async def _reader(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            period = POLL_SECONDS if self.listening or not self.postgres else POLL_UNHEARD_SECONDS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), period)
            self._wake.clear()
            due, self._due = self._due, set()
            try:
                read = await loop.run_in_executor(self._pool, self._read, self.cursor)
            except Exception as exc:
                # The store is away (a restart): the next wake or poll reads from the same
                # cursor; what was due stays due. Said on the 1st, 2nd, 4th... in a row.
                self._due |= due
                self.failures += 1
                if self.failures & (self.failures - 1) == 0:
                    log.warning(
                        "live_feed_read_failed", error=str(exc)[:200], attempts=self.failures
                    )
                continue
            if self.failures:
                log.info("live_feed_read_recovered", after_attempts=self.failures)
                self.failures = 0
            self.reads += 1
            self.cursor, count, changes, alarmed, commanded = read
            if count == READ_ROWS:
                self._wake.set()  # more behind these: read on at once
            if count or DOORS in due:
                changes.append(("door", {}))  # an event moves its door's "last seen" too
            if ALARMS in due or alarmed:
                changes.append(("alarm", {}))
            if COMMANDS in due or commanded:
                changes.append(("command", {}))
            if changes:
                self._tell(changes)

    def _read(self, after: int) -> tuple[int, int, list[Change], bool, bool]:
        """Live thread: the archive's rows after ``after``, oldest first, parsed here and not
        on serve's loop (up to READ_ROWS payloads a read). Returns the new cursor, how many
        rows were read, their events, whether an alarm changed since the last read, and
        whether a command did (SQLite: a CLI process's ``edgegate central command``)."""
        mark = alarms.history_mark(self.engine)
        command_mark = self._command_mark()
        rows = archive.rows_after(self.engine, after, READ_ROWS)
        changes: list[Change] = []
        for n, site, door, payload in rows:
            try:
                event = json.loads(payload)
            except ValueError:
                continue  # stored by the archive from parsed JSON: cannot happen
            changes.append(("event", {**event, "site": site, "door": door, "n": n}))
        # All reads went through: the marks move on.
        alarmed, self.alarm_mark = mark != self.alarm_mark, mark
        commanded, self.command_mark = command_mark != self.command_mark, command_mark
        return (rows[-1][0] if rows else after), len(rows), changes, alarmed, commanded

    def _command_mark(self) -> tuple[int, float, float] | None:
        """Live thread: ``archive.commands_mark`` on SQLite; None on PostgreSQL, where a
        command's own NOTIFY says it changed."""
        return None if self.postgres else archive.commands_mark(self.engine)

    def _tell(self, changes: list[Change]) -> None:
        try:
            self.sink(changes)
        except Exception:  # a live view's bug must never stop the feed
            log.exception("live_update_failed")

    # --- PostgreSQL: LISTEN ---------------------------------------------------------------

    async def _listen(self) -> None:
        import psycopg

        cargs, cparams = self.engine.dialect.create_connect_args(self.engine.url)
        name = f"{APPLICATION_NAME}-{self.instance or os.getpid()}"[:63]
        params = {**cparams, **KEEPALIVE, "application_name": name, "autocommit": True}
        delay = 0.25
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(*cargs, **params)
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening = True
                    delay = 0.25
                    log.info("live_feed_listening", channel=CHANNEL)
                    # Whatever committed while nobody listened: read it now.
                    self._note(KINDS)
                    while True:
                        async for note in conn.notifies(timeout=POLL_SECONDS):
                            self._note((note.payload,))
                        # Quiet for a while: prove the connection still answers (a dead
                        # one raises here, or at the latest when keepalive gives up).
                        await conn.execute("SELECT 1")
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError) as exc:
                log.warning(
                    "live_feed_listen_lost",
                    error=str(exc).strip()[:200],
                    retry_in=delay,
                    was_listening=self.listening,
                )
            finally:
                self.listening = False
                self._wake.set()  # the reader polls at the shorter period from now on
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)
