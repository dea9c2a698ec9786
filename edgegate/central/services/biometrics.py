"""Biometric enrolment from the office: faces from photos, fingers from a door's sensor.

Fingers: the operator picks a door with a fingerprint reader; ``start_finger`` sends it the
signed ``enrol_finger`` command carrying a one-time X25519 session key; the door captures the
finger on its sensor, reports each step on its ``enrol`` topic and finally the template
sealed to that key (contract/enrol_seal.py); ``finger_progress`` opens it, stores it in the
master (sealed at rest) and publishes it to every door. ``FingerSessions`` holds the running
enrolments for the console's live page and the API.

Faces: the operator's photos go through the face stack's own enrolment function (the one
``edgegate enroll face`` uses at a door), handed to the office by its composition root as
``office.encode_face``; only the encodings are kept (sealed in the master like every
biometric), the photos are dropped once encoded. The credential then goes to every door in
the next version, as any other change (``credentials.apply``).

Every refusal (no such person, no photo, too big, not an image, no face, several faces) is a
``ChangeRefused`` with a message for the operator, a ``biometric_enrolment_refused`` log line
and a counter in the office store (``enrol_refused_<reason>``, shown by ``central doors
--json``).
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from edgegate.central import archive, store
from edgegate.central.services import Actor, Office, audit
from edgegate.central.services.credentials import Change, ChangeRefused, apply
from edgegate.contract import enrol_seal
from edgegate.contract import messages as m

log = structlog.get_logger(__name__)

MAX_PHOTO_BYTES = 10 * 1024 * 1024  # a 12-megapixel phone JPEG is 3-6 MB
MAX_PHOTOS = 5
# Encoding a photo holds ~200 MB of dlib buffers for about a second, so the encoder takes
# one at a time and refuses a burst beyond its queue (central serve's worker process,
# face/encode_process.py: its count is the one queue, none is kept here in front of it).


class EnrolRefused(ChangeRefused):
    """A refused enrolment; ``reason`` is the counter's suffix."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def refused(office: Office, actor: Actor, person: str, kind: str, exc: EnrolRefused) -> None:
    """Log and count a refused enrolment (the caller re-raises or answers)."""
    log.warning(
        "biometric_enrolment_refused",
        kind=kind,
        person=person,
        reason=exc.reason,
        error=str(exc),
        operator=actor.name,
        via=actor.via,
    )
    with office.engine.begin() as conn:
        archive.bump(conn, f"enrol_refused_{exc.reason}")


def _known(office: Office, person: str) -> None:
    with store.reading(office.master()) as conn:
        if store.get_person(conn, person) is None:
            raise EnrolRefused(f"no person {person!r}; add the person first", "unknown_person")


def face_value(data: str) -> str:
    """A face credential's id: the same encodings, the same id (as the CLI's files)."""
    return f"face-{hashlib.sha256(data.encode()).hexdigest()[:16]}"


def _face_credential(
    office: Office, person: str, photos: list[tuple[str, bytes]]
) -> m.CredentialMsg:
    if office.encode_face is None:
        raise EnrolRefused(
            "this office has no face stack installed (pip install 'edgegate[face]')",
            "no_face_stack",
        )
    if not photos:
        raise EnrolRefused("no photo given", "no_photo")
    if len(photos) > MAX_PHOTOS:
        raise EnrolRefused(f"{len(photos)} photos; at most {MAX_PHOTOS} at once", "too_many")
    for name, content in photos:
        if not content:
            raise EnrolRefused(f"{name}: empty file", "not_image")
        if len(content) > MAX_PHOTO_BYTES:
            raise EnrolRefused(
                f"{name}: {len(content) / 1e6:.1f} MB; at most {MAX_PHOTO_BYTES // 2**20} MB "
                "per photo",
                "too_large",
            )
    _known(office, person)
    try:
        raw = office.encode_face(photos)
    except ValueError as exc:  # the face stack's FaceImageError names the photo and why
        raise EnrolRefused(str(exc), getattr(exc, "reason", "bad_photo")) from None
    except RuntimeError as exc:  # the encoder's process: busy, or died (and restarted)
        reason = getattr(exc, "reason", None)
        if reason is None:
            raise
        raise EnrolRefused(str(exc), reason) from None
    data = base64.b64encode(raw).decode("ascii")
    label = "photo" if len(photos) == 1 else f"{len(photos)} photos"
    return m.CredentialMsg(
        kind="face", value=face_value(data), person=person, label=label, data=data
    )


def face_credential(
    office: Office, actor: Actor, person: str, photos: list[tuple[str, bytes]]
) -> m.CredentialMsg:
    """The face credential of ``person`` from ``photos`` (name, content), or EnrolRefused
    (logged and counted). Nothing is stored: ``enrol_face`` (console, API) or the CLI's
    ``change`` commits it."""
    try:
        return _face_credential(office, person, photos)
    except EnrolRefused as exc:
        refused(office, actor, person, "face", exc)
        raise


def enrol_face(
    office: Office, actor: Actor, person: str, photos: list[tuple[str, bytes]]
) -> tuple[Change, str]:
    """Encode, seal and store a face of ``person``, published to every door with the next
    version; (the change, the credential's id)."""
    cred = face_credential(office, actor, person, photos)
    op = m.PutCredential(op="put_credential", credential=cred)
    change = apply(office, actor, [op], "face_enrolled", cred.value, person=person)
    log.info("face_enrolled", person=person, value=cred.value, photos=len(photos))
    return change, cred.value


# --- fingers, captured at a door ----------------------------------------------------------

FingerState = Literal["sent", "running", "done", "failed"]
# Steps a door reports (contract EnrolStep) -> what the operator reads.
STEP_TEXT = {
    "started": "the door started the enrolment",
    "place": "place the finger on the sensor",
    "lift": "lift the finger",
    "again": "place the same finger again",
    "poor": "poor image: lift and place the finger again",
    "captured": "captured",
    "failed": "failed",
}
# How long after the last word from the door a session is given up (beyond its timeout).
SESSION_GRACE_SECONDS = 30.0


@dataclass
class FingerSession:
    """One finger enrolment: the command sent, the door's steps, the result. The office's
    one-time private key lives here only until the template arrived (or the session ended)."""

    id: str  # the enrol_finger command's id
    person: str
    door: str
    actor: Actor
    timeout: float
    key: X25519PrivateKey | None
    started: float
    touched: float
    state: FingerState = "sent"
    message: str = "command sent; waiting for the door"
    steps: list[dict[str, Any]] = field(default_factory=list)
    value: str | None = None
    version: int | None = None

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")

    def as_dict(self) -> dict[str, Any]:
        return {
            "session": self.id,
            "person": self.person,
            "door": self.door,
            "state": self.state,
            "message": self.message,
            "steps": list(self.steps),
            "value": self.value,
            "version": self.version,
            "started": self.started,
        }

    def end(self, state: FingerState, message: str) -> None:
        self.state, self.message, self.key = state, message, None


class FingerSessions:
    """The office's running finger enrolments (in memory: a restarted office forgets them,
    and their templates, sealed to keys it no longer has, cannot be opened; the operator
    starts again). Called from worker threads and the event loop: one lock."""

    KEEP = 200  # finished sessions kept for their pages

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._by_id: dict[str, FingerSession] = {}

    def add(self, session: FingerSession) -> None:
        with self._lock:
            self._by_id[session.id] = session
            if len(self._by_id) > self.KEEP:
                done = [s.id for s in self._by_id.values() if s.finished]
                for sid in done[: len(self._by_id) - self.KEEP]:
                    del self._by_id[sid]

    def get(self, sid: str) -> FingerSession | None:
        with self._lock:
            return self._by_id.get(sid)

    def expire(self) -> list[FingerSession]:
        """Sessions the door stopped answering for: failed now (returned, to tell pages)."""
        now = self.clock()
        out = []
        with self._lock:
            for s in self._by_id.values():
                if not s.finished and now - s.touched > 2 * s.timeout + SESSION_GRACE_SECONDS:
                    s.end("failed", "no answer from the door (offline, or the message was lost)")
                    out.append(s)
        return out


def _finger_door(office: Office, door: str) -> None:
    from edgegate.central.services.doors import board

    for d in board(office)["doors"]:
        if d["door"] != door:
            continue
        if not d["finger_readers"]:
            raise EnrolRefused(f"door {door!r} has no fingerprint reader", "wrong_door")
        if d["availability"] != "online":
            raise EnrolRefused(f"door {door!r} is offline", "door_offline")
        return
    raise EnrolRefused(f"no door {door!r}", "wrong_door")


def start_finger(
    office: Office,
    actor: Actor,
    sessions: FingerSessions,
    person: str,
    door: str,
    timeout: float = 60.0,
) -> FingerSession:
    """Send ``enrol_finger`` to ``door`` for ``person``; the door's steps then arrive through
    ``finger_progress``. EnrolRefused (logged, counted) when it cannot start."""
    from edgegate.central.services import commands

    try:
        _known(office, person)
        _finger_door(office, door)
        if not m.ENROL_TIMEOUT_MAX >= timeout >= 5:
            raise EnrolRefused(f"timeout {timeout}: 5..{m.ENROL_TIMEOUT_MAX:.0f} s", "bad_input")
        key, public = enrol_seal.new_session()
        args = m.EnrolFingerArgs(person=person, session=public, timeout=timeout)
        message = commands.build(
            office, actor, door, "enrol_finger", extra=args.model_dump(mode="json")
        )
    except EnrolRefused as exc:
        refused(office, actor, person, "finger", exc)
        raise
    now = sessions.clock()
    session = FingerSession(message["id"], person, door, actor, timeout, key, now, now)
    # Registered before it is sent: the door's first step may come back within milliseconds.
    sessions.add(session)
    try:
        commands.send_built(office, actor, message)
    except Exception as exc:
        session.end("failed", f"not sent: {exc}")
        raise EnrolRefused(f"command not sent: {exc}", "not_sent") from None
    audit.record(
        office.engine, actor, "finger_enrolment_started", person, door=door, session=session.id
    )
    log.info("finger_enrolment_started", person=person, door=door, session=session.id)
    return session


def finger_progress(
    office: Office, sessions: FingerSessions, msg: m.EnrolProgress
) -> FingerSession | None:
    """A step from a door (the server's inbound ``enrol`` topic). On ``captured`` the
    template is opened with the session's key, stored in the master as a finger credential
    (new site-wide value, label ``model=<family>``) and published to every door."""
    session = sessions.get(msg.cmd_id)
    if session is None:
        # Another office instance's enrolment (every instance hears every door's steps), or
        # one this instance forgot in a restart.
        log.debug("enrol_progress_not_ours", door=msg.door, cmd_id=msg.cmd_id, step=msg.step)
        return None
    if session.door != msg.door or session.person != msg.person:
        log.warning("enrol_progress_mismatch", door=msg.door, cmd_id=msg.cmd_id, person=msg.person)
        with office.engine.begin() as conn:
            archive.bump(conn, "enrol_progress_mismatch")
        return None
    if session.finished:
        return None
    session.touched = sessions.clock()
    session.steps.append({"step": msg.step, "text": STEP_TEXT[msg.step], "at": session.touched})
    if msg.step == "failed":
        session.end("failed", f"the door could not enrol: {msg.detail or 'failed'}")
        _count_failure(office, session, "door_failed")
    elif msg.step == "captured":
        _store_finger(office, session, msg)
    else:
        session.state, session.message = "running", STEP_TEXT[msg.step]
    return session


def door_refused(sessions: FingerSessions, cmd_id: str, reason: str) -> FingerSession | None:
    """The door's ``command_ack`` refused the command (no reader, busy, sensor down)."""
    session = sessions.get(cmd_id)
    if session is None or session.finished:
        return None
    session.end("failed", f"the door refused: {reason}")
    return session


def _count_failure(office: Office, session: FingerSession, reason: str) -> None:
    log.warning(
        "finger_enrolment_failed",
        person=session.person,
        door=session.door,
        session=session.id,
        reason=reason,
        error=session.message,
    )
    with office.engine.begin() as conn:
        archive.bump(conn, f"enrol_failed_{reason}")


def _store_finger(office: Office, session: FingerSession, msg: m.EnrolProgress) -> None:
    from edgegate.store.finger_slots import new_finger_value

    assert msg.sealed is not None and msg.model is not None  # the model's validator
    key = session.key
    if key is None:
        return
    aad = enrol_seal.bound_to(
        office.config.central.site, msg.door, msg.cmd_id, msg.person, msg.model
    )
    try:
        template = enrol_seal.open_sealed(key, msg.sealed, aad)
        cred = m.CredentialMsg(
            kind="finger",
            value=new_finger_value(session.person),
            person=session.person,
            label=f"model={msg.model}",
            data=base64.b64encode(template).decode("ascii"),
        )
        op = m.PutCredential(op="put_credential", credential=cred)
        change = apply(
            office,
            session.actor,
            [op],
            "finger_enrolled",
            cred.value,
            person=session.person,
            door=session.door,
        )
    except (enrol_seal.EnrolSealError, ValueError) as exc:  # ChangeRefused is a ValueError
        session.end("failed", f"the template was refused: {exc}")
        _count_failure(office, session, "bad_template")
        return
    session.value, session.version = cred.value, change.version
    published = (
        "" if change.published is not False else "; the doors get it when the broker is back"
    )
    session.end("done", f"finger enrolled as {cred.value} (version {change.version}){published}")
    log.info("finger_enrolled", person=session.person, door=session.door, value=cred.value)
