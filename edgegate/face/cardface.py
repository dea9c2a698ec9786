"""Card + face doors: a card opens only with a face of the card's person, and a face alone
never opens.

The gate sits between the readers and the Door (it is their ReaderSink) only on doors with
``[camera] mode = "card+face"``; elsewhere readers report to the Door directly and the card
hot path is untouched. Either may come first within ``window`` seconds:

* card first: the card is checked on its own (a lost or expired card is refused at once, with
  its own reason); a valid card waits for the face. A face of the same person forwards the
  card to the Door (the usual decision and journal, with ``factors`` card+face and the face's
  distance as score). No such face in time: denied, reason ``face_required``, or
  ``face_mismatch`` when only someone else's face was seen.
* face first: remembered for ``window`` seconds; the card, when it comes, goes straight on.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import TYPE_CHECKING

import structlog

from edgegate.core.decision import Reason, decide
from edgegate.core.reads import CredentialKind, CredentialRead
from edgegate.store.credentials import lookup

if TYPE_CHECKING:
    from edgegate.daemon.door import Door

log = structlog.get_logger(__name__)


class _Pending:
    __slots__ = ("handle", "other_face", "read")

    def __init__(self, read: CredentialRead, handle: asyncio.TimerHandle) -> None:
        self.read = read
        self.handle = handle
        self.other_face = False


class CardFaceGate:
    def __init__(self, door: Door, camera: str, window: float) -> None:
        self.door = door
        self.camera = camera
        self.window = window
        self._cards: dict[str, _Pending] = {}  # person -> card waiting for their face
        self._faces: dict[str, tuple[float, CredentialRead]] = {}  # person -> (monotonic, read)

    # --- ReaderSink ------------------------------------------------------------------------
    def credential(self, read: CredentialRead) -> None:
        if read.kind is CredentialKind.FACE:
            self.door.spawn(self._face(read))
        elif read.kind is CredentialKind.QR:
            self.door.credential(read)  # a visitor pass is one factor by itself
        else:
            self.door.spawn(self._card(read))

    def fault(self, reader: str, reason: str) -> None:
        self.door.fault(reader, reason)

    def recovered(self, reader: str) -> None:
        self.door.recovered(reader)

    def reader_event(self, reader: str, type_: str, **fields: object) -> None:
        self.door.reader_event(reader, type_, **fields)

    # --- the two factors -------------------------------------------------------------------
    async def _face(self, face: CredentialRead) -> None:
        # The face's value is a credential (the person id, or the office's face-<hash>):
        # its person is what must match the card's.
        try:
            record = await self.door.store.call(lookup, face.kind, face.value)
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
            record = await self.door.store.call(lookup, read.kind, read.value)
        except Exception:
            log.exception("card_face_lookup_failed", reader=read.reader)
            record = None
        if record is None or not decide(read, record, self.door.clock()).granted:
            # Unknown, lost, expired or disabled: refused now, with the Door's own reason.
            await self.door.handle_read(read)
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
        self.door.outputs.signal_retry()

    def _forward(self, card: CredentialRead, face: CredentialRead) -> None:
        tracker = self.door.assist.get(self.camera)
        if tracker is not None:
            tracker.success()
        self.door.credential(
            replace(card, score=face.score, t=max(card.t, face.t), factors=("card", "face"))
        )

    def _expire(self, person: str) -> None:
        pending = self._cards.pop(person, None)
        if pending is None:
            return
        reason = Reason.FACE_MISMATCH if pending.other_face else Reason.FACE_REQUIRED
        self.door.spawn(self._deny(pending.read, person, reason))

    async def _deny(self, read: CredentialRead, person: str, reason: Reason) -> None:
        self.door.outputs.deny()
        log.info("access_denied", person=person, reader=read.reader, reason=reason)
        await self.door.record(
            "access_denied",
            kind=str(read.kind),
            credential=read.value,
            person=person,
            reader=read.reader,
            direction=str(read.direction),
            reason=str(reason),
            factors=["card", "face"],
        )
