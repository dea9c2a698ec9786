"""``edgegate central serve``: the central office's daemon.

It subscribes to every door of the site (``topics.central_subscriptions``), archives events
(deduplicated by ``id``), records availability, state and telemetry per door, and answers
snapshot requests with a signed, chunked snapshot of the master credential set.

Threads: paho's network thread only hands messages to the asyncio loop (mqtt/handoff.py:
a list under a lock, the loop woken once per batch); every store call runs on the store
thread (one worker, so the archive's transactions never interleave); the receipts are
computed on a thread of their own (reads only: they never hold up the next batch);
building and publishing a snapshot runs on one worker thread, so neither blocks the loop.
Group commit: the loop takes whatever arrived while the last batch was being committed (up to
``BATCH``) as the next batch, stored in one transaction. A message is acknowledged to the
broker only after its transaction committed: events in flight when the office crashed are
delivered again and the archive drops the copies.

Several instances (PostgreSQL only; docs/production.md): each connects with MQTT 5 under its
own client id (``edgegate-central-<site>-<instance>``) and a short session expiry
(``[central] session_expiry_seconds``: a quick restart finds its session again). The doors'
events, telemetry and offers of local people come through a shared subscription
(``$share/edgegate-central-<site>/...``): the broker hands each message to one instance, which
stores it once. Availability and state (retained: a shared subscription gets no retained
messages) and snapshot requests (answered by the duty holder) reach every instance. The
duties that must happen once run only in the instance holding them (central/leader.py).
What any instance committed reaches every instance's live views through the office store
(central/live_feed.py), not through this instance's share of the messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from edgegate.central import archive, inbound, leader, live_feed, receipts, receiver, retention
from edgegate.central import store as master
from edgegate.central.alarms import WATCHED, AlarmService, Escalation, ensure_tables
from edgegate.central.config import CentralConfig
from edgegate.central.engine import reading, sqlite_path
from edgegate.central.local_people import LocalOffers
from edgegate.central.notify import NotifyError, alarm_webhook_secret, post_webhook, send_email
from edgegate.central.outbox_runner import OutboxRunner
from edgegate.central.publisher import publish_signed, wait_all
from edgegate.central.snapshot import MasterSet, erased_since, read_master, snapshot_messages
from edgegate.central.store import current_version, open_master
from edgegate.central.writer_handoff import Writes, for_file
from edgegate.contract import messages as m
from edgegate.contract.signing import Signer

if TYPE_CHECKING:
    from edgegate.central.services import EncodeFace
from edgegate.contract.topics import (
    DoorTopics,
    central_subscriptions,
    office_availability,
    site_credentials,
)
from edgegate.mqtt.client import build_client
from edgegate.mqtt.handoff import Handoff

log = structlog.get_logger(__name__)

BATCH = 500  # messages per store transaction when a door drains its journal
SNAPSHOT_ACK_TIMEOUT = 120.0
# Told, on the loop, what the office store committed, whichever instance committed it
# (central/live_feed.py): ("event", event), ("door", {}), ("alarm", {}), ("enrol", step).
Committed = Callable[[list[live_feed.Change]], None]
CATCHUP_COALESCE_SECONDS = 5.0
VISITS_SECONDS = 1.0  # the visitors' register reads new door events this often
VISITS_SWEEP_SECONDS = 60.0  # unreturned cards, retention
RECEIPT_SECONDS = 0.25  # receipts are computed at most this often (all doors due at once)
# A door's ``last_seen`` is written at most this often per instance: at thousands of events
# per second, one row update per door and batch cost as much as the events' insert.
SEEN_SECONDS = 1.0
UNANSWERED_SECONDS = 30.0  # a snapshot request seen this recently is answered on takeover
# Door topics every instance must see (everything else is shared among the instances).
# A finger enrolment's steps (``/enrol``) too: its session lives in the memory of the instance
# whose console started it; the others ignore them.
EVERY_INSTANCE = ("/availability", "/state", "/credentials/request", "/enrol")
ALARMING = frozenset(WATCHED)
# What the inbox holds: serve's own client's messages and the receivers' (central/receiver.py).
Message = mqtt.MQTTMessage | receiver.Received
# What a batch's changes mean to the live feed (central/live_feed.py).
LIVE_KINDS = {"event": live_feed.EVENTS, "door": live_feed.DOORS}


def subscriptions(site: str) -> list[str]:
    """The office's topic filters: shared among the instances unless ``EVERY_INSTANCE``."""
    group = f"$share/edgegate-central-{site}/"
    return [t if t.endswith(EVERY_INSTANCE) else group + t for t in central_subscriptions(site)]


class CentralServer:
    def __init__(
        self, config: CentralConfig, signer: Signer, on_committed: Committed | None = None
    ) -> None:
        self.config = config
        self.site = config.central.site
        self.signer = signer
        self.engine: Engine | None = None
        self._store = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self.instance = leader.instance_name(config.central.instance)
        # MQTT 5 (shared subscriptions, session expiry), more QoS 1 messages in flight so a
        # 50-chunk snapshot does not wait one round trip per message.
        self.client = build_client(
            config.mqtt,
            f"edgegate-central-{self.site}-{self.instance}",
            protocol="5",
            auto_reconnect=True,
            max_inflight=100,
        )
        self.duties: leader.Duties | None = None
        self.leader = False  # holds the singleton duties (loop thread reads, _duties sets)
        self._broker_state = ("connecting", "")
        # This instance's presence for the doors' offline policy: a retained "online", cleared
        # (an empty retained message) by the last will or a clean stop, so an instance that
        # is gone leaves no topic behind and the doors follow "any instance online".
        self.presence_topic = office_availability(
            self.site, f"{socket.gethostname()}-{os.getpid()}"
        )
        self.client.will_set(self.presence_topic, b"", qos=1, retain=True)
        # Acknowledge only after the archive committed (see the module docstring).
        self.client.manual_ack_set(True)
        self.client.reconnect_delay_set(1, 30)
        self.counters: Counter[str] = Counter()
        self.broker_failures = 0  # failed connection attempts in a row (paho's thread)
        self._last_catchup: tuple[int, int, float] = (0, 0, -1e9)  # worker thread only
        self.connected = asyncio.Event()
        self._inbox: Handoff[Message] | None = None  # made on the loop (start)
        self.receivers: receiver.Receivers | None = None  # [central] event_receivers
        self._subscribed_lock = threading.Lock()
        self._own_subscribed = False  # serve's own client (paho's thread sets it)
        self._inbox_ready = asyncio.Event()  # set on the loop by the inbox, once per batch
        self._loop: asyncio.AbstractEventLoop | None = None
        # Reads only (receipts.Receipts.advance); its own thread and connection.
        self._receipts_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="receipts")
        # Door -> when its last_seen was last written (store thread; marked after commit).
        self._seen_at: dict[tuple[str, str], float] = {}
        # The doors whose last_seen the batch in progress wrote (store thread, read on the
        # loop once the batch returned: never both at once).
        self._seen_due: list[tuple[str, str]] = []
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapshot")
        # Set first thing in stop(): the worker's PUBACK waits end instead of outliving
        # the disconnect (SNAPSHOT_ACK_TIMEOUT is minutes).
        self._stopping = threading.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._busy: set[str] = set()
        self._master: MasterSet | None = None
        self._publishing = False
        # What the last committed batch changed, for the live feed (filled on the store
        # thread inside ``_handle``, read on the loop after it returned: never both at once).
        # The live views hear of it from the feed (``on_committed``), which reads what every
        # instance archived; see central/live_feed.py.
        self.on_committed = on_committed
        self.feed: live_feed.LiveFeed | None = None
        self._changes: list[tuple[str, dict[str, Any]]] = []
        self._events: list[tuple[dict[str, Any], str]] = []  # (archive row, topic): store thread
        self._alarming = False  # the batch had something for the alarms (store thread)
        # Snapshot requests seen while another instance held the duties: door -> (request,
        # when), answered on taking them over (loop thread).
        self._unanswered: dict[str, tuple[m.SnapshotRequest, float]] = {}
        # (door, journal epoch) of the events since the last receipts (loop thread).
        # (door, journal epoch) -> the seqs of it this instance committed since the last
        # receipts (loop thread).
        self._receipt_doors: dict[receipts.Journal, list[int]] = {}
        self._receipts_due = asyncio.Event()
        # Alarms (edgegate/central/alarms.py): raised from the archive, escalated.
        self.alarms: AlarmService | None = None
        self._alarms_wake = asyncio.Event()
        self.receipts = receipts.Receipts(self.site, signer)
        self.offers: LocalOffers | None = None
        self._offers: list[m.LocalPeople] = []  # filled on the store thread, per batch

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._inbox = Handoff(self._loop, self._inbox_ready.set)
        if self.config.central.event_receivers:
            # Before the broker: the receivers' batches go to the same inbox.
            self.receivers = receiver.Receivers(
                self.config.mqtt,
                f"edgegate-central-{self.site}-{self.instance}-events",
                [t for t in subscriptions(self.site) if t.endswith("/events")],
                self.config.central.session_expiry_seconds,
                self.config.central.event_receivers,
                self._inbox.put,
                self._subscribed,
                self._receiver_died,
            )
            self.receivers.start()
        c = self.config.central
        # The archive's, the alarms' and the duties' writes are background batches: on an
        # SQLite store an operator's change waiting for its turn goes first
        # (central/writer_handoff.py).
        self.engine = await self._loop.run_in_executor(
            self._store,
            lambda: open_master(c.db, key_file=c.store_key_file, writes=Writes.BULK),
        )
        await asyncio.to_thread(ensure_tables, self.engine)
        self.duties = leader.Duties(self.engine, c.db, self.instance)
        stale = leader.STALE_CHECKS * c.duty_check_seconds
        await asyncio.to_thread(self.duties.claim_instance, time.time(), stale)
        # The first check before the broker: a lone instance holds its duties before the
        # first door message arrives (a snapshot request must not find nobody in charge).
        await self._check_duties()
        self.alarms = AlarmService(
            self.engine, self.config.alarms, self.site, changed=self.changed_here
        )
        if self.config.alarms.webhook_urls:
            try:  # said at the start, not only at the first escalation
                alarm_webhook_secret(self.config.alarms)
            except NotifyError as exc:
                log.error("alarm_webhook_secret_missing", error=str(exc))
        # The same engine: offers of doors' own people (central/local_people.py).
        self.offers = await asyncio.to_thread(LocalOffers, self.engine)
        # Before the broker: nothing archived from here on is missed by the live views.
        self.feed = live_feed.LiveFeed(self.engine, self._tell, self.instance)
        await self.feed.start()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        mq = self.config.mqtt
        # connect_async + loop_start: paho keeps reconnecting by itself while the broker is
        # away; the office serves whatever it has meanwhile.
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = c.session_expiry_seconds
        self.client.connect_async(
            mq.host, mq.port, keepalive=30, clean_start=False, properties=props
        )
        self.client.loop_start()
        self._spawn(self._duty_loop())
        self._spawn(self._consume())
        self._spawn(self._receipt_loop())
        self._spawn(self._housekeeping())
        self._spawn(self._sweep())
        self._spawn(self._alarms_loop())
        self._spawn(self._visitors())
        log.info(
            "central_started",
            site=self.site,
            instance=self.instance,
            broker=f"{mq.host}:{mq.port}",
        )

    async def stop(self) -> None:
        self._stopping.set()  # before anything waits on the worker (see __init__)
        if self.receivers is not None:
            self.receivers.stop()
        with contextlib.suppress(Exception):
            self.client.publish(self.presence_topic, b"", qos=1, retain=True).wait_for_publish(2)
        self.client.disconnect()
        self.client.loop_stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.feed is not None:
            await self.feed.stop()
        self._worker.shutdown(wait=True)
        self._receipts_thread.shutdown(wait=True)
        self._store.shutdown(wait=True)
        if self.duties is not None:
            await asyncio.to_thread(self.duties.close)
        if self.engine is not None:
            self.engine.dispose()
        log.info("central_stopped", **dict(self.counters))
        path = sqlite_path(self.config.central.db)
        if path is not None:  # how long this process's writers waited for their turns
            log.info("writer_handoff_stats", **for_file(path).stats())

    async def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(conn, *args)`` on the store thread inside one transaction."""
        assert self._loop is not None and self.engine is not None
        engine = self.engine

        def run() -> Any:
            with engine.begin() as conn:
                return fn(conn, *args)

        return await self._loop.run_in_executor(self._store, run)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- paho thread: hand over to the loop, nothing else --------------------------------

    def _on_connect_fail(self, _c: mqtt.Client, _u: Any) -> None:
        """paho's thread: the broker cannot be reached (paho retries by itself). Said on the
        1st, 2nd, 4th, 8th... failure in a row: an office cut off from its doors must show in
        the log without flooding it."""
        self.broker_failures += 1
        n = self.broker_failures
        mq = self.config.mqtt
        # What `central doors` shows as the office's link (written by the duty check).
        self._broker_state = ("disconnected", f"broker {mq.host}:{mq.port} unreachable")
        if n & (n - 1) == 0:
            log.warning("broker_unreachable", broker=f"{mq.host}:{mq.port}", attempts=n)

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self.broker_failures += 1
            log.warning("broker_refused", reason=str(reason), attempts=self.broker_failures)
            self._broker_state = ("disconnected", f"refused: {reason}")
            return
        if self.broker_failures:
            log.info("broker_reachable", after_attempts=self.broker_failures)
        self.broker_failures = 0
        self._broker_state = ("connected", "")
        # The doors' events go to the receivers when there are any (central/receiver.py).
        theirs = self.receivers is not None
        client.subscribe(
            [(t, 1) for t in subscriptions(self.site) if not (theirs and t.endswith("/events"))]
        )
        client.publish(self.presence_topic, b"online", qos=1, retain=True)

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, codes: Any, _p: Any) -> None:
        # Ready only once the broker confirmed the subscriptions: from here on nothing a door
        # sends is missed (the session is persistent, so this holds across restarts too).
        if any(code.is_failure for code in codes):
            log.error("subscription_refused", codes=[str(c) for c in codes])
            return
        self._own_subscribed = True
        self._subscribed()

    def _subscribed(self) -> None:
        """paho's or a receiver's reader thread: ready once serve's client and every
        receiver are subscribed (what a door publishes before has nobody in the share)."""
        with self._subscribed_lock:
            if not self._own_subscribed or (
                self.receivers is not None and not self.receivers.all_subscribed
            ):
                return
        log.info(
            "central_subscribed", site=self.site, receivers=self.config.central.event_receivers
        )
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._ready)

    def _receiver_died(self, k: int) -> None:
        """A receiver's reader thread: it is started again (central/receiver.py)."""
        self.counters["event_receiver_died"] += 1
        log.error("event_receiver_died", receiver=k, restart_in=receiver.RESTART_SECONDS)

    def _ready(self) -> None:
        self.connected.set()
        # Back on the broker: versions a CLI command could not publish go out now, oldest
        # first, so listening doors need no snapshot (docs/central.md, the catch-up rule).
        if self.leader:
            self._spawn(self._publish_pending(0.0))

    # --- the singleton duties (central/leader.py) -----------------------------------------

    async def _duty_loop(self) -> None:
        assert self.duties is not None
        period = self.config.central.duty_check_seconds
        while True:
            await asyncio.sleep(period)
            await self._check_duties()

    async def _check_duties(self) -> None:
        assert self.duties is not None
        state, error = self._broker_state
        try:
            held = await asyncio.to_thread(self.duties.check, time.time(), state, error)
        except Exception:
            log.exception("singleton_check_failed")
            held = False
        if held and not self.leader:
            self.leader = True
            self.counters["duties_taken"] += 1
            log.info("singleton_duties", instance=self.instance, held=True)
            # What the previous holder may have left: versions, alarms to raise, and the
            # snapshot requests of the last moments, which nobody may have answered.
            self._alarms_wake.set()
            if self.connected.is_set():
                self._spawn(self._publish_pending(0.0))
            now = time.monotonic()
            waiting, self._unanswered = self._unanswered, {}
            for request, seen in waiting.values():
                if now - seen < UNANSWERED_SECONDS:
                    self._spawn(self._answer(request))
        elif not held and self.leader:
            self.leader = False
            log.warning("singleton_duties", instance=self.instance, held=False)

    async def _until_leader(self) -> None:
        while not self.leader:
            await asyncio.sleep(self.config.central.duty_check_seconds)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self.connected.clear)
        self._broker_state = ("disconnected", str(reason))
        log.warning("broker_disconnected", reason=str(reason))

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        assert self._inbox is not None
        self._inbox.put(msg)

    # --- the loop -----------------------------------------------------------------------

    async def _consume(self) -> None:
        assert self._inbox is not None
        while True:
            await self._inbox_ready.wait()
            self._inbox_ready.clear()  # before taking (mqtt/handoff.py, thread hazards)
            while batch := self._inbox.take(BATCH):
                await self._commit(batch)

    async def _commit(self, batch: list[Message]) -> None:
        """Store one batch, then (only then) acknowledge it and tell whoever waits on it."""
        requests = await self._archive(batch)
        self.counters["batches"] += 1  # messages per batch: what group commit achieves
        if self._changes and self.feed is not None:
            changes, self._changes = self._changes, []
            kinds = {LIVE_KINDS[k] for k, _ in changes if k in LIVE_KINDS}
            self.feed.local(kinds, [c for c in changes if c[0] == "enrol"])
        theirs: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for msg in batch:
            if msg.qos == 0:
                continue
            if isinstance(msg, receiver.Received):
                theirs.setdefault((msg.source, msg.generation), []).append((msg.mid, msg.qos))
            else:
                self.client.ack(msg.mid, msg.qos)
        for (source, generation), mids in theirs.items():
            assert self.receivers is not None
            if not self.receivers.ack(source, generation, mids):
                self.counters["acks_dropped"] += len(mids)
        for request in requests:
            self._spawn(self._answer(request))
        if self._alarming:
            # Only a batch with an event the alarms act on, or a door's availability,
            # wakes them; otherwise they run every [alarms] check_seconds.
            self._alarming = False
            self._alarms_wake.set()
        # The batch's parsed events, copies included (a door re-sending what a run covers
        # needs the receipt again); ``_events`` is only refilled by the next batch.
        for row, _ in self._events:
            self._receipt_doors.setdefault((row["door"], row["epoch"]), []).append(row["seq"])
        self._receipts_due.set()
        if self._offers:
            offers, self._offers = self._offers, []
            await self._record_offers(offers)

    async def _record_offers(self, offers: list[m.LocalPeople]) -> None:
        """Doors that refused a snapshot to keep their own people (central/local_people.py)."""
        assert self.offers is not None
        store = self.offers
        for offer in offers:
            try:
                new = await self._loop_call(lambda o=offer: store.record(o, time.time()))
            except Exception:
                self.counters["offer_failed"] += 1
                log.exception("local_people_offer_failed", door=offer.door)
                continue
            if new:
                self.counters["local_offers"] += 1
                log.warning(
                    "door_local_people_offered",
                    door=offer.door,
                    people=offer.total,
                    review=f"edgegate central doors import-local {offer.door}",
                )

    async def _receipt_loop(self) -> None:
        """Tell the doors what is stored now (edgegate/central/receipts.py), at most every
        ``RECEIPT_SECONDS``: the doors of all the batches since are computed at once, so many
        small batches (a loaded office, events shared among instances) do not each pay for
        the runs of their doors."""
        while True:
            await self._receipts_due.wait()
            self._receipts_due.clear()
            doors, later = self.receipts.ready(self._receipt_doors)
            self._receipt_doors = later  # their seqs wait for a later round, kept
            try:
                runs = await self._receipt_runs(doors) if doors else {}
                self.receipts.publish(self.client, self.receipts.due(runs))
            except Exception:
                # The door's next batch computes its run again; it re-sends meanwhile.
                self.counters["receipt_failed"] += 1
                log.exception("receipts_failed", doors=len(doors))
            if self.receipts.held_back or self._receipt_doors:
                self._receipts_due.set()  # their min_gap runs out with no new event
            await asyncio.sleep(RECEIPT_SECONDS)

    async def _receipt_runs(
        self, doors: dict[receipts.Journal, list[int]]
    ) -> dict[receipts.Journal, receipts.Run]:
        """The doors' runs, read on the receipts' thread: committed rows only, and the store
        thread goes on with the next batch meanwhile."""
        assert self._loop is not None and self.engine is not None
        engine = self.engine

        def run() -> dict[receipts.Journal, receipts.Run]:
            with reading(engine) as conn:
                return self.receipts.advance(conn, doors)

        return await self._loop.run_in_executor(self._receipts_thread, run)

    async def _archive(self, batch: list[Message]) -> list[m.SnapshotRequest]:
        """Commit the batch, retrying the same batch until the store takes it.

        A store failure (the master locked by a long import beyond busy_timeout, a full disk)
        must neither end the service nor lose the batch: nothing is acknowledged meanwhile,
        and MQTT 3.1.1 would only redeliver unacknowledged messages after a reconnect, so the
        batch is kept here and retried in order, with backoff."""
        delay = 0.5
        while True:
            now = time.time()
            try:
                requests = await self.call(self._handle, batch, now)
            except Exception:
                log.exception("archive_failed", messages=len(batch), retry_in=delay)
                self.counters["archive_failed"] += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            # Committed: the doors whose last_seen this batch wrote (``_store_events``).
            for key in self._seen_due:
                self._seen_at[key] = now
            return requests

    def changed_here(self, kind: str) -> None:
        """Any thread, after this process committed a change of ``kind`` outside the
        archive's batches (``archive.LiveChanged``: the alarm service's writes, this
        instance's and its console's): its own live feed re-reads it. Only SQLite needs it:
        on PostgreSQL the commit's NOTIFY wakes every instance, this one included."""
        loop, feed = self._loop, self.feed
        if loop is None or feed is None or feed.postgres:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed: serve is stopping
            loop.call_soon_threadsafe(feed.local, (kind,))

    def _tell(self, changes: list[live_feed.Change]) -> None:
        """The live feed's sink (loop thread): whoever listens now (the console, the outbox)."""
        if self.leader and any(k == "event" and i.get("type") in ALARMING for k, i in changes):
            # An alarming event another instance may have archived: the duty holder raises
            # its alarm now, not at the next ``[alarms] check_seconds``.
            self._alarms_wake.set()
        if self.on_committed is not None:
            self.on_committed(changes)

    def _handle(
        self, conn: Connection, batch: list[Message], now: float
    ) -> list[m.SnapshotRequest]:
        """Store thread: one transaction (``call``) for the whole batch. Messages are parsed
        and the doors' rows written first; the batch's events go in last, in one insert
        under the archive's writer lock (archive.py: arrival order is commit order), so that
        lock is held for that insert and the commit only."""
        requests: list[m.SnapshotRequest] = []
        self._changes = []  # a retried batch starts over
        self._events = []
        self._seen_due = []
        self._alarming = False
        for msg in batch:
            # A savepoint per message that writes: one that breaks half-way leaves nothing
            # behind and cannot take the rest of the batch down with it. Events only parse
            # here (they are stored at the end), so they need none: two round trips saved
            # per event.
            try:
                if msg.topic.endswith("/events"):
                    request = self._one(conn, msg, now)
                else:
                    with conn.begin_nested():
                        request = self._one(conn, msg, now)
            except inbound.BadMessage as exc:
                self._reject(conn, msg, exc.reason, exc.detail)
                request = None
            except OperationalError:
                raise  # the store, not the message: the whole batch is retried
            except DBAPIError as exc:
                if exc.connection_invalidated:
                    raise
                log.exception("door_message_failed", topic=msg.topic[:200])
                self._reject(conn, msg, "internal_error", "see the exception above")
                request = None
            except Exception:
                log.exception("door_message_failed", topic=msg.topic[:200])
                self._reject(conn, msg, "internal_error", "see the exception above")
                request = None
            if request is not None:
                requests.append(request)
        if any(kind == "door" for kind, _ in self._changes):
            # Every instance's doors board re-reads (telemetry comes to one instance only).
            archive.announce(conn, live_feed.DOORS)
        self._store_events(conn, now)
        return requests

    def _store_events(self, conn: Connection, now: float) -> None:
        """The batch's events: the ``last_seen`` of the doors not marked for
        ``SEEN_SECONDS`` in one statement (in door order, so two instances updating the same
        doors never wait on each other in a cycle), then one insert. A row the database
        refuses (it should not: the parser checked it) sends the batch's events in one at a
        time, each in its savepoint, so only that one is lost."""
        if not self._events:
            return
        keys = sorted({(r["site"], r["door"]) for r, _ in self._events})
        self._seen_due = [k for k in keys if now - self._seen_at.get(k, -1e9) >= SEEN_SECONDS]
        archive.seen_many(conn, self._seen_due, now)
        rows = [row for row, _ in self._events]
        try:
            with conn.begin_nested():
                new = archive.archive_rows(conn, rows)
        except OperationalError:
            raise
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise
            log.exception("event_batch_refused", events=len(rows))
            new = set()
            held = []  # what the archive holds now: the receipts must not count the rest
            for row, topic in self._events:
                try:
                    with conn.begin_nested():
                        new |= archive.archive_rows(conn, [row])
                    held.append((row, topic))
                except OperationalError:
                    raise
                except DBAPIError as one:
                    if one.connection_invalidated:
                        raise
                    log.exception("door_message_failed", topic=topic[:200])
                    self.counters["rejected_internal_error"] += 1
            self._events = held
        self.counters["events_archived"] += len(new)
        self.counters["duplicate_events"] += len(rows) - len(new)
        if new:
            # The live feed reads them back from the archive (on PostgreSQL the insert's own
            # NOTIFY wakes it): one path for the events of every instance.
            self._changes.append(("event", {}))

    def _reject(self, conn: Connection, msg: Message, reason: str, detail: str) -> None:
        name = f"rejected_{reason}"
        self.counters[name] += 1
        archive.bump(conn, name)
        log.warning("door_message_rejected", topic=msg.topic[:200], reason=reason, detail=detail)

    def _one(self, conn: Connection, msg: Message, now: float) -> m.SnapshotRequest | None:
        where = inbound.classify(msg.topic, self.site)
        site, door = where.site, where.door
        if where.kind == "events":
            event = inbound.parse_event(msg.payload, where)
            # Stored with the rest of the batch, last (``_store_events``).
            self._events.append((archive.event_row(site, door, event, now), msg.topic))
            if event["type"] in WATCHED:
                self._alarming = True
        elif where.kind == "availability":
            if not msg.payload:
                return None  # a retained availability being cleared
            state = inbound.parse_availability(msg.payload)
            if archive.set_availability(conn, site, door, state, now):
                log.info("door_" + state, site=site, door=door)
            # The alarms wake whether or not this write changed the row: availability comes
            # to every instance, and the first to store it may not hold the duties; the
            # holder's own write then changes nothing, yet door_offline is due now, not at
            # the next [alarms] check_seconds. Rare messages: a wake each costs nothing.
            self._alarming = True
            self._changes.append(("door", {"site": site, "door": door}))
        elif where.kind in ("state", "telemetry"):
            if not msg.payload:
                return None
            data = inbound.json_object(msg.payload)
            archive.set_json(conn, site, door, where.kind, data, now)
            version = inbound.telemetry_version(data) if where.kind == "telemetry" else None
            if version is not None:
                archive.set_door_version(conn, site, door, version, now)
            self._changes.append(("door", {"site": site, "door": door}))
        elif where.kind == "credentials/local":
            self._offers.append(inbound.parse_local_people(msg.payload, where))
        elif where.kind == "enrol":
            # A finger enrolment's step: for the console's session (services/biometrics.py).
            progress = inbound.parse_enrol_progress(msg.payload, where)
            self._changes.append(("enrol", {"progress": progress}))
            self.counters["enrol_progress"] += 1
        else:
            request = inbound.parse_snapshot_request(msg.payload, where)
            archive.set_door_version(conn, site, door, request.have, now)
            self.counters["snapshot_requests"] += 1
            return request
        return None

    # --- alarms ---------------------------------------------------------------------------

    async def _alarms_loop(self) -> None:
        """Raise alarms from what was archived, then escalate the overdue ones.

        Escalation must run in one office instance only; until the office has a
        singleton-duty lock this is the one ``central serve`` per site (its MQTT client id
        already allows no second one). Blocking work (the store, SMTP, HTTP) runs in a
        thread so the archive's loop never waits for a slow mail server."""
        period = self.config.alarms.check_seconds
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._alarms_wake.wait(), period)
            self._alarms_wake.clear()
            if not self.leader:
                continue
            try:
                await asyncio.to_thread(self.alarms_once, time.time())
            except Exception:
                self.counters["alarms_failed"] += 1
                log.exception("alarms_failed")

    def alarms_once(self, now: float) -> None:
        assert self.alarms is not None
        raised = self.alarms.ingest(now)
        self.counters["alarms_raised"] += raised
        done = self.alarms.escalate(
            now, self._send_escalation, has_smtp=self.config.smtp is not None, hooks=True
        )
        self.counters["alarms_escalated"] += done

    def _send_escalation(self, channel: str, target: str, esc: Escalation) -> None:
        if channel == "webhook":
            # Signed like the console's webhooks (notify.webhook_headers); no secret, no post.
            try:
                secret = alarm_webhook_secret(self.config.alarms)
            except NotifyError:
                self.counters["alarm_webhook_no_secret"] += 1
                raise
            delivery = f"alarm-{esc.alarm['id']}"
            post_webhook(target, esc.body, secret, event="alarm_escalated", delivery=delivery)
        elif channel == "hooks":
            # The console's registered webhooks wanting alarm_escalated: queued in its outbox
            # (signed and retried there, delivered while the console runs).
            from edgegate.central.services import outbox

            assert self.alarms is not None
            outbox.fan_out(self.alarms.engine, [json.loads(esc.body)])
        else:
            assert self.config.smtp is not None
            send_email(self.config.smtp, target, esc.subject, esc.text)

    # --- the archive's partitions and retention (edgegate/central/retention.py) ----------

    async def _housekeeping(self) -> None:
        while True:
            await self._until_leader()
            try:
                days = self.config.central.archive_retention_days
                await self.call(retention.housekeeping, time.time(), days)
            except Exception:
                self.counters["housekeeping_failed"] += 1
                log.exception("housekeeping_failed")
            await asyncio.sleep(retention.HOUSEKEEPING_SECONDS)

    # --- versions the CLI could not publish -----------------------------------------------

    async def _sweep(self) -> None:
        """The fallback for versions nobody published (a CLI command without a broker). Not
        on any change's path: the console and the API publish right after the commit, and a
        reconnect publishes what is pending at once (``_ready``)."""
        every = self.config.central.pending_sweep_seconds
        while True:
            await asyncio.sleep(every)
            if self.connected.is_set() and self.leader:
                # Only versions older than a sweep: a CLI command publishing right now is
                # left to finish its own (a copy would be refused as replayed anyway).
                await self._publish_pending(every)

    async def _publish_pending(self, min_age: float) -> None:
        if self._publishing or not self.leader:
            return
        self._publishing = True
        try:
            cutoff = time.time() - min_age
            pending = [
                v
                for v in await self.call(master.unpublished)
                if min_age == 0 or v.issued_before(cutoff)
            ]
            if not pending:
                return
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._worker, self._send_versions, pending)
            await self.call(master.mark_published, [v.version for v in pending], time.time())
            self.counters["versions_published"] += len(pending)
            log.info("pending_versions_published", first=pending[0].version, n=len(pending))
        except Exception:
            self.counters["publish_failed"] += 1
            log.exception("pending_versions_failed")
        finally:
            self._publishing = False

    def _send_versions(self, versions: list[master.Version]) -> None:
        topic = site_credentials(self.site)
        infos = [
            publish_signed(self.client, self.signer, topic, v.message(self.site)) for v in versions
        ]
        wait_all(infos, SNAPSHOT_ACK_TIMEOUT, self._stopping)

    # --- visitors (docs/visitors.md) ------------------------------------------------------

    async def _visitors(self) -> None:
        """The visitors' register (arrivals notify hosts) and housekeeping (unreturned cards
        disabled, old visits anonymised). The service uses its own connections, always on
        this one thread, so the loop and the archive's store thread never wait on it."""
        from edgegate.cli.central_visits import desk_for

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="visits")
        loop = asyncio.get_running_loop()
        try:
            desk = await loop.run_in_executor(pool, desk_for, self.config, Writes.BULK)
            smtp = self.config.smtp is not None
            next_sweep = 0.0
            while True:
                await asyncio.sleep(VISITS_SECONDS)
                if not self.leader:
                    continue
                try:
                    now = time.time()
                    out = await loop.run_in_executor(pool, desk.ingest, now)
                    self.counters["visit_notices"] += len(out.notices)
                    sent = await loop.run_in_executor(pool, desk.deliver, smtp, now)
                    self.counters["visit_notices_sent"] += sent
                    if now >= next_sweep:
                        next_sweep = now + VISITS_SWEEP_SECONDS
                        swept = await loop.run_in_executor(pool, desk.sweep, now)
                        if swept.versions and self.connected.is_set():
                            await self._publish_pending(0.0)
                except Exception:
                    self.counters["visits_failed"] += 1
                    log.exception("visits_failed")
        finally:
            pool.shutdown(wait=False)

    # --- snapshots ----------------------------------------------------------------------

    async def _answer(self, request: m.SnapshotRequest) -> None:
        if not self.leader:
            # Every instance sees the request (not a shared subscription); the duty holder
            # answers. Kept a while: if the holder dies now, whoever takes over answers it.
            self.counters["snapshot_left_to_duty_holder"] += 1
            self._unanswered[request.door] = (request, time.monotonic())
            return
        if request.door in self._busy:
            # One snapshot per door at a time; the one in flight is at least as new.
            self.counters["snapshot_coalesced"] += 1
            return
        self._busy.add(request.door)
        try:
            replace = await self._loop_call(lambda: self._replace_local(None, request.door))
            loop = asyncio.get_running_loop()
            # A door a few versions behind gets the versions it missed, not a snapshot; one
            # that must drop its own people (replace) always gets a snapshot.
            delta = None if replace else await self._loop_call(lambda: self._delta(request.have))
            if delta is not None:
                await loop.run_in_executor(self._worker, self._send_delta, delta, request)
                return
            master = await self._loop_call(self._current_master)
            erased = await self._loop_call(lambda: self._erased(request.have, master.version))
            await loop.run_in_executor(
                self._worker, self._send_snapshot, master, request, replace, erased
            )
        except Exception:
            self.counters["snapshot_failed"] += 1
            log.exception("snapshot_failed", door=request.door)
        finally:
            self._busy.discard(request.door)

    def _delta(self, have: int) -> list[master.Version] | None:
        """Store thread: the versions after ``have`` when the log holds every one of them
        and they are at most ``catchup_max_versions``; None: a snapshot it is (a new door,
        one too far behind, or a log with a hole)."""
        assert self.engine is not None
        limit = self.config.central.catchup_max_versions
        if limit == 0 or have == 0:
            return None
        with master.reading(self.engine) as conn:
            latest = current_version(conn)
            if have >= latest or latest - have > limit:
                return None
            versions = master.versions_after(conn, have, latest)
        if [v.version for v in versions] != list(range(have + 1, latest + 1)):
            return None
        if versions[0].base != have or any(v.base != v.version - 1 for v in versions):
            return None
        return versions

    def _send_delta(self, versions: list[master.Version], request: m.SnapshotRequest) -> None:
        """Worker thread: the missed versions again on the site's credentials topic. Many
        doors behind by the same versions (an office outage) share one re-send: a re-send
        covering theirs in the last few seconds answers them too."""
        first, last = versions[0].version, versions[-1].version
        now = time.monotonic()
        done_first, done_last, at = self._last_catchup
        if done_first <= first and done_last >= last and now - at < CATCHUP_COALESCE_SECONDS:
            self.counters["catchup_coalesced"] += 1
            return
        self._send_versions(versions)
        self._last_catchup = (first, last, now)
        self.counters["catchup_deltas"] += 1
        log.info("catchup_sent", door=request.door, have=request.have, versions=len(versions))

    async def _loop_call(self, fn: Any) -> Any:
        assert self._loop is not None
        return await self._loop.run_in_executor(self._store, fn)

    def _current_master(self) -> MasterSet:
        """Store thread. Every master change makes a new version, so a cached set of the
        current version is still exact; many doors asking at once share one read."""
        assert self.engine is not None
        cached = self._master
        if cached is not None:
            with reading(self.engine) as conn:
                if cached.version == current_version(conn):
                    return cached
        c = self.config.central
        self._master = read_master(
            self.engine, chunk_people=c.snapshot_chunk_people, chunk_bytes=c.snapshot_chunk_bytes
        )
        return self._master

    def _erased(self, have: int, upto: int) -> list[str]:
        """Store thread: the people erased since the door's version (``erased_since``)."""
        assert self.engine is not None
        with reading(self.engine) as conn:
            return erased_since(conn, have, upto)

    def _replace_local(self, _conn: Any, door: str) -> bool:
        """Store thread: an operator imported or discarded the door's own people."""
        return self.offers is not None and self.offers.replace_allowed(self.site, door)

    def _send_snapshot(
        self,
        master: MasterSet,
        request: m.SnapshotRequest,
        replace_local: bool = False,
        erased: list[str] | None = None,
    ) -> None:
        """Worker thread: sign and publish every chunk, wait for every PUBACK."""
        started = time.monotonic()
        topic = DoorTopics(self.site, request.door).snapshot
        messages = snapshot_messages(
            master, self.site, request.door, replace_local=replace_local, erased=erased
        )
        infos = [publish_signed(self.client, self.signer, topic, msg) for msg in messages]
        wait_all(infos, SNAPSHOT_ACK_TIMEOUT, self._stopping)
        self.counters["snapshots_sent"] += 1
        log.info(
            "snapshot_sent",
            door=request.door,
            have=request.have,
            version=master.version,
            people=master.people,
            erased=len(erased or ()),
            chunks=len(messages),
            seconds=round(time.monotonic() - started, 3),
        )


async def serve(
    config: CentralConfig, signer: Signer, encode_face: EncodeFace | None = None
) -> None:
    """Run until SIGTERM or SIGINT. ``encode_face``: the face stack's enrolment function for
    the console (None: the face stack is not installed; the console then says so)."""
    server = CentralServer(config, signer)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await server.start()
    # The outbox delivers hosts' notices, alarm webhooks and event webhooks with or without
    # the console; the console (when on) wakes it on every archived change instead.
    # Made off the loop: opening its store may wait for a migration lock, and the loop is
    # already archiving the doors' events.
    runner = await asyncio.to_thread(OutboxRunner, config, lambda: server.leader)
    server.on_committed = runner.committed
    runner.start()
    console = None
    try:
        if config.http is not None:
            # Imported here: an office without [http] never loads the web stack.
            from edgegate.central.web.runtime import ConsoleRuntime

            console = ConsoleRuntime(config, server, encode_face, wake_outbox=runner.wake)
            await console.start()
        await stop.wait()
    finally:
        if console is not None:
            await console.stop()
        await runner.stop()
        await server.stop()
