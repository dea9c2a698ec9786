"""Card + face doors: a card opens only with a face of the card's person, and a face alone
never opens.

The gate is one of the door's gates (edgegate/core/gates.py), put in front of the others
only on doors with ``[camera] mode = "card+face"``; elsewhere the card hot path is untouched.
It holds no door, only the ``GatePort``. Either may come first within ``window`` seconds:

* card first: the card is checked on its own (a lost or expired card is refused at once, with
  its own reason); a valid card waits for the face. A face of the same person forwards the
  card on to the door (the usual decision and journal, with ``factors`` card+face and the face's
  distance as score). No such face in time: denied, reason ``face_required``, or
  ``face_mismatch`` when only someone else's face was seen.
* face first: remembered for ``window`` seconds; the card, when it comes, goes straight on.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import structlog

from edgegate.core.decision import Reason, decide
from edgegate.core.gates import GatePort
from edgegate.core.reads import CredentialKind, CredentialRead

log = structlog.get_logger(__name__)


class _Pending:
    __slots__ = ("handle", "other_face", "read")

    def __init__(self, read: CredentialRead, handle: asyncio.TimerHandle) -> None:
        self.read = read
        self.handle = handle
        self.other_face = False


class CardFaceGate:
    """A ``Gate``: takes every read that is not yet a card+face pair."""

    def __init__(self, port: GatePort, camera: str, window: float) -> None:
        self.port = port
        self.camera = camera
        self.window = window
        self._cards: dict[str, _Pending] = {}  # person -> card waiting for their face
        self._faces: dict[str, tuple[float, CredentialRead]] = {}  # person -> (monotonic, read)

    # --- Gate ------------------------------------------------------------------------------
    def offer(self, read: CredentialRead) -> bool:
        if "face" in read.factors:
            return False  # a pair this gate made: on to the next gate
        if read.kind is CredentialKind.QR:
            return False  # a visitor pass is one factor by itself
        if read.kind is CredentialKind.FACE:
            self.port.spawn(self._face(read))
        else:
            self.port.spawn(self._card(read))
        return True

    def close(self) -> None:
        for pending in self._cards.values():
            pending.handle.cancel()
        self._cards.clear()

    # --- the two factors -------------------------------------------------------------------
    async def _face(self, face: CredentialRead) -> None:
        # The face's value is a credential (the person id, or the office's face-<hash>):
        # its person is what must match the card's.
        try:
            record = await self.port.lookup(face.kind, face.value)
        except Exception:
            log.exception("card_face_lookup_failed", reader=face.reader)
            return
        if record is None:
            return  # removed since the gallery was loaded; the next reload drops it
        person = record.person_id
        pending = self._cards.pop(person, None)
        if pending is not None:
            pending.handle.cancel()
            self._forward(pending.read, face)
            return
        for other in self._cards.values():
            other.other_face = True
        now = time.monotonic()
        self._faces = {p: v for p, v in self._faces.items() if now - v[0] <= self.window}
        self._faces[person] = (now, face)
        log.info("face_waiting_for_card", reader=face.reader, person=person)

    async def _card(self, read: CredentialRead) -> None:
        try:
            record = await self.port.lookup(read.kind, read.value)
        except Exception:
            log.exception("card_face_lookup_failed", reader=read.reader)
            record = None
        if record is None or not decide(read, record, self.port.clock()).granted:
            # Unknown, lost, expired or disabled: refused now, with the Door's own reason.
            await self.port.handle_read(read)
            return
        person = record.person_id
        seen = self._faces.pop(person, None)
        if seen is not None and time.monotonic() - seen[0] <= self.window:
            self._forward(read, seen[1])
            return
        old = self._cards.pop(person, None)
        if old is not None:
            old.handle.cancel()
        loop = asyncio.get_running_loop()
        handle = loop.call_later(self.window, self._expire, person)
        self._cards[person] = _Pending(read, handle)
        log.info("card_waiting_for_face", reader=read.reader, person=person)
        self.port.retry()

    def _forward(self, card: CredentialRead, face: CredentialRead) -> None:
        self.port.biometric_success(self.camera)
        self.port.submit(
            replace(card, score=face.score, t=max(card.t, face.t), factors=("card", "face")),
            after=self,
        )

    def _expire(self, person: str) -> None:
        pending = self._cards.pop(person, None)
        if pending is None:
            return
        reason = Reason.FACE_MISMATCH if pending.other_face else Reason.FACE_REQUIRED
        self.port.spawn(self._deny(pending.read, person, reason))

    async def _deny(self, read: CredentialRead, person: str, reason: Reason) -> None:
        log.info("access_denied", person=person, reader=read.reader, reason=str(reason))
        await self.port.deny(
            str(read.kind),
            read.reader,
            reason,
            lockout=False,
            credential=read.value,
            person=person,
            direction=str(read.direction),
            factors=["card", "face"],
        )
