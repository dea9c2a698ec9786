"""Doctor checks of face entry (doors with ``[camera]``): the face stack and the gallery.

The camera itself is opened by ``check_camera`` (edgegate/doctor/devices.py). The gallery is
read the way the face process reads it (``scan_faces``: the store key, the sealed rows, the
versioned face format), so a row the door would leave out is reported here with its reason.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from edgegate.config.models import Config
from edgegate.doctor import Check, fail, ok, warn

INSTALL_HINT = (
    "; install the face stack: ./scripts/setup.sh install (or sudo ./scripts/install.sh --face), "
    "i.e. the `face` extra plus face_recognition==1.3.0 with --no-deps"
)
# scan_faces reasons in a technician's words.
REASONS = {
    "sealed": "wrong store key or tampered",
    "face_format": "unknown format version or another descriptor model",
    "malformed": "malformed face data",
}


def check_face(config: Config) -> list[Check]:
    if config.camera is None:
        return []
    stack = check_face_stack()
    engine = [check_descriptor(config.camera.descriptor_engine)] if stack.status == "ok" else []
    return [stack, *engine, *check_gallery(config)]


def check_face_stack() -> Check:
    """face_recognition, dlib and the two model files the door uses (68-point landmarks, the
    ResNet descriptor). Importing face_recognition loads every model into dlib."""
    part = "face stack"
    try:
        import face_recognition_models as frm
    except ImportError as exc:
        return fail(part, f"face_recognition_models cannot be imported ({exc}){INSTALL_HINT}")
    models = {
        "landmarks": frm.pose_predictor_model_location(),
        "descriptor": frm.face_recognition_model_location(),
    }
    absent = [f"{name} model {path}" for name, path in models.items() if not Path(path).is_file()]
    if absent:
        return fail(part, f"missing {', '.join(absent)}{INSTALL_HINT}")
    try:
        import dlib
        import face_recognition
    except (ImportError, RuntimeError, SystemExit) as exc:
        # face_recognition calls quit() (SystemExit) when it cannot find its models.
        why = str(exc) or type(exc).__name__
        return fail(part, f"face_recognition/dlib cannot be imported ({why}){INSTALL_HINT}")
    return ok(
        part,
        f"face_recognition {face_recognition.__version__}, dlib {dlib.__version__}, "
        f"models in {Path(models['descriptor']).parent}",
    )


def check_descriptor(engine: str) -> Check:
    """The BLAS engine reads dlib's model file itself (edgegate/face/dlib_model.py); if it
    cannot, the face process falls back to dlib's encoder (same numbers, ~7x slower): say so
    here rather than let a technician find it in the log."""
    part = "face descriptor"
    if engine != "blas":
        return ok(part, f"engine {engine} (face_recognition's own encoder)")
    import face_recognition_models as frm

    from edgegate.face import resnet
    from edgegate.face.dlib_model import DlibModelError

    path = frm.face_recognition_model_location()
    try:
        net = resnet.load(path)
    except DlibModelError as exc:
        return warn(
            part,
            f"engine blas cannot read {path} ({exc}); the face process will use dlib's "
            "encoder instead (same decisions, several times slower)",
        )
    return ok(
        part,
        f"engine blas: dlib's ResNet read from the model file ({len(net.blocks)} "
        "residual blocks), one BLAS thread",
    )


def check_gallery(config: Config) -> list[Check]:
    """The gallery as the face process would load it: people, encodings, unusable rows."""
    assert config.camera is not None
    try:
        from edgegate.face.credentials import KIND, FaceScan, scan_faces
        from edgegate.face.face_format import MODEL
    except ImportError as exc:  # numpy is part of the face extra
        return [fail("face gallery", f"cannot be read ({exc}){INSTALL_HINT}")]
    from edgegate.store import sealed
    from edgegate.store.db import StoreError, open_db

    path = config.storage.path
    scan, rows, key_error = FaceScan(), 0, ""
    if path.exists():
        try:
            conn = open_db(path, readonly=True, check=False)
        except (StoreError, sqlite3.Error) as exc:
            return [warn("face gallery", f"not checked: {path} cannot be opened ({exc})")]
        try:
            sql = "SELECT COUNT(*) FROM credentials WHERE kind = ?"
            rows = conn.execute(sql, (KIND,)).fetchone()[0]
            try:
                key = sealed.load_key(path, config.storage.key_file, create=False)
            except (sealed.SealError, OSError) as exc:
                key_error = str(exc)
            else:
                scan = scan_faces(conn, key)
        except sqlite3.Error as exc:
            return [warn("face gallery", f"not checked: {path} cannot be read ({exc})")]
        finally:
            conn.close()
    out = [_gallery_size(config, scan.faces)]
    if key_error and rows:
        out.append(
            warn("face credentials", f"{rows} face credential(s) cannot be opened: {key_error}")
        )
    elif scan.bad:
        parts = [
            f"{n} {REASONS.get(reason, reason)} ({scan.first_error[reason]})"
            for reason, n in sorted(scan.bad.items())
        ]
        out.append(
            warn(
                "face credentials",
                f"{scan.unreadable} of {rows} face credential(s) cannot be used and are left "
                f"out of the gallery: {'; '.join(parts)}",
            )
        )
    elif rows:
        legacy = f"; {scan.legacy} untagged, read as {MODEL}" if scan.legacy else ""
        out.append(ok("face credentials", f"all {rows} open ({MODEL} encodings{legacy})"))
    return out


def _gallery_size(config: Config, faces: list[tuple[str, Any, str]]) -> Check:
    assert config.camera is not None
    people = len({person for person, _, _ in faces})
    encodings = sum(len(enc) for _, enc, _ in faces)
    summary = f"{people} people, {encodings} encodings (from {config.storage.path})"
    if people:
        return ok("face gallery", summary)
    if config.camera.mode == "card+face":
        return warn(
            "face gallery",
            f"{summary}: mode card+face needs the card holder's face, so no card opens this "
            "door (edgegate enroll face, or the central office)",
        )
    return warn(
        "face gallery",
        f"{summary}: nobody can open this door by face (edgegate enroll face, or the "
        "central office)",
    )
