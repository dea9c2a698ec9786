"""The door's MQTT sync service: started by the Daemon when ``[mqtt]`` is configured.

It gets narrow ports from the composition root (edgegate/sync/ports.py: the door's controls,
its journal seam, a status source) and the store, never the Daemon or Door objects. Inbound
topics are one table, ``routes`` (topic -> what to do with a message), from which the
subscriptions are derived.

Owns the broker link (edgegate/sync/link.py), the journal drain, ``state`` / ``availability``
/ ``telemetry``, and the inbound side: commands (handled at once, on the loop) and credential
updates and snapshot chunks (one worker, in arrival order; large payloads are verified and
parsed in an executor so a 100,000-person snapshot never holds the loop).

Anything inbound that is refused is logged (``mqtt_message_rejected``) and counted by reason
in telemetry ``rejected``; the door goes on deciding.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edgegate.config.models import Config
from edgegate.contract.messages import (
    Command,
    CredentialUpdate,
    EnrolFingerArgs,
    EnrolProgress,
    Receipt,
    SnapshotChunk,
    SnapshotRequest,
    parse_signed,
)
from edgegate.contract.signing import RejectedMessage, Verifier, public_text
from edgegate.contract.topics import DoorTopics
from edgegate.core.areas import Passage
from edgegate.mqtt.client import default_client_id
from edgegate.store import credential_sync as cs
from edgegate.store import sealed
from edgegate.store.db import transaction
from edgegate.store.rules_state import merge_presence
from edgegate.store.store import AsyncStore
from edgegate.sync import credentials_apply as ca
from edgegate.sync import snapshot_steps, telemetry
from edgegate.sync.commands import CommandHandler
from edgegate.sync.drain import Drainer
from edgegate.sync.link import MqttLink
from edgegate.sync.parse_worker import ChunkParser
from edgegate.sync.peers import Peers, SiteRulesPort
from edgegate.sync.ports import DoorControl, DoorJournalPort, StatusSource
from edgegate.sync.receipts import ReceiptKeeper

log = structlog.get_logger(__name__)

# Payloads above this are verified and parsed off the loop (CPU: JSON + pydantic + Ed25519).
INLINE_PAYLOAD = 64 * 1024
SNAPSHOT_REQUEST_HOLDOFF = 30.0
PRUNE_SECONDS = 600.0

RetainedSource = Callable[[], list[tuple[str, bytes | str, bool]]]


def _merge_presence_tx(conn: sqlite3.Connection, passage: Passage) -> bool:
    with transaction(conn):
        return merge_presence(conn, passage)


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class Route:
    """What the service does with a message on one topic: ``receive`` on the loop at once
    (start it, or queue it for the worker that keeps the topic's order), ``handle`` to the
    end (what the worker runs; tests call it through ``SyncService.handle``)."""

    receive: Callable[[bytes], None]
    handle: Callable[[bytes], Awaitable[None]]


class SyncService:
    def __init__(
        self,
        config: Config,
        *,
        store: AsyncStore,
        door: DoorControl,
        journal: DoorJournalPort,
        status: StatusSource,
        on_credentials_changed: Callable[[int], None],
        clock: Callable[[], float],
        site_rules: SiteRulesPort,
        on_silence: Callable[[str], bool] | None = None,
        on_doctor: Callable[[str], None] | None = None,
        on_reset_presence: Callable[[str], None] = lambda _source: None,
        on_enrol_finger: Callable[[str, EnrolFingerArgs], None] | None = None,
        central_keys: Sequence[Ed25519PublicKey] = (),
    ) -> None:
        """``central_keys``: the office's public keys (``mqtt.client.central_keys``, read once
        by the composition root); without any, nothing signed is accepted."""
        assert config.mqtt is not None
        self.store = store
        self.door = door
        self.journal = journal
        self.status = status
        self.on_credentials_changed = on_credentials_changed
        self.clock = clock
        self.storage = config.storage
        self.cfg = config.mqtt
        dcfg = self.door_config = config.door
        self.topics = DoorTopics(dcfg.site, dcfg.id)
        t = self.topics
        self.routes: dict[str, Route] = {
            t.cmd: Route(self._receive_command(t.cmd), self._command_handler(t.cmd)),
            t.all_cmd: Route(self._receive_command(t.all_cmd), self._command_handler(t.all_cmd)),
            t.credentials: Route(self._updates_put, self._handle_update_payload),
            t.snapshot: Route(self._receive_chunk, self._handle_chunk_payload),
        }
        if self.cfg.receipts:
            self.routes[t.receipts] = Route(self._receive_receipt, self.handle_receipt)
        keys = list(central_keys)
        self.verifier = Verifier(keys) if keys else None
        self.chunk_parser = ChunkParser([public_text(k) for k in keys])
        # The site rules' peers and the office's presence (edgegate/sync/peers.py): its own
        # table of topics (some wildcards), consulted when ``routes`` has none.
        self.peers = Peers(config, site_rules, self._merge_presence, self._spawn)
        self.link = MqttLink(
            self.cfg,
            self.cfg.client_id or default_client_id(dcfg.site, dcfg.id),
            will_topic=self.topics.availability,
            subscriptions=[(topic, 1) for topic in self.routes] + self.peers.subscriptions(),
        )
        self.drainer = Drainer(
            store,
            self.link,
            self.topics.events,
            window=self.cfg.max_inflight,
            ahead=self.cfg.receipt_window if self.cfg.receipts else None,
        )
        # Receipts off (a third-party consumer): the broker's PUBACK ends the door's duty.
        self.receipts = (
            ReceiptKeeper(
                store,
                self.drainer,
                self.link.connected,
                site=dcfg.site,
                door=dcfg.id,
                timeout=self.cfg.receipt_timeout_seconds,
                probe=self.cfg.max_inflight,
            )
            if self.cfg.receipts
            else None
        )
        self.commands = CommandHandler(
            door,
            journal,
            store,
            site=dcfg.site,
            door_id=dcfg.id,
            max_age_seconds=self.cfg.command_max_age_seconds,
            on_sync=self.request_sync,
            on_silence=on_silence,
            on_doctor=on_doctor,
            on_reset_presence=on_reset_presence,
            on_enrol_finger=on_enrol_finger,
        )
        self.rejected: Counter[str] = Counter()
        self.counters: Counter[str] = Counter()
        # Extra retained messages published on every (re)connect, e.g. Home Assistant
        # discovery: ``service.retained_sources.append(lambda: [(topic, payload, retain)])``.
        self.retained_sources: list[RetainedSource] = []
        self._updates: asyncio.Queue[bytes] = asyncio.Queue()
        self._chunks: asyncio.Queue[asyncio.Future[Any]] = asyncio.Queue()
        self._last_state: bytes | None = None
        self._state_check_scheduled = False
        self._last_request = -1e9
        self._seal_key: bytes | None = None
        self._cleaning: asyncio.Task[None] | None = None
        self._peer_tasks: set[asyncio.Future[Any]] = set()
        self.version = 0
        self.gap_pending = False
        # Set once the service is set up (seen command ids loaded, link started).
        self.ready = asyncio.Event()

    # --- life cycle --------------------------------------------------------------------------
    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        storage = self.storage
        with contextlib.suppress(sealed.SealError, OSError):
            self._seal_key = await loop.run_in_executor(
                None, sealed.load_key, storage.path, storage.key_file
            )
        self.version = await self.store.call(cs.get_version)
        await self.commands.load_seen()
        self.journal.add_listener(self.drainer.notify)
        self.journal.add_listener(lambda _e: self._schedule_state())
        self.door.add_state_listener(self._schedule_state)
        self.link.on_message(self._on_message)
        self.link.on_connected(self._on_connected)
        self.link.on_disconnected(lambda: self.peers.link_changed(False))
        self.link.start()
        self.ready.set()
        log.info(
            "mqtt_sync_started",
            host=self.cfg.host,
            port=self.cfg.port,
            keys=len(self.chunk_parser.key_texts),
            credentials_version=self.version,
        )
        tasks = [
            asyncio.create_task(self.drainer.run(), name="mqtt-drain"),
            asyncio.create_task(self._updates_worker(), name="mqtt-updates"),
            asyncio.create_task(self._chunks_worker(), name="mqtt-chunks"),
            asyncio.create_task(self._telemetry_loop(), name="mqtt-telemetry"),
            asyncio.create_task(self._prune_loop(), name="mqtt-prune"),
        ]
        if self.receipts is not None:
            tasks.append(asyncio.create_task(self.receipts.run(), name="mqtt-receipts"))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for t in done:
                t.result()  # a crashed part crashes the service: the health check sees it
        finally:
            if self._cleaning is not None:
                tasks.append(self._cleaning)
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            await self.link.stop([(self.topics.availability, b"offline", True)])
            self.chunk_parser.close()

    def _on_connected(self, session_present: bool) -> None:
        msgs: list[tuple[str, bytes | str, bool]] = [(self.topics.availability, b"online", True)]
        self.peers.link_changed(True)
        self._last_state = None
        for source in self.retained_sources:
            try:
                msgs.extend(source())
            except Exception:
                log.exception("retained_source_failed")
        for topic, payload, retain in msgs:
            self.link.publish_nowait(topic, payload, qos=1, retain=retain)
        self._publish_state()
        if self.version == 0:
            self.request_snapshot("new", force=True)
        elif self.gap_pending:
            self.request_snapshot("gap", force=True)

    # --- peers -------------------------------------------------------------------------------
    async def _merge_presence(self, passage: Passage) -> bool:
        return await self.store.call(_merge_presence_tx, passage)

    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._peer_tasks.add(task)
        task.add_done_callback(self._peer_tasks.discard)

    # --- state ---------------------------------------------------------------------------------
    def _schedule_state(self) -> None:
        # Many changes in one loop turn (a grant: event, lock, LED) make one publish.
        if not self._state_check_scheduled:
            self._state_check_scheduled = True
            asyncio.get_running_loop().call_soon(self._publish_state)

    def _publish_state(self) -> None:
        self._state_check_scheduled = False
        if not self.link.connected.is_set():
            return
        state = self.door.state()
        dcfg = self.door_config
        # Name and location feed the office's equipment register.
        payload = _dumps(
            {
                "site": self.topics.site,
                "door": self.topics.door,
                "name": dcfg.name,
                "location": dcfg.location,
                **state,
            }
        )
        if payload == self._last_state:
            return
        self._last_state = payload
        self.link.publish_nowait(self.topics.state, payload, qos=1, retain=True)

    # --- telemetry and housekeeping ----------------------------------------------------------
    async def telemetry(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"sync": dict(self.counters), "peers": dict(self.peers.counters)}
        if self.receipts is not None:
            extra["receipts"] = {"upto": self.receipts.upto, **self.receipts.counters}
        return await telemetry.build(
            self.status,
            self.store,
            door=self.door_config,
            area=self.door.area,
            storage_path=self.storage.path,
            link=self.link,
            drainer=self.drainer,
            rejected=self.rejected,
            extra=extra,
        )

    async def _telemetry_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.telemetry_seconds)
            if not self.link.connected.is_set():
                continue
            try:
                body = await self.telemetry()
            except Exception:
                log.exception("telemetry_failed")
                continue
            # QoS 0: a telemetry message lost in a reconnect is replaced by the next one.
            self.link.publish_nowait(self.topics.telemetry, _dumps(body), qos=0)

    async def _prune_loop(self) -> None:
        while True:
            try:
                await self.drainer.prune(
                    self.cfg.keep_sent_events,
                    self.cfg.keep_sent_days,
                    archived_only=self.cfg.receipts,
                )
            except Exception:
                log.exception("journal_prune_failed")
            await asyncio.sleep(PRUNE_SECONDS)

    # --- snapshot requests -------------------------------------------------------------------
    def request_sync(self, reason: str) -> None:
        self.request_snapshot(reason, force=True)

    def request_snapshot(self, reason: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_request < SNAPSHOT_REQUEST_HOLDOFF:
            return
        self._last_request = now
        self.counters["snapshot_requests"] += 1
        req = SnapshotRequest(
            type="snapshot_request",
            site=self.topics.site,
            door=self.topics.door,
            have=self.version,
            reason=reason,
        )
        log.info("snapshot_requested", have=self.version, reason=reason)
        self.link.publish_nowait(self.topics.snapshot_request, req.model_dump_json().encode())

    # --- inbound -------------------------------------------------------------------------------
    def publish_enrol(self, progress: EnrolProgress) -> None:
        """A step of an office enrolment (``enrol_finger``) to the office, QoS 1. Not kept
        while the broker is away: an enrolment the office did not hear end is retried."""
        self.link.publish_nowait(self.topics.enrol, progress.model_dump_json().encode())

    def reject(self, topic: str, exc: RejectedMessage) -> None:
        self.rejected[exc.reason] += 1
        log.warning("mqtt_message_rejected", reason=exc.reason, topic=topic, detail=exc.detail)

    def _verify(self, payload: bytes, model: type[Any]) -> Any:
        if self.verifier is None:
            raise RejectedMessage("unknown_key", "no central public key configured")
        return parse_signed(self.verifier, payload, model)

    def _on_message(self, topic: str, payload: bytes) -> None:
        """Called on the loop for every message: commands at once; credential updates in
        order on one worker; snapshot chunks start parsing at once (worker process) and are
        staged in order on another, so chunk k+1 parses while chunk k is staged."""
        route = self.routes.get(topic)
        if route is None:
            if (peer := self.peers.handler_for(topic)) is not None:
                peer(topic, payload)
                return
            self.reject(topic, RejectedMessage("malformed", "unexpected topic"))
            return
        route.receive(payload)

    async def handle(self, topic: str, payload: bytes) -> None:
        """Process one inbound message to the end (what the workers do; used by tests)."""
        route = self.routes.get(topic)
        if route is None:
            if (peer := self.peers.handler_for(topic)) is not None:
                peer(topic, payload)
                return
            self.reject(topic, RejectedMessage("malformed", "unexpected topic"))
            return
        await route.handle(payload)

    # The routes' parts, one per topic kind.
    def _receive_command(self, topic: str) -> Callable[[bytes], None]:
        def receive(payload: bytes) -> None:
            asyncio.get_running_loop().create_task(self.handle_command(topic, payload))

        return receive

    def _command_handler(self, topic: str) -> Callable[[bytes], Awaitable[None]]:
        async def handle(payload: bytes) -> None:
            await self.handle_command(topic, payload)

        return handle

    def _updates_put(self, payload: bytes) -> None:
        self._updates.put_nowait(payload)

    async def _handle_update_payload(self, payload: bytes) -> None:
        await self._guard(self.topics.credentials, self._update(payload))

    def _receive_chunk(self, payload: bytes) -> None:
        self._chunks.put_nowait(self._start_chunk(payload))

    async def _handle_chunk_payload(self, payload: bytes) -> None:
        await self._guard(self.topics.snapshot, self._chunk(self._start_chunk(payload)))

    def _receive_receipt(self, payload: bytes) -> None:
        asyncio.get_running_loop().create_task(self.handle_receipt(payload))

    async def _parse(self, payload: bytes, model: type[Any]) -> Any:
        if len(payload) <= INLINE_PAYLOAD:
            return self._verify(payload, model)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._verify, payload, model)

    async def handle_command(self, topic: str, payload: bytes) -> None:
        try:
            cmd: Command = await self._parse(payload, Command)
            if topic == self.topics.all_cmd and cmd.door != "all":
                raise RejectedMessage("wrong_door", "door must be 'all' on all/cmd")
            self.commands.check(cmd)
        except RejectedMessage as exc:
            self.reject(topic, exc)
            return
        self.counters["commands"] += 1
        await self.commands.execute(cmd)

    async def handle_receipt(self, payload: bytes) -> None:
        assert self.receipts is not None
        try:
            await self.receipts.handle(self._verify(payload, Receipt))
        except RejectedMessage as exc:
            self.reject(self.topics.receipts, exc)
        except Exception:
            # A store failure: the next receipt (retained, and sent again on re-sends) covers it.
            self.counters["receipt_errors"] += 1
            log.exception("receipt_apply_failed")

    def _start_chunk(self, payload: bytes) -> asyncio.Future[Any]:
        if len(payload) > INLINE_PAYLOAD:
            return asyncio.ensure_future(
                self.chunk_parser.parse(payload, self._seal_key, self.clock())
            )
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        try:
            fut.set_result((self._verify(payload, SnapshotChunk), None))
        except RejectedMessage as exc:
            fut.set_exception(exc)
        return fut

    async def _update(self, payload: bytes) -> None:
        await self.handle_update(await self._parse(payload, CredentialUpdate))

    async def _chunk(self, parsed: asyncio.Future[Any]) -> None:
        result = await parsed
        await self.handle_chunk(result[0], None if result[1] is None else result[1:])

    async def _guard(self, topic: str, work: Any) -> None:
        try:
            await work
        except RejectedMessage as exc:
            self.reject(topic, exc)
        except Exception:
            # A store failure: nothing applied; the next update (or a gap) recovers.
            self.counters["apply_errors"] += 1
            log.exception("credentials_apply_failed", topic=topic)

    async def _updates_worker(self) -> None:
        while True:
            payload = await self._updates.get()
            await self._guard(self.topics.credentials, self._update(payload))

    async def _chunks_worker(self) -> None:
        while True:
            parsed = await self._chunks.get()
            await self._guard(self.topics.snapshot, self._chunk(parsed))

    async def handle_update(self, msg: CredentialUpdate) -> None:
        if msg.site != self.topics.site:
            raise RejectedMessage("wrong_door", f"for site {msg.site}")
        outcome, event = await self.store.call(
            ca.apply_update,
            msg,
            journal_tx=self.journal.write_tx,
            seal_key=self._seal_key,
            now=self.clock(),
        )
        if outcome == "replayed":
            raise RejectedMessage("replayed", f"version {msg.version} <= {self.version}")
        if outcome == "gap":
            self.counters["gaps"] += 1
            self.gap_pending = True
            log.warning("credentials_gap", have=self.version, base=msg.base, version=msg.version)
            self.request_snapshot("gap")
            return
        self.counters["updates"] += 1
        self.gap_pending = False
        self._changed(msg.version, event)

    async def handle_chunk(
        self, msg: SnapshotChunk, rows: tuple[list[Any], list[Any]] | None = None
    ) -> None:
        """Stage a chunk (``rows``: already built by the worker process) and swap the set in
        when it was the last one missing."""
        if msg.site != self.topics.site or msg.door != self.topics.door:
            raise RejectedMessage("wrong_door", f"for {msg.site}/{msg.door}")
        if msg.version < self.version:
            raise RejectedMessage("replayed", f"snapshot {msg.version} < {self.version}")
        if rows is None:
            rows = ca.chunk_rows(msg, self._seal_key, self.clock())
        await snapshot_steps.stage(self.store, msg, rows)
        self.counters["snapshot_chunks"] += 1
        log.debug("snapshot_chunk_staged", snapshot=msg.snapshot, chunk=msg.chunk, of=msg.chunks)
        try:
            done = await snapshot_steps.finish(
                self.store,
                msg.snapshot,
                journal_tx=self.journal.write_tx,
                now=self.clock(),
                replace_local=msg.replace_local,
            )
        except snapshot_steps.LocalPeopleHeld as held:
            await self._hold_local(held)
            raise
        if done is None:
            return
        if done.orphans:
            log.warning("snapshot_orphan_credentials", count=done.orphans, snapshot=msg.snapshot)
        log.info(
            "snapshot_applied",
            version=done.version,
            snapshot=msg.snapshot,
            swap_ms=round(done.swap_ms, 2),
            **{
                k: v
                for k, v in done.event.payload.items()
                if k in ("people", "credentials", "erased")
            },
        )
        self.counters["snapshots"] += 1
        self.gap_pending = False
        self._changed(done.version, done.event)
        if self._cleaning is None or self._cleaning.done():
            self._cleaning = asyncio.create_task(
                snapshot_steps.clean_old(self.store), name="snapshot-clean"
            )

    async def _hold_local(self, held: snapshot_steps.LocalPeopleHeld) -> None:
        """A snapshot refused to keep the door's own people: say so (journal, log, counter)
        and offer them to the office, where an operator imports or discards them."""
        self.counters["snapshots_refused"] += 1
        if held.event is not None:
            self.journal.publish([held.event])
        log.warning("snapshot_refused_local_people", version=held.version, people=held.local)
        offer = await self.store.call(ca.local_offer, self.topics.site, self.topics.door)
        self.link.publish_nowait(self.topics.local_people, offer.model_dump_json().encode())

    def _changed(self, version: int, event: Any) -> None:
        self.version = version
        # The hold-off only stops repeating an unanswered request; after a change a new gap
        # is a new question.
        self._last_request = -1e9
        if event is not None:
            self.journal.publish([event])
        self.on_credentials_changed(version)
