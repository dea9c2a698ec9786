"""Face credentials in the store: kind "face", value = the person id (door) or face-<hash> (office).

``data`` holds the person's encodings in the versioned face format (edgegate/face/face_format.py:
a 28-byte header naming the descriptor model, ``dlib_resnet_v1``, then k x 128 float32
little-endian) sealed with the store key (edgegate/store/sealed.py), so a copied database gives
away no biometrics. Only encodings are ever stored or sent; enrolment photos are read once and
dropped. On the wire (the central office's credential updates, ``data`` of a ``face``
credential) they are base64 of the same bytes (``to_wire``/``from_wire``); the door seals them
with ``put_face``. The untagged legacy form (bare k x 128 float32) is still read everywhere.
"""

from __future__ import annotations

import base64
import sqlite3
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import structlog

from edgegate.face import face_format as ff
from edgegate.face.face_format import FaceDataError, FaceFormatError
from edgegate.store import credentials as creds
from edgegate.store.sealed import SealError, seal, unseal

__all__ = ["FaceDataError", "FaceFormatError"]

log = structlog.get_logger(__name__)

KIND = "face"
DIM = ff.MODEL_DIMS[ff.MODEL]
DTYPE = np.dtype("<f4")


def check_encodings(encodings: np.ndarray) -> np.ndarray:
    """The encodings as a C-contiguous (k, 128) little-endian float32 array, or FaceDataError."""
    arr = np.asarray(encodings)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2 or arr.shape[1] != DIM or arr.shape[0] == 0:
        raise FaceDataError(f"face encodings must be k x {DIM}, not {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=DTYPE)
    if not np.isfinite(arr).all():
        raise FaceDataError("face encodings contain NaN or infinity")
    return arr


def to_bytes(encodings: np.ndarray) -> bytes:
    """Encodings in the versioned face format (what is sealed and what goes on the wire)."""
    return ff.encode(check_encodings(encodings).tobytes(), DIM, ff.MODEL)


def from_bytes(raw: bytes) -> np.ndarray:
    """The (k, 128) float32 encodings of versioned or legacy face bytes (FaceDataError, or its
    subclass FaceFormatError for an unknown version or another descriptor model)."""
    return _array(ff.decode(raw, ff.MODEL))


def _array(data: ff.FaceData) -> np.ndarray:
    return np.frombuffer(data.payload, dtype=DTYPE).reshape(data.count, data.dim)


def to_wire(encodings: np.ndarray) -> str:
    """Encodings as the MQTT credential's ``data``: base64 of the versioned face format."""
    return base64.b64encode(to_bytes(encodings)).decode("ascii")


def from_wire(data: str) -> np.ndarray:
    """The encodings of a credential message's ``data`` (FaceDataError if it is not base64 of
    versioned or legacy face data; FaceFormatError if it is from another model or version)."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (ValueError, TypeError):
        raise FaceDataError("face data is not base64") from None
    return from_bytes(raw)


def pack(key: bytes, value: str, encodings: np.ndarray) -> bytes:
    """Sealed bytes for the ``data`` column of face credential ``value``."""
    return seal(key, KIND, value, to_bytes(encodings))


def unpack(key: bytes, value: str, blob: bytes) -> np.ndarray:
    """The (k, 128) float32 encodings of a sealed ``data`` blob (SealError, FaceDataError,
    FaceFormatError: all ValueErrors)."""
    raw = unseal(key, KIND, value, blob)
    try:
        return from_bytes(raw)
    except FaceDataError as exc:
        raise type(exc)(f"face {value}: {exc}") from None


def put_face(
    conn: sqlite3.Connection,
    key: bytes,
    person_id: str,
    encodings: np.ndarray,
    *,
    name: str | None = None,
    value: str | None = None,
    label: str = "",
    now: float | None = None,
) -> int:
    """Write (or replace) a person's face credential; creates the person when missing.

    Called inside the caller's transaction. Returns the number of encodings stored. Used by
    ``edgegate enroll face`` (``value`` = the person id) and for the central office's
    credential updates (their ``value``, e.g. ``face-<hash>``) alike.
    """
    arr = check_encodings(encodings)
    value = value or person_id
    data = pack(key, value, arr)
    known = conn.execute("SELECT 1 FROM people WHERE id = ?", (person_id,)).fetchone()
    if known is None or name is not None:
        creds.upsert_person(conn, creds.Person(person_id, name or ""), now=now)
    creds.add_credential(conn, KIND, value, person_id, label=label, data=data, now=now)
    return len(arr)


@dataclass
class FaceScan:
    """Every face credential of the store, opened: what ``load_faces`` and doctor read."""

    faces: list[tuple[str, np.ndarray, str]] = field(default_factory=list)
    # Rows that cannot be used, by reason: ``sealed`` (wrong store key, tampered, not sealed),
    # ``face_format`` (unknown format version, another descriptor model), ``malformed``.
    bad: Counter[str] = field(default_factory=Counter)
    first_error: dict[str, str] = field(default_factory=dict)  # reason -> first row's error
    legacy: int = 0  # rows still in the untagged (pre-version-1) form

    @property
    def unreadable(self) -> int:
        return sum(self.bad.values())


def scan_faces(conn: sqlite3.Connection, key: bytes) -> FaceScan:
    """Open every face credential; rows that cannot be used are counted by reason and logged
    once per scan (``face_credentials_skipped``), never raised."""
    rows = conn.execute(
        "SELECT person_id, value, data FROM credentials WHERE kind = ? ORDER BY person_id, value",
        (KIND,),
    ).fetchall()
    scan = FaceScan()
    for person_id, value, blob in rows:
        try:
            data = ff.decode(unseal(key, KIND, value, blob or b""), ff.MODEL)
        except SealError as exc:
            scan.bad["sealed"] += 1
            scan.first_error.setdefault("sealed", str(exc))
            continue
        except FaceDataError as exc:
            scan.bad[exc.reason] += 1
            scan.first_error.setdefault(exc.reason, f"face {value}: {exc}")
            continue
        scan.legacy += int(data.version == 0)
        scan.faces.append((person_id, _array(data), value))
    if scan.bad:
        log.warning(
            "face_credentials_skipped",
            count=scan.unreadable,
            **dict(scan.bad),
            first_error=next(iter(scan.first_error.values())),
        )
    return scan


def load_faces(
    conn: sqlite3.Connection, key: bytes
) -> tuple[list[tuple[str, np.ndarray, str]], int]:
    """Every face credential as (person id, encodings, credential value), and how many rows
    could not be opened (wrong key, tampering, an unknown format version or descriptor model,
    malformed data; ``scan_faces`` has them by reason).

    The value is the person id for faces enrolled at the door and ``face-<hash>`` for those the
    central office sends; a person may have several. Disabled credentials are loaded too: the
    decision core then refuses them with their own reason (revoked), not a vague "unknown".
    """
    scan = scan_faces(conn, key)
    return scan.faces, scan.unreadable
