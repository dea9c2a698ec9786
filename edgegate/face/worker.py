"""The face process: camera capture, pipeline and gallery, away from the daemon's loop.

dlib holds the GIL for ~0.2 s per face, so face work in the daemon's process would stall
the loop, the card readers and MQTT; here it runs in its own process (started with "spawn":
forking a process that has threads and an event loop is unsafe), niced so the kernel gives
the daemon the CPU first. Messages on the pipe are small tuples; frames never cross it.

Commands (daemon -> worker): ("open", source, fps, attempt), ("close",), ("reload",), ("stop",).
Messages (worker -> daemon): ("ready", people, bad), ("opened", attempt),
("camera_error", text, attempt),
("grant", credential value, distance, frame_t, timings), ("failed", reason, poor, distance),
("qr", text, frame_t),
("gallery", people, bad), ("gallery_error", text), ("stats", dict).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import structlog

from edgegate.face.votes import Failed, Grant

log = structlog.get_logger(__name__)

GALLERY_POLL_SECONDS = 2.0
STATS_SECONDS = 2.0


def load_gallery(db_path: Path, key_file: Path | None) -> tuple[Any, int, tuple[Any, ...]]:
    """The gallery from the store (read-only connection), rows that failed to open, and a
    fingerprint of the face credentials to notice changes cheaply."""
    from edgegate.face.credentials import KIND, load_faces
    from edgegate.face.gallery import Gallery
    from edgegate.store.db import open_db
    from edgegate.store.sealed import load_key

    if not db_path.exists():
        return Gallery(), 0, ()
    conn = open_db(db_path, readonly=True, check=False)
    try:
        stamp = _stamp(conn, KIND)
        faces, bad = load_faces(conn, load_key(db_path, key_file))
    finally:
        conn.close()
    return Gallery(faces), bad, stamp


def _stamp(conn: Any, kind: str) -> tuple[Any, ...]:
    return tuple(
        conn.execute(
            "SELECT COUNT(*), MAX(updated_at) FROM credentials WHERE kind = ?", (kind,)
        ).fetchone()
    )


def gallery_stamp(db_path: Path) -> tuple[Any, ...]:
    from edgegate.face.credentials import KIND
    from edgegate.store.db import StoreError, open_db

    if not db_path.exists():
        return ()
    try:
        conn = open_db(db_path, readonly=True, check=False)
    except StoreError:
        return ("unreadable",)
    try:
        return _stamp(conn, KIND)
    except Exception:
        return ("unreadable",)
    finally:
        conn.close()


def load_descriptor(settings: Any) -> Any:
    """``settings`` with an engine that loaded: a BLAS engine that cannot read its model file
    falls back to dlib's own encoder (same numbers, slower) rather than leave the door
    without faces; the error is logged."""
    from edgegate.face.descriptor import descriptor

    try:
        descriptor(settings.engine)
    except Exception as exc:  # an unreadable model file, a missing module: keep faces working
        if settings.engine == "dlib":
            raise
        log.error("face_descriptor_fallback", engine=settings.engine, to="dlib", error=str(exc))
        settings = dataclasses.replace(settings, engine="dlib")
        descriptor("dlib")
    return settings


def main(conn: Connection, settings: Any, db_path: Path, key_file: Path | None, nice: int) -> None:
    """Entry point of the face process (``multiprocessing`` target)."""
    if nice:
        os.nice(nice)
    # EOF or a broken pipe: the daemon went away or stopped us, nothing to report to.
    with contextlib.suppress(EOFError, BrokenPipeError, KeyboardInterrupt):
        _serve(conn, settings, db_path, key_file)


def _serve(conn: Connection, settings: Any, db_path: Path, key_file: Path | None) -> None:
    from edgegate.face.capture import Capture
    from edgegate.face.gallery import Gallery
    from edgegate.face.pipeline import FacePipeline

    gallery, bad, stamp = Gallery(), 0, ()
    try:
        gallery, bad, stamp = load_gallery(db_path, key_file)
    except Exception as exc:  # a damaged store or key: say so, decide nobody, keep trying
        conn.send(("gallery_error", f"{type(exc).__name__}: {exc}"))
    # Load dlib's models and the descriptor now, not on the first face at the door.
    from edgegate.face import encode as fe

    fe._fr()
    settings = load_descriptor(settings)
    pipeline = FacePipeline(settings, gallery)
    qr = None
    if settings.qr:
        from edgegate.face.qr import QrScanner

        qr = QrScanner(settings.qr_hold_off)
    conn.send(("ready", len(gallery), bad))
    capture: Capture | None = None
    seq = 0
    next_poll = time.monotonic() + GALLERY_POLL_SECONDS
    next_stats = time.monotonic() + STATS_SECONDS
    force_reload = False
    attempt = 0
    stats: dict[str, Any] = {
        "frames": 0,
        "detected": 0,  # frames the detector ran on (the others: nothing moved)
        "encoded": 0,
        "detect_ms": 0.0,
        "encode_ms": 0.0,
    }
    while True:
        # Commands first: they are rare and small; poll(0) never blocks.
        while conn.poll(0 if capture is not None else 0.2):
            cmd = conn.recv()
            if cmd[0] == "stop":
                if capture is not None:
                    capture.close()
                return
            if cmd[0] == "open":
                # ``attempt`` numbers the daemon's open requests: an answer that comes after
                # the daemon gave up waiting (a stream URL can take long to open) is
                # recognised as stale there instead of being taken for the next attempt's.
                attempt = cmd[3]
                if capture is not None:
                    capture.close()
                capture = Capture(cmd[1], cmd[2])
                try:
                    capture.open()
                except OSError as exc:
                    capture = None
                    conn.send(("camera_error", str(exc), attempt))
                else:
                    seq = 0
                    pipeline.presentation.reset()
                    conn.send(("opened", attempt))
            elif cmd[0] == "close":
                if capture is not None:
                    capture.close()
                    capture = None
            elif cmd[0] == "reload":
                force_reload = True
        now = time.monotonic()
        if force_reload or now >= next_poll:
            # Enrolment at the door and central updates write the store from other processes;
            # a cheap COUNT/MAX(updated_at) notices them without a message from anyone.
            next_poll = now + GALLERY_POLL_SECONDS
            if force_reload or gallery_stamp(db_path) != stamp:
                force_reload = False
                try:
                    gallery, bad, stamp = load_gallery(db_path, key_file)
                except Exception as exc:  # keep the gallery we have; retried next poll
                    conn.send(("gallery_error", f"{type(exc).__name__}: {exc}"))
                else:
                    pipeline.gallery = gallery
                    conn.send(("gallery", len(gallery), bad))
        if now >= next_stats:
            next_stats = now + STATS_SECONDS
            conn.send(("stats", dict(stats)))
        if capture is None:
            continue
        try:
            got = capture.newest(seq, timeout=0.2)
        except OSError as exc:
            capture.close()
            capture = None
            conn.send(("camera_error", str(exc), attempt))
            continue
        if got is None:
            continue
        rgb, frame_t, seq = got
        if qr is not None:
            # Before the faces: a pass is decided from this frame alone, a face takes k.
            text = qr.scan(rgb, time.monotonic())
            stats["qr_frames"], stats["qr_ms"] = qr.frames, round(qr.total_ms, 3)
            if text is not None:
                conn.send(("qr", text, frame_t))
        res = pipeline.process(rgb, time.monotonic())
        stats["frames"] += 1
        stats["detected"] += res.detected
        stats["detect_ms"] += res.detect_ms
        if res.status == "encoded":
            stats["encoded"] += 1
            stats["encode_ms"] += res.encode_ms
        timings = {"detect_ms": res.detect_ms, "encode_ms": res.encode_ms, "match_ms": res.match_ms}
        for out in res.outcomes:
            if isinstance(out, Grant):
                conn.send(("grant", out.value or out.person, out.distance, frame_t, timings))
            elif isinstance(out, Failed):
                conn.send(("failed", out.reason, out.poor, out.distance))
