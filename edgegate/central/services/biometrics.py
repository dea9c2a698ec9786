"""Biometric enrolment from the office: faces from photos, fingers from a door's sensor.

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

import structlog

from edgegate.central import archive, store
from edgegate.central.services import Actor, Office
from edgegate.central.services.credentials import Change, ChangeRefused, apply
from edgegate.contract import messages as m

log = structlog.get_logger(__name__)

MAX_PHOTO_BYTES = 10 * 1024 * 1024  # a 12-megapixel phone JPEG is 3-6 MB
MAX_PHOTOS = 5
# Encoding a photo holds ~200 MB of dlib buffers for about a second: one at a time, so a
# burst of uploads queues instead of exhausting the office's memory.
_ENCODING = threading.Lock()


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
        with _ENCODING:
            raw = office.encode_face(photos)
    except ValueError as exc:  # the face stack's FaceImageError names the photo and why
        raise EnrolRefused(str(exc), getattr(exc, "reason", "bad_photo")) from None
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
