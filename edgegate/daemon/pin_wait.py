"""Card+PIN at the door: a valid card waits for its holder's PIN on the same reader.

The Door hands this module every PIN read and, when ``[pin] require`` is on, every card read
from a reader that asks for PINs. A card is first evaluated without journaling (one read-only
store hop): a refused card is decided and journaled at once the usual way, a valid one waits
up to ``[pin] timeout_seconds`` for a PIN from the same reader. The PIN is checked against the
person's stored hashes in a worker thread, and the card is then decided for good, PIN result
included, in one transaction (the door's ``handle_read(read, pin=...)``), so a wrong PIN or a
timeout is a journaled denial that counts toward the reader's lockout. The gate holds no door:
it works through the ``GatePort`` (edgegate/core/gates.py).

A PIN that arrives with no card waiting (PIN-only is not a credential here) is refused and
journaled as an ``unknown`` pin denial; the digits are never journaled or logged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace

import structlog

from edgegate.config.models import PinConfig
from edgegate.core.decision import Reason
from edgegate.core.gates import GatePort
from edgegate.core.pin import DuressScheme, PinResult, check_pin
from edgegate.core.reads import CredentialKind, CredentialRead

log = structlog.get_logger(__name__)


@dataclass
class _Waiting:
    read: CredentialRead
    person_id: str
    timer: asyncio.TimerHandle


class PinGate:
    """A ``Gate``: takes every PIN read, and the card reads that must be followed by a PIN."""

    def __init__(
        self, port: GatePort, cfg: PinConfig, *, posture_requires: Callable[[], bool]
    ) -> None:
        """``posture_requires()``: whether a card+PIN posture window runs now."""
        self.port = port
        self.cfg = cfg
        self.posture_requires = posture_requires
        self.scheme = DuressScheme(self.cfg.duress)
        self._readers = frozenset(self.cfg.readers)
        self._waiting: dict[str, _Waiting] = {}

    def requires(self, read: CredentialRead) -> bool:
        """Whether this card read must be followed by a PIN: always with ``[pin] require``,
        or while a card+PIN posture window runs (edgegate/daemon/site_rules.py)."""
        return (
            (self.cfg.require or self.posture_requires())
            and read.kind == CredentialKind.CARD
            and (not self._readers or read.reader in self._readers)
        )

    def offer(self, read: CredentialRead) -> bool:
        if read.kind == CredentialKind.PIN:
            self.pin(read)  # never looked up by value: a PIN only completes a card
        elif self.requires(read):
            self.card(read)
        else:
            return False
        return True

    def waiting(self) -> dict[str, str]:
        """Reader -> person whose PIN it waits for (status, tests)."""
        return {r: w.person_id for r, w in self._waiting.items()}

    # -- cards --------------------------------------------------------------------------------
    def card(self, read: CredentialRead) -> None:
        self.port.spawn(self._card(read))

    async def _card(self, read: CredentialRead) -> None:
        port = self.port
        try:
            decision = await port.evaluate(read)
        except Exception:
            port.count_error()
            log.exception("pin_precheck_failed", reader=read.reader)
            return
        if not decision.granted or decision.person_id is None:
            await port.handle_read(read)
            return
        self._drop(read.reader)
        loop = asyncio.get_running_loop()
        timer = loop.call_later(self.cfg.timeout_seconds, self._timed_out, read.reader)
        self._waiting[read.reader] = _Waiting(read, decision.person_id, timer)
        log.info("pin_requested", reader=read.reader, person=decision.person_id)

    def _drop(self, reader: str) -> None:
        old = self._waiting.pop(reader, None)
        if old is not None:
            # A second card before the PIN: the newer card is the one at the reader now.
            old.timer.cancel()
            log.info("pin_wait_replaced", reader=reader, person=old.person_id)

    def _timed_out(self, reader: str) -> None:
        waiting = self._waiting.pop(reader, None)
        if waiting is None:
            return
        log.info("pin_timeout", reader=reader, person=waiting.person_id)
        self.port.spawn(self.port.handle_read(waiting.read, pin=PinResult.TIMEOUT))

    # -- PINs ---------------------------------------------------------------------------------
    def pin(self, read: CredentialRead) -> None:
        waiting = self._waiting.pop(read.reader, None)
        if waiting is None:
            self.port.spawn(self._without_card(read))
            return
        waiting.timer.cancel()
        self.port.spawn(self._check(waiting, read))

    async def _check(self, waiting: _Waiting, pin_read: CredentialRead) -> None:
        port = self.port
        try:
            pin_hash, duress_hash = await port.pin_hashes(waiting.person_id)
            # PBKDF2 is tens of milliseconds of CPU: a worker thread (hashlib releases the
            # GIL), never the loop.
            result = await asyncio.get_running_loop().run_in_executor(
                None, check_pin, pin_read.value, pin_hash, duress_hash, self.scheme
            )
        except Exception:
            port.count_error()
            log.exception("pin_check_failed", reader=pin_read.reader)
            return
        # Latency is measured from the PIN's last key, the moment the person finished.
        await port.handle_read(replace(waiting.read, t=pin_read.t), pin=result)

    async def _without_card(self, read: CredentialRead) -> None:
        log.info("pin_without_card", reader=read.reader)
        # PIN guessing counts toward the reader's lockout like any refused credential.
        await self.port.deny(
            "pin",
            read.reader,
            Reason.UNKNOWN,
            lockout=True,
            direction=str(read.direction),
            detail="pin_without_card",
        )

    def close(self) -> None:
        for waiting in self._waiting.values():
            waiting.timer.cancel()
        self._waiting.clear()
