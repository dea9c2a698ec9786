"""The versioned face-encoding format (edgegate/face/face_format.py): parser properties, the
legacy (untagged) form, refusals that name the version or model, and sealed rows at rest."""

from __future__ import annotations

import base64
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgegate.face import face_format as ff
from edgegate.face.credentials import (
    FaceDataError,
    FaceFormatError,
    from_bytes,
    from_wire,
    load_faces,
    pack,
    put_face,
    scan_faces,
    to_bytes,
    to_wire,
    unpack,
)
from edgegate.face.gallery import Gallery
from edgegate.store.db import open_db, transaction
from edgegate.store.sealed import load_key, seal, unseal
from tests.conftest import all_logs

finite = st.floats(-4.0, 4.0, width=32)
encodings = hnp.arrays(np.float32, st.tuples(st.integers(1, 6), st.just(128)), elements=finite)


def header(version: int = 1, dim: int = 128, count: int = 1, model: bytes = b"dlib_resnet_v1"):
    return ff.HEADER.pack(ff.MAGIC, version, dim, count, model)


def test_byte_layout_is_the_documented_one():
    enc = np.arange(256, dtype=np.float32).reshape(2, 128) / 1000
    raw = to_bytes(enc)
    assert ff.HEADER_BYTES == 28 and len(raw) == 28 + 2 * 128 * 4
    assert raw[:4] == b"EGFE"
    assert struct.unpack_from("<HHI", raw, 4) == (1, 128, 2)
    assert raw[12:28] == b"dlib_resnet_v1\0\0"
    assert raw[28:] == enc.astype("<f4").tobytes()


@given(encodings)
def test_round_trip_of_valid_arrays(enc: np.ndarray):
    raw = to_bytes(enc)
    data = ff.decode(raw)
    assert (data.version, data.model, data.dim, data.count) == (1, ff.MODEL, 128, len(enc))
    np.testing.assert_array_equal(from_bytes(raw), enc)
    np.testing.assert_array_equal(from_wire(to_wire(enc)), enc)


@given(encodings)
def test_legacy_bytes_are_read_as_dlib_resnet_v1(enc: np.ndarray):
    bare = enc.astype("<f4").tobytes()
    data = ff.decode(bare)
    assert (data.version, data.model, data.count) == (0, "dlib_resnet_v1", len(enc))
    np.testing.assert_array_equal(from_bytes(bare), enc)
    np.testing.assert_array_equal(from_wire(base64.b64encode(bare).decode()), enc)


@given(encodings)
def test_versioned_tags_legacy_data_and_keeps_versioned_data(enc: np.ndarray):
    bare = enc.astype("<f4").tobytes()
    assert ff.versioned(bare) == to_bytes(enc)
    assert ff.versioned(to_bytes(enc)) == to_bytes(enc)
    with pytest.raises(ff.FaceFormatError):
        ff.versioned(header(2, 128, len(enc)) + bare)


def _check_decoded(data: ff.FaceData, raw: bytes) -> None:
    assert data.model == ff.MODEL and data.dim == 128 and data.count >= 1
    assert len(data.payload) == data.count * 128 * 4 and raw.endswith(data.payload)
    assert np.isfinite(np.frombuffer(data.payload, "<f4")).all()


headers = st.builds(
    header,
    version=st.sampled_from([0, 1, 1, 1, 2, 65535]),
    dim=st.sampled_from([0, 1, 128, 128, 512]),
    count=st.integers(0, 3),
    model=st.sampled_from([b"dlib_resnet_v1", b"dlib_resnet_v2", b"", b"DLIB", b"x\0y"]),
)
garbage = st.one_of(
    st.binary(max_size=1200),
    st.tuples(headers, st.binary(max_size=1600)).map(lambda t: t[0] + t[1]),
    st.tuples(headers, st.integers(0, 3)).map(lambda t: t[0] + bytes(512 * t[1])),
    st.binary(max_size=8).map(lambda b: ff.MAGIC + b),
)


@given(garbage)
def test_arbitrary_bytes_decode_or_raise_only_face_data_error(raw: bytes):
    try:
        data = ff.decode(raw)
    except FaceDataError as exc:
        assert exc.reason in ("malformed", "face_format") and str(exc)
        return
    _check_decoded(data, raw)


@given(st.text(max_size=400))
def test_arbitrary_wire_text_raises_only_face_data_error(text: str):
    try:
        out = from_wire(text)
    except FaceDataError:
        return
    assert out.shape[1] == 128 and np.isfinite(out).all()


@given(encodings, st.data())
def test_any_changed_header_byte_is_refused(enc: np.ndarray, data: st.DataObject):
    raw = bytearray(to_bytes(enc))
    at = data.draw(st.integers(0, ff.HEADER_BYTES - 1))
    raw[at] ^= data.draw(st.integers(1, 255))
    with pytest.raises(FaceDataError):
        ff.decode(bytes(raw))


def test_unknown_version_and_other_model_are_refused_by_name():
    with pytest.raises(FaceFormatError, match="format version 2 is not supported"):
        ff.decode(header(version=2) + bytes(512))
    with pytest.raises(FaceFormatError, match=r"model 'arcface_r100' \(512 numbers\).*dlib"):
        ff.decode(header(dim=512, model=b"arcface_r100") + bytes(2048))
    # A door whose model is another one refuses dlib encodings, tagged or untagged.
    with pytest.raises(FaceFormatError, match=r"'dlib_resnet_v1'.*'arcface_r100'"):
        ff.decode(header() + bytes(512), model="arcface_r100")
    with pytest.raises(FaceFormatError, match="untagged face data is dlib_resnet_v1"):
        ff.decode(bytes(512), model="arcface_r100")
    assert FaceFormatError("x").reason == "face_format" and issubclass(FaceFormatError, ValueError)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (header(dim=64) + bytes(256), "have 128 numbers, not 64"),
        (header(count=2) + bytes(512), "header says 2 x 128"),
        (header(count=0), "no encodings"),
        (header(model=b"Dlib Resnet") + bytes(512), "is not a model id"),
        (header() + np.full(128, np.inf, "<f4").tobytes(), "NaN or infinity"),
        (np.full(128, np.nan, "<f4").tobytes(), "NaN or infinity"),
        (bytes(513), "neither versioned"),
        (b"", "neither versioned"),
        (ff.MAGIC + b"\x01", "header cut short"),
        (header()[:20], "header cut short"),
    ],
)
def test_malformed_data_says_what_is_wrong(raw: bytes, words: str):
    with pytest.raises(FaceDataError, match=words) as info:
        ff.decode(raw)
    assert type(info.value) is FaceDataError and info.value.reason == "malformed"


def _store(tmp_path: Path):
    db = tmp_path / "door.db"
    return open_db(db, synchronous="NORMAL"), load_key(db)


def test_new_writes_are_versioned_and_legacy_rows_still_load(tmp_path: Path, enrolled):
    conn, key = _store(tmp_path)
    obama, biden = enrolled["obama"], enrolled["biden"]
    with transaction(conn):
        put_face(conn, key, "obama", obama)
        # What a door enrolled before version 1 holds: bare float32, sealed.
        put_face(conn, key, "biden", biden)
        legacy = seal(key, "face", "biden", biden.astype("<f4").tobytes())
        conn.execute("UPDATE credentials SET data = ? WHERE value = 'biden'", (legacy,))
    blob = conn.execute("SELECT data FROM credentials WHERE value = 'obama'").fetchone()[0]
    assert unseal(key, "face", "obama", blob).startswith(ff.MAGIC + b"\x01\x00")
    scan = scan_faces(conn, key)
    assert scan.unreadable == 0 and scan.legacy == 1
    g = Gallery(scan.faces)
    assert g.match(obama[0], 0.5, 0.08).person == "obama"
    assert g.match(biden[0], 0.5, 0.08).person == "biden"
    np.testing.assert_array_equal(unpack(key, "biden", legacy), biden)
    conn.close()


def test_unusable_rows_are_counted_by_reason_and_logged(tmp_path: Path, enrolled):
    conn, key = _store(tmp_path)
    obama = enrolled["obama"]
    with transaction(conn):
        for person in ("obama", "newer", "other", "torn", "wrongkey"):
            put_face(conn, key, person, obama)
    rows = {
        "newer": seal(key, "face", "newer", header(version=2) + obama.tobytes()),
        "other": seal(key, "face", "other", header(dim=512, model=b"arcface_r100") + bytes(2048)),
        "torn": seal(key, "face", "torn", to_bytes(obama)[:-4]),
        "wrongkey": pack(bytes(32), "wrongkey", obama),
    }
    for value, blob in rows.items():
        conn.execute("UPDATE credentials SET data = ? WHERE value = ?", (blob, value))
    with all_logs() as logs:
        scan = scan_faces(conn, key)
        faces, bad = load_faces(conn, key)
    assert [p for p, _, _ in scan.faces] == ["obama"] and bad == 4 and len(faces) == 1
    assert scan.bad == {"face_format": 2, "malformed": 1, "sealed": 1}
    assert "face newer: face data format version 2" in scan.first_error["face_format"]
    assert "wrong store key or tampered" in scan.first_error["sealed"]
    [entry, _] = [e for e in logs if e["event"] == "face_credentials_skipped"]
    assert (entry["log_level"], entry["count"], entry["face_format"]) == ("warning", 4, 2)
    with pytest.raises(FaceFormatError, match=r"face other: .*'arcface_r100'"):
        unpack(key, "other", rows["other"])
    conn.close()
