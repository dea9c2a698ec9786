"""The byte format of face encodings: the same bytes on the MQTT wire and inside the sealed blob.

A face credential's ``data`` says which descriptor model made its encodings, so encodings of
another model (or another dimension) are never compared with the door's dlib encodings. Version
1, all integers little-endian (docs/face.md has the same table)::

    offset  size      field
    0       4         magic b"EGFE"
    4       2         format version (uint16): 1
    6       2         dim (uint16): numbers per encoding, 128 for dlib_resnet_v1
    8       4         count k (uint32): encodings, at least 1
    12      16        descriptor model id, ASCII [a-z0-9_.-], NUL-padded: b"dlib_resnet_v1\\0\\0"
    28      4*dim*k   the encodings, float32 little-endian, one row after another

**Untagged (legacy)**: bare k x 128 float32 little-endian with no header, what doors and
central offices wrote before version 1; it is still read everywhere and taken as
``dlib_resnet_v1``. Bytes that start with the magic are always read as version 1 (a legacy blob
would need a first number of 3172.45 to look like one; dlib's are all well under 1).

Pure Python (no numpy): the door's MQTT sync checks face data with it on card-only doors too.
``decode`` raises nothing but ``FaceDataError`` (``reason`` ``malformed``) and its subclass
``FaceFormatError`` (``reason`` ``face_format``: an unknown format version or a descriptor model
other than the door's); both are ``ValueError``.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass

from edgegate.errors import EdgegateError

MAGIC = b"EGFE"
VERSION = 1
MODEL = "dlib_resnet_v1"  # what edgegate/face/encode.py computes: dlib's ResNet face descriptor
MODEL_DIMS = {MODEL: 128}
HEADER = struct.Struct("<4sHHI16s")
HEADER_BYTES = HEADER.size  # 28
FLOAT_BYTES = 4
_MODEL_ID = re.compile(rb"[a-z0-9_.-]{1,16}")


class FaceDataError(EdgegateError, ValueError):
    """Face data that is not a well-formed set of finite encodings."""

    reason = "malformed"


class FaceFormatError(FaceDataError):
    """Well-formed face data this door must not use: an unknown format version, or encodings
    from another descriptor model than the door's. The message names which."""

    reason = "face_format"


@dataclass(frozen=True, slots=True)
class FaceData:
    """Decoded face data. ``version`` is 0 for the untagged legacy form."""

    version: int
    model: str
    dim: int
    count: int
    payload: bytes  # count x dim float32 little-endian


def encode(payload: bytes, dim: int = MODEL_DIMS[MODEL], model: str = MODEL) -> bytes:
    """Version 1 bytes for ``payload`` (k x ``dim`` float32 little-endian)."""
    row = dim * FLOAT_BYTES
    if not payload or len(payload) % row or not _MODEL_ID.fullmatch(model.encode()):
        raise FaceDataError(f"cannot encode {len(payload)} bytes as {model} x {dim}")
    header = HEADER.pack(MAGIC, VERSION, dim, len(payload) // row, model.encode())
    return header + bytes(payload)


def decode(raw: bytes | bytearray | memoryview, model: str = MODEL) -> FaceData:
    """Parse face data, versioned or legacy, for a door whose descriptor model is ``model``."""
    raw = bytes(raw)
    if not raw.startswith(MAGIC):
        return _legacy(raw, model)
    if len(raw) < 6:
        raise FaceDataError(f"face data of {len(raw)} bytes: header cut short")
    (version,) = struct.unpack_from("<H", raw, 4)
    if version != VERSION:
        raise FaceFormatError(
            f"face data format version {version} is not supported "
            f"(this edgegate reads version {VERSION} and untagged data)"
        )
    if len(raw) < HEADER_BYTES:
        raise FaceDataError(f"face data of {len(raw)} bytes: header cut short")
    _, _, dim, count, name = HEADER.unpack_from(raw)
    stripped = name.rstrip(b"\0")
    if not _MODEL_ID.fullmatch(stripped):
        raise FaceDataError(f"face data: descriptor model id {name!r} is not a model id")
    found = stripped.decode("ascii")
    if found != model:
        raise FaceFormatError(
            f"face encodings from descriptor model {found!r} ({dim} numbers); "
            f"this door uses {model!r}"
        )
    want = MODEL_DIMS.get(model)
    if dim != want:
        raise FaceDataError(f"face data: {model} encodings have {want} numbers, not {dim}")
    if count < 1:
        raise FaceDataError("face data holds no encodings")
    payload = raw[HEADER_BYTES:]
    if len(payload) != count * dim * FLOAT_BYTES:
        raise FaceDataError(
            f"face data: header says {count} x {dim} float32 "
            f"({count * dim * FLOAT_BYTES} bytes), {len(payload)} bytes follow"
        )
    _check_finite(payload)
    return FaceData(VERSION, model, dim, count, payload)


def versioned(raw: bytes | bytearray | memoryview, model: str = MODEL) -> bytes:
    """``raw`` checked and in the version 1 form: untagged (legacy) data gets its header, the
    encodings are the same bytes. Raises what ``decode`` raises."""
    data = decode(raw, model)
    return bytes(raw) if data.version else encode(data.payload, data.dim, data.model)


def _legacy(raw: bytes, model: str) -> FaceData:
    legacy_dim = MODEL_DIMS[MODEL]
    row = legacy_dim * FLOAT_BYTES
    if not raw or len(raw) % row:
        raise FaceDataError(
            f"face data of {len(raw)} bytes is neither versioned (no {MAGIC.decode()} header) "
            f"nor untagged k x {legacy_dim} float32"
        )
    if model != MODEL:
        raise FaceFormatError(f"untagged face data is {MODEL} encodings; this door uses {model!r}")
    _check_finite(raw)
    return FaceData(0, MODEL, legacy_dim, len(raw) // row, raw)


def _check_finite(payload: bytes) -> None:
    # A float32 is NaN or infinite when its exponent bits are all ones, so its high byte (the
    # last of four, little-endian) is 0x7F or 0xFF. Real encodings never have such a byte:
    # the fast path is a C-level scan; only suspects are unpacked.
    high = payload[3::FLOAT_BYTES]
    if b"\x7f" not in high and b"\xff" not in high:
        return
    if not all(math.isfinite(x) for (x,) in struct.iter_unpack("<f", payload)):
        raise FaceDataError("face encodings contain NaN or infinity")
