"""Face credentials in the store: kind "face", value = the person id (door) or face-<hash> (office).

``data`` holds the person's encodings (k x 128 float32, little-endian) sealed with the store
key (edgegate/store/sealed.py), so a copied database gives away no biometrics. Only encodings
are ever stored or sent; enrolment photos are read once and dropped. On the wire (the
central office's credential updates, ``data`` of a ``face`` credential) they are base64 of the
same k x 128 float32 bytes (``to_wire``/``from_wire``); the door seals them with ``put_face``.
"""

from __future__ import annotations

import base64
import sqlite3

import numpy as np

from edgegate.store import credentials as creds
from edgegate.store.sealed import seal, unseal

KIND = "face"
DIM = 128
DTYPE = np.dtype("<f4")


class FaceDataError(ValueError):
    """Encodings that are not k x 128 finite numbers."""


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


def to_wire(encodings: np.ndarray) -> str:
    """Encodings as the MQTT credential's ``data``: base64 of k x 128 little-endian float32."""
    return base64.b64encode(check_encodings(encodings).tobytes()).decode("ascii")


def from_wire(data: str) -> np.ndarray:
    """The encodings of a credential message's ``data`` (FaceDataError if it is not
    base64 of k x 128 finite float32)."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (ValueError, TypeError):
        raise FaceDataError("face data is not base64") from None
    if not raw or len(raw) % (DIM * DTYPE.itemsize):
        raise FaceDataError(f"face data of {len(raw)} bytes is not k x {DIM} float32")
    return check_encodings(np.frombuffer(raw, dtype=DTYPE).reshape(-1, DIM))


def pack(key: bytes, value: str, encodings: np.ndarray) -> bytes:
    """Sealed bytes for the ``data`` column of face credential ``value``."""
    return seal(key, KIND, value, check_encodings(encodings).tobytes())


def unpack(key: bytes, value: str, blob: bytes) -> np.ndarray:
    """The (k, 128) float32 encodings of a sealed ``data`` blob (SealError, FaceDataError)."""
    raw = unseal(key, KIND, value, blob)
    if not raw or len(raw) % (DIM * DTYPE.itemsize):
        raise FaceDataError(f"face {value}: {len(raw)} bytes is not k x {DIM} float32")
    return check_encodings(np.frombuffer(raw, dtype=DTYPE).reshape(-1, DIM))


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


def load_faces(
    conn: sqlite3.Connection, key: bytes
) -> tuple[list[tuple[str, np.ndarray, str]], int]:
    """Every face credential as (person id, encodings, credential value), and how many rows
    could not be opened.

    The value is the person id for faces enrolled at the door and ``face-<hash>`` for those the
    central office sends; a person may have several. Disabled credentials are loaded too: the
    decision core then refuses them with their own reason (revoked), not a vague "unknown".
    """
    rows = conn.execute(
        "SELECT person_id, value, data FROM credentials WHERE kind = ? ORDER BY person_id, value",
        (KIND,),
    ).fetchall()
    out: list[tuple[str, np.ndarray, str]] = []
    bad = 0
    for person_id, value, blob in rows:
        try:
            out.append((person_id, unpack(key, value, blob or b""), value))
        except ValueError:
            # SealError and FaceDataError are ValueErrors: wrong key, tampering, a bad update.
            bad += 1
    return out, bad
