"""``edgegate doctor`` on a face door: the face stack, and the gallery read from a real store
holding real encodings (face_recognition on the shared photos) sealed with the store key."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest

from edgegate.config import parse
from edgegate.config.models import Config
from edgegate.doctor import Status
from edgegate.doctor.face import check_descriptor, check_face, check_face_stack, check_gallery
from edgegate.face import face_format as ff
from edgegate.face.credentials import pack, put_face
from edgegate.store.db import open_db, transaction
from edgegate.store.sealed import load_key, seal
from tests.face.conftest import photo
from tests.ops.test_doctor import doctor, run_doctor, toml_config

pytestmark = pytest.mark.face


@pytest.fixture(scope="module")
def encodings() -> dict[str, np.ndarray]:
    from edgegate.face.encode import encodings_from_images

    return {name: encodings_from_images([photo(name)]) for name in ("obama", "biden")}


def fill_store(db: Path, encodings: dict[str, np.ndarray], *, odd_rows: bool) -> None:
    """obama versioned, biden in the untagged legacy form; with ``odd_rows`` three rows the
    door cannot use: a newer format version, another model, sealed with another key."""
    conn = open_db(db, synchronous="NORMAL")
    key = load_key(db)
    obama, biden = encodings["obama"], encodings["biden"]
    people = ("obama", "biden", "newer", "other", "stolen") if odd_rows else ("obama", "biden")
    with transaction(conn):
        for person in people:
            put_face(conn, key, person, obama)
        rows = {"biden": seal(key, "face", "biden", biden.astype("<f4").tobytes())}
        if odd_rows:
            newer = ff.HEADER.pack(ff.MAGIC, 2, 128, 1, b"dlib_resnet_v1") + obama.tobytes()
            other = ff.HEADER.pack(ff.MAGIC, 1, 512, 1, b"arcface_r100") + bytes(2048)
            rows["newer"] = seal(key, "face", "newer", newer)
            rows["other"] = seal(key, "face", "other", other)
            rows["stolen"] = pack(bytes(32), "stolen", obama)
        for value, blob in rows.items():
            conn.execute("UPDATE credentials SET data = ? WHERE value = ?", (blob, value))
    conn.close()


def camera_config(tmp_path: Path, mode: str = "face", source: str = "0") -> Config:
    return parse(
        {
            "door": {"site": "test", "id": "d1"},
            "gpio": {"pin_factory": "mock"},
            "camera": {"source": source, "mode": mode},
            "storage": {"path": str(tmp_path / "door.db")},
        },
        tmp_path / "edgegate.toml",
    )


def test_doctor_reports_the_gallery_and_the_rows_it_cannot_use(
    tmp_path: Path, encodings, subprocess_env: dict[str, str]
) -> None:
    from edgegate.sim import camera as cam

    fill_store(tmp_path / "door.db", encodings, odd_rows=True)
    video = cam.write_video(tmp_path / "cam.avi", [cam.door_frame(photo("obama2"))] * 3, fps=5)
    cfg = toml_config(tmp_path, [], camera=video)
    code, checks = doctor(cfg, subprocess_env)
    assert code == 0, checks  # warnings only
    status = {part: c["status"] for part, c in checks.items()}
    assert status["face stack"] == "ok" and "dlib" in checks["face stack"]["message"]
    assert status["camera"] == "ok" and "640x480" in checks["camera"]["message"]
    gallery = checks["face gallery"]
    assert gallery["status"] == "ok" and gallery["message"].startswith("2 people, 2 encodings")
    rows = checks["face credentials"]
    assert rows["status"] == "warn"
    msg = rows["message"]
    assert msg.startswith("3 of 5 face credential(s) cannot be used")
    assert "2 unknown format version or another descriptor model (face newer: " in msg
    assert "face data format version 2 is not supported" in msg
    assert "1 wrong store key or tampered (face stolen: wrong store key" in msg
    text = run_doctor(cfg, subprocess_env).stdout
    assert "WARN  face credentials" in text and "all good" in text


def test_a_clean_gallery_counts_legacy_rows(tmp_path: Path, encodings) -> None:
    fill_store(tmp_path / "door.db", encodings, odd_rows=False)
    gallery, rows = check_gallery(camera_config(tmp_path))
    assert gallery.status is Status.OK and gallery.message.startswith("2 people, 2 encodings")
    assert rows.status is Status.OK
    assert (
        rows.message == "all 2 open (dlib_resnet_v1 encodings; 1 untagged, read as dlib_resnet_v1)"
    )


@pytest.mark.parametrize(
    ("mode", "words"),
    [("face", "nobody can open this door by face"), ("card+face", "no card opens this door")],
)
def test_an_empty_gallery_is_a_warning(tmp_path: Path, mode: str, words: str) -> None:
    config = camera_config(tmp_path, mode)
    [gallery] = check_gallery(config)  # no store yet
    assert gallery.status is Status.WARN and words in gallery.message
    assert gallery.message.startswith("0 people, 0 encodings")
    open_db(tmp_path / "door.db", synchronous="NORMAL").close()  # a store, nobody enrolled
    [gallery] = check_gallery(config)
    assert gallery.status is Status.WARN and words in gallery.message


def test_a_wrong_or_missing_store_key_is_named(tmp_path: Path, encodings) -> None:
    fill_store(tmp_path / "door.db", encodings, odd_rows=False)
    config = camera_config(tmp_path)
    key = tmp_path / "store.key"
    key.write_bytes(bytes(32))
    gallery, rows = check_gallery(config)
    assert gallery.status is Status.WARN and gallery.message.startswith("0 people")
    assert rows.status is Status.WARN
    assert rows.message.startswith("2 of 2 face credential(s) cannot be used")
    assert "2 wrong store key or tampered" in rows.message
    key.unlink()
    _, rows = check_gallery(config)
    assert rows.status is Status.WARN
    assert rows.message == f"2 face credential(s) cannot be opened: store key {key} does not exist"


def test_no_camera_no_face_checks(tmp_path: Path) -> None:
    config = camera_config(tmp_path)
    parts = [c.part for c in check_face(config)]
    assert parts == ["face stack", "face descriptor", "face gallery"]
    no_camera = config.model_copy(update={"camera": None})
    assert check_face(no_camera) == []


def test_a_missing_face_stack_fails_with_the_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert check_face_stack().status is Status.OK
    # Model files gone (a broken face_recognition_models install).
    stub = types.ModuleType("face_recognition_models")
    stub.pose_predictor_model_location = lambda: str(tmp_path / "shape_68.dat")  # type: ignore[attr-defined]
    stub.face_recognition_model_location = lambda: str(tmp_path / "resnet.dat")  # type: ignore[attr-defined]
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "face_recognition_models", stub)
        check = check_face_stack()
    assert check.status is Status.FAIL
    assert f"missing landmarks model {tmp_path / 'shape_68.dat'}" in check.message
    assert "./scripts/setup.sh" in check.message and "`face` extra" in check.message
    # face_recognition not installed at all.
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "face_recognition", None)
        check = check_face_stack()
    assert check.status is Status.FAIL and "cannot be imported" in check.message
    assert "./scripts/setup.sh" in check.message


def damaged_models(tmp_path: Path) -> types.ModuleType:
    """face_recognition_models whose descriptor model file is cut in half."""
    import face_recognition_models as frm

    cut = tmp_path / "resnet_cut.dat"
    data = Path(frm.face_recognition_model_location()).read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    stub = types.ModuleType("face_recognition_models")
    stub.pose_predictor_model_location = frm.pose_predictor_model_location  # type: ignore[attr-defined]
    stub.face_recognition_model_location = lambda: str(cut)  # type: ignore[attr-defined]
    return stub


def test_descriptor_engine_is_checked_and_a_fallback_announced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = check_descriptor("blas")
    assert good.status is Status.OK and "14 residual blocks" in good.message
    assert check_descriptor("dlib").status is Status.OK
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "face_recognition_models", damaged_models(tmp_path))
        bad = check_descriptor("blas")
    assert bad.status is Status.WARN
    assert "resnet_cut.dat" in bad.message and "dlib's encoder instead" in bad.message


def test_face_process_falls_back_to_dlib_when_the_model_cannot_be_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgegate.face import descriptor
    from edgegate.face.pipeline import Settings
    from edgegate.face.worker import load_descriptor
    from tests.conftest import all_logs

    with monkeypatch.context() as m:
        m.setitem(sys.modules, "face_recognition_models", damaged_models(tmp_path))
        m.setattr(descriptor, "_engines", {})  # nothing loaded yet in this "process"
        with all_logs() as logs:
            settings = load_descriptor(Settings())
    assert settings.engine == "dlib"
    [event] = [e for e in logs if e["event"] == "face_descriptor_fallback"]
    assert event["to"] == "dlib" and "model file" in event["error"]
    assert load_descriptor(Settings()).engine == "blas"  # the real model: no fallback
