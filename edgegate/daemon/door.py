"""The door: takes reads from readers, passes them through its gates, asks the core, journals,
then acts through its rules.

This is the hot path of the daemon. A read is decided and journaled in ONE store transaction
(one hop to the store thread, through the journal seam ``DoorJournal``), and only after that
commit does the rules runtime drive the relay and feedback, so no door ever opens without its
decision on disk.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from typing import Any

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edgegate.config.models import Config
from edgegate.contract.visitor_pass import PassRejected, parse_pass
from edgegate.core.assist import AssistTracker
from edgegate.core.decision import CredentialRecord, Decision, Reason, RuleContext, decide
from edgegate.core.gates import Gate
from edgegate.core.passback import PassbackMode
from edgegate.core.pin import PinResult, apply_pin, raises_duress
from edgegate.core.reads import CredentialKind, CredentialRead
from edgegate.core.visitor_pass import VisitorPass, decide_pass
from edgegate.daemon.door_journal import DoorJournal, Entry, EventListener
from edgegate.daemon.pin_wait import PinGate
from edgegate.daemon.rules_runtime import RulesRuntime
from edgegate.daemon.site_rules import SiteRules
from edgegate.hardware.gpio import DoorOutputs
from edgegate.store import pass_uses
from edgegate.store.credentials import get_person_attrs, lookup
from edgegate.store.db import transaction
from edgegate.store.journal import Event
from edgegate.store.pins import pin_hashes
from edgegate.store.rules_state import get_presence, reset_presence, set_presence, today_counts
from edgegate.store.store import AsyncStore

log = structlog.get_logger(__name__)

Clock = Callable[[], float]


class Door:
    """The reader sink and the gates' port (``edgegate.core.gates.GatePort``)."""

    def __init__(
        self,
        config: Config,
        store: AsyncStore,
        outputs: DoorOutputs,
        *,
        clock: Clock = time.time,
        monotonic: Clock = time.monotonic,
        pass_keys: Sequence[Ed25519PublicKey] = (),
    ) -> None:
        self.config = config
        # The office's public keys: visitor QR passes are verified with them, offline.
        self.pass_keys = tuple(pass_keys)
        self.store = store
        # Wall time (``clock``) for timestamps, schedules and validity; ``monotonic`` for every
        # duration (relock, held-open, lockouts, staff-card memory), which a wall-clock step
        # (NTP after an RTC-less boot) must not stretch or cut.
        self.clock = clock
        self.monotonic = monotonic
        self._tasks: set[asyncio.Task[Any]] = set()
        now = self.now
        # The one path to the journal: rows, traffic counts, decision counters, listeners.
        self.journal = DoorJournal(
            store,
            site=config.door.site,
            door=config.door.id,
            turnstile=config.door.mode == "turnstile",
            clock=now,
        )
        self.counters = self.journal.counters
        self._credentials_listeners: list[Callable[[int], None]] = []
        # Latency samples (read's last byte -> relay driven), for telemetry and the benchmark.
        self.latencies_ms: deque[float] = deque(maxlen=1000)
        # Per-reader failure counting for biometric readers (retries, then staff).
        self.assist: dict[str, AssistTracker] = {}
        # Door rules (docs/rules.md): the state machine, lockout, modes; drives the outputs.
        self.rules = RulesRuntime(
            config,
            store,
            outputs,
            self.journal,
            clock=now,
            monotonic=self.mono_now,
            spawn=self.spawn,
        )
        # Keypad PINs: card+PIN waits and the duress PIN (edgegate/daemon/pin_wait.py).
        self.pins = PinGate(self, config.pin, posture_requires=self._posture_requires_pin)
        # Reads are offered to each gate in turn; the composition root may add more in front.
        self.gates: list[Gate] = [self.pins]
        # Rules across doors and by the clock: postures, two-person, offline, interlock.
        self.site = SiteRules(
            config,
            machine=self.rules.posture_input,
            record=lambda type_, fields: self.spawn(self.journal.write([(type_, fields)])),
            clock=now,
            mono=self.mono_now,
        )
        self.rules.site = self.site
        if config.area.reset_after_emergency:
            self.journal.add_listener(self._after_emergency)

    # The door's clocks may be replaced after construction (tests drive them): read them late.
    def now(self) -> float:
        return self.clock()

    def mono_now(self) -> float:
        return self.monotonic()

    def _posture_requires_pin(self) -> bool:
        return self.site.pin_required()

    # --- listeners -------------------------------------------------------------------------
    def add_listener(self, fn: EventListener) -> None:
        """Called with every journaled event, on the loop, after it is committed."""
        self.journal.add_listener(fn)

    def add_credentials_listener(self, fn: Callable[[int], None]) -> None:
        """``fn(version)`` is called on the loop after credentials changed and were committed
        (an MQTT update or snapshot): the face gallery and fingerprint library resync."""
        self._credentials_listeners.append(fn)

    def credentials_changed(self, version: int) -> None:
        for fn in self._credentials_listeners:
            try:
                fn(version)
            except Exception:
                log.exception("credentials_listener_failed", version=version)

    # --- journal ---------------------------------------------------------------------------
    async def record(self, type_: str, **fields: Any) -> Event:
        """Journal an event that changes no other state (faults, alarms)."""
        return await self.journal.record(type_, **fields)

    def spawn(self, coro: Coroutine[Any, Any, object]) -> None:
        # Keep a reference: the loop only holds weak references to tasks.
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- ReaderSink ------------------------------------------------------------------------
    def credential(self, read: CredentialRead) -> None:
        self._offer(read, self.gates)

    def submit(self, read: CredentialRead, after: Gate) -> None:
        """A gate hands a read on to the gates behind it (GatePort)."""
        self._offer(read, self.gates[self.gates.index(after) + 1 :])

    def _offer(self, read: CredentialRead, gates: list[Gate]) -> None:
        for gate in gates:
            if gate.offer(read):
                return
        self.spawn(self.handle_read(read))

    def fault(self, reader: str, reason: str) -> None:
        self.spawn(self.record("reader_fault", reader=reader, error=reason))
        self.rules.reader_fault(reader)

    def recovered(self, reader: str) -> None:
        self.spawn(self.record("reader_recovered", reader=reader))
        self.rules.reader_recovered(reader)

    def reader_event(self, reader: str, type_: str, **fields: Any) -> None:
        self.spawn(self.record(type_, reader=reader, **fields))

    # --- modes and commands (the CLI and tests; the sync layer uses the rules' port) --------
    def set_mode(self, mode: str, source: str) -> None:
        """See ``RulesRuntime.set_mode``."""
        self.rules.set_mode(mode, source)

    def staff_release(self, staff: str | None, source: str, person: str | None = None) -> None:
        """Staff let someone through (attended mode or any time): one release, journaled as
        staff_release with the staff id and the waiting person."""
        self.rules.staff_release(staff, source, person)

    def state(self) -> dict[str, Any]:
        """For MQTT ``state``/``telemetry``: lock, contact, mode, alarms, lockouts."""
        return self.rules.state()

    async def today_counts(self) -> dict[str, int]:
        """Today's traffic at this door (granted, denied, passages, exits) for telemetry."""
        return await self.store.call(today_counts, self.config.door.id, self.clock())

    # --- decisions -------------------------------------------------------------------------
    def _evaluate(
        self, conn: sqlite3.Connection, read: CredentialRead, ctx: RuleContext, now: float
    ) -> Decision:
        record = lookup(conn, read.kind, read.value)
        policy = ctx.policy
        if record is not None and policy.passback is not PassbackMode.OFF:
            ctx = replace(ctx, presence=get_presence(conn, record.person_id, policy.area))
        return decide(read, record, now, context=ctx)

    def _evaluate_pass(
        self, conn: sqlite3.Connection, read: CredentialRead, ctx: RuleContext, now: float
    ) -> tuple[Decision, VisitorPass | None, dict[str, Any]]:
        """A QR pass: verified from its token alone; the store adds only what the office
        pushed about it (revoked, the visit's exit hold) and whether it was used here."""
        try:
            token = parse_pass(read.value, self.pass_keys)
        except PassRejected as exc:
            log.warning(
                "visitor_pass_refused", reader=read.reader, why=exc.reason, detail=exc.detail
            )
            return decide_pass(read, None, now, context=ctx), None, {"detail": exc.detail}
        vp = VisitorPass(
            token.pass_id, token.visit_id, token.zones, token.not_before, token.not_after,
            token.single,
        )  # fmt: skip
        stored = lookup(conn, "qr", token.pass_id)
        attrs = get_person_attrs(conn, token.visit_id) or {}
        revoked = stored is not None and not (stored.enabled and stored.person_enabled)
        policy = ctx.policy
        if policy.passback is not PassbackMode.OFF:
            ctx = replace(ctx, presence=get_presence(conn, token.visit_id, policy.area))
        decision = decide_pass(
            read,
            vp,
            now,
            revoked=revoked,
            used=pass_uses.is_used(conn, token.pass_id),
            attrs=attrs,
            context=ctx,
        )
        # Door events carry the pass and visit ids, never a visitor's name (PRODUCT.md).
        return decision, vp, {"credential": token.pass_id, "visit": token.visit_id}

    def evaluate_tx(
        self, conn: sqlite3.Connection, read: CredentialRead, ctx: RuleContext
    ) -> Decision:
        """The decision a read would get now, journaling nothing (card+PIN's first step)."""
        return self._evaluate(conn, read, ctx, self.clock())

    async def lookup(self, kind: CredentialKind, value: str) -> CredentialRecord | None:
        """GatePort: the store's credential and person for a value."""
        return await self.store.call(lookup, kind, value)

    async def pin_hashes(self, person_id: str) -> tuple[str | None, str | None]:
        """GatePort: the person's PIN and duress PIN hashes."""
        return await self.store.call(pin_hashes, person_id)

    async def evaluate(self, read: CredentialRead) -> Decision:
        """GatePort: ``evaluate_tx`` under the rules as they stand now, one store hop."""
        ctx = self.rules.context(read, self.clock())
        return await self.store.call(self.evaluate_tx, read, ctx)

    def _decide_tx(
        self,
        conn: sqlite3.Connection,
        read: CredentialRead,
        ctx: RuleContext,
        pin: PinResult | None = None,
    ) -> tuple[Decision, list[Event]]:
        now = self.clock()
        policy = ctx.policy
        with transaction(conn):
            visitor_pass: VisitorPass | None = None
            extra: dict[str, Any] = {}
            if read.kind == CredentialKind.QR:
                decision, visitor_pass, extra = self._evaluate_pass(conn, read, ctx, now)
            else:
                decision = self._evaluate(conn, read, ctx, now)
            if pin is not None:
                decision = apply_pin(decision, pin)
            fields: dict[str, Any] = {
                "kind": str(read.kind),
                "credential": read.value if read.kind == "card" else None,
                "person": decision.person_id,
                "direction": str(read.direction),
                "reader": read.reader,
                # The anti-passback area: peer doors of the area and the office's muster list
                # apply a grant to this area's presence.
                "area": policy.area,
                "partner": decision.partner,
            }
            if read.score is not None:
                fields["score"] = read.score
            if read.factors:
                fields["factors"] = list(read.factors)
            if not decision.granted:
                fields["reason"] = str(decision.reason)
            if decision.flags:
                fields["flags"] = list(decision.flags)
            fields.update(extra)
            if pin is not None:
                # A duress entry looks like the right PIN here; the alarm is its own event.
                fields["pin"] = str(PinResult.OK if pin is PinResult.DURESS else pin)
            entries: list[Entry] = [(decision.event_type, fields)]
            if raises_duress(decision, pin):
                duress = {
                    "person": decision.person_id,
                    "reader": read.reader,
                    "credential": read.value,
                }
                entries.append(("duress", duress))
            events = self.journal.write_tx(conn, entries, now)
            # Presence changes with the journal row or not at all (restart-safe).
            if decision.granted and decision.person_id is not None:
                set_presence(
                    conn,
                    decision.person_id,
                    policy.area,
                    str(read.direction),
                    now,
                    door=self.config.door.id,
                    seq=events[0].seq,
                )
            if decision.granted and visitor_pass and visitor_pass.used_up_by(str(read.direction)):
                pass_uses.mark_used(conn, visitor_pass.pass_id, visitor_pass.not_after, now)
        return decision, events

    async def handle_read(
        self, read: CredentialRead, pin: PinResult | None = None
    ) -> Decision | None:
        try:
            ctx = self.rules.context(read, self.clock())
            decision, events = await self.store.call(self._decide_tx, read, ctx, pin)
        except Exception:
            # The store failed: nothing is journaled, so nothing opens. Logged and counted.
            self.count_error()
            log.exception("decision_failed", reader=read.reader, kind=str(read.kind))
            return None
        self.rules.decided(decision, read)
        if decision.granted and decision.person_id and self.site.first_arrival_waiting:
            self.spawn(self._first_arrival(decision.person_id))
        if decision.granted:
            self.biometric_success(read.reader)
        latency = (time.perf_counter() - read.t) * 1000
        self.latencies_ms.append(latency)
        event = events[0]
        log.info(
            event.type,
            seq=event.seq,
            person=decision.person_id,
            kind=str(read.kind),
            reader=read.reader,
            reason=None if decision.granted else str(decision.reason),
            latency_ms=round(latency, 3),
        )
        for ev in events:
            if ev.type == "duress":
                log.warning("duress", seq=ev.seq, person=decision.person_id, reader=read.reader)
        self.journal.publish(events)
        return decision

    async def deny(
        self,
        kind: str,
        reader: str,
        reason: Reason,
        *,
        lockout: bool,
        **fields: object,
    ) -> None:
        """GatePort: journal a denial the decision core did not make (a PIN with no card, a
        card+face time-out, an unmatched finger or face), then signal it through the rules."""
        try:
            await self.journal.record(
                "access_denied", kind=kind, reader=reader, reason=str(reason), **fields
            )
        except Exception:
            self.count_error()
            log.exception("decision_failed", reader=reader, kind=kind)
            return
        self.rules.refused(reader, reason, lockout=lockout)

    def retry(self) -> None:
        """GatePort: ask for another try."""
        self.rules.retry()

    def biometric_success(self, reader: str) -> None:
        tracker = self.assist.get(reader)
        if tracker is not None:
            tracker.success()

    def count_error(self) -> None:
        self.counters["errors"] += 1

    # --- presence after an evacuation -------------------------------------------------------
    def reset_presence(self, source: str) -> None:
        """Forget everyone's presence in this door's area (journaled as presence_reset)."""
        self.spawn(self._reset_presence(source))

    async def _reset_presence(self, source: str) -> None:
        area = self.rules.policy.area
        events = await self.store.call(self._reset_presence_tx, area, source)
        log.warning("presence_reset", area=area, source=source, people=events[0].payload["people"])
        self.journal.publish(events)

    def _reset_presence_tx(self, conn: sqlite3.Connection, area: str, source: str) -> list[Event]:
        with transaction(conn):
            people = reset_presence(conn, area)
            entry = ("presence_reset", {"area": area, "people": people, "source": source})
            return self.journal.write_tx(conn, [entry], self.clock())

    def _after_emergency(self, event: Event) -> None:
        if event.type == "emergency_off":
            self.reset_presence("emergency_reset")

    async def _first_arrival(self, person_id: str) -> None:
        """A grant while a first-to-arrive window waits: does this person open it?"""
        attrs = await self.store.call(get_person_attrs, person_id) or {}
        groups = attrs.get("groups")
        # attrs come from JSON: a list of group names, or anything else from a bad import.
        names = groups if isinstance(groups, list) else []
        self.site.granted_groups(frozenset(str(g) for g in names))

    # --- biometric retries ------------------------------------------------------------------
    def attempt_failed(self, reader: str, kind: str, reason: str, *, poor: bool) -> None:
        """A biometric reader saw someone it could not match (``poor``: a bad capture).

        A bad capture only asks for another try (retry signal, not journaled: nobody was
        identified or refused); an unmatched finger or face is a denial and is journaled.
        Either counts towards calling staff with ``assist_requested``.
        """
        self.spawn(self._attempt_failed(reader, kind, reason, poor))

    async def _attempt_failed(self, reader: str, kind: str, reason: str, poor: bool) -> None:
        if poor:
            self.retry()
        else:
            await self.deny(kind, reader, Reason.UNKNOWN, lockout=False, detail=reason)
        tracker = self.assist.get(reader)
        if tracker is not None and tracker.failure(self.monotonic()):
            log.warning("assist_requested", reader=reader, kind=kind, failures=tracker.count)
            await self.record(
                "assist_requested",
                kind=kind,
                reader=reader,
                failures=tracker.count,
                last_reason=reason,
            )

    async def drain(self) -> None:
        """Wait for in-flight decisions (used on shutdown and in tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
