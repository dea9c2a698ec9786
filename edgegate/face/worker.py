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
import threading
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


class _Pipe:
    """The pipe to the daemon, shared by the main loop and the QR thread: a ``Connection``
    is not safe for two senders at once (interleaved pickles), so sends take a lock. Only
    the main loop receives."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self.poll = conn.poll
        self.recv = conn.recv

    def send(self, msg: tuple[Any, ...]) -> None:
        with self._lock:
            self._conn.send(msg)


class _QrThread:
    """Reads QR codes from the newest frames on a thread of its own, beside the faces.

    On the face loop, a frame with a pass waited for the previous frame's face work (an
    encoding is ~0.2 s on a slow core) before its code was even looked for; here the code is
    looked for as soon as the frame arrives. Both threads only read the shared frames (the
    capture replaces its frame, never writes into it). zxing-cpp works in C++; the face
    stack's dlib calls hold the GIL only for a detection or an encoding at a time.
    """

    def __init__(self, scanner: Any, pipe: _Pipe, stats: dict[str, Any]) -> None:
        self.scanner = scanner
        self.pipe = pipe
        self.stats = stats
        self.capture: Any = None  # set by the main loop when it opens or closes the camera
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="qr", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)

    def _run(self) -> None:
        seq, seen = 0, None
        while not self._stop.is_set():
            capture = self.capture
            if capture is None:
                self._stop.wait(0.05)
                continue
            if capture is not seen:
                seq, seen = 0, capture
            try:
                got = capture.newest(seq, timeout=0.2)
            except OSError:
                # The main loop reports the camera's failure and reopens it.
                self._stop.wait(0.05)
                continue
            if got is None:
                continue
            rgb, frame_t, seq = got
            try:
                text = self.scanner.scan(rgb, time.monotonic())
            except Exception:  # a decoder fault must not end reading passes for good
                log.exception("qr_scan_failed")
                continue
            self.stats["qr_frames"] = self.scanner.frames
            self.stats["qr_ms"] = round(self.scanner.total_ms, 3)
            self.stats["qr_skipped"] = self.scanner.gate.skipped  # nothing moved, no code
            if text is not None:
                try:
                    self.pipe.send(("qr", text, frame_t))
                except (BrokenPipeError, EOFError, OSError):
                    return  # the daemon went away or stopped us: nothing to report to


def _serve(raw: Connection, settings: Any, db_path: Path, key_file: Path | None) -> None:
    from edgegate.face.gallery import Gallery
    from edgegate.face.pipeline import FacePipeline

    conn = _Pipe(raw)
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
    conn.send(("ready", len(gallery), bad))
    stats: dict[str, Any] = {
        "frames": 0,
        "detected": 0,  # frames the detector ran on (the others: nothing moved)
        "encoded": 0,
        "detect_ms": 0.0,
        "encode_ms": 0.0,
    }
    qr: _QrThread | None = None
    if settings.qr:
        from edgegate.face.qr import QrScanner

        # Every key the QR thread writes exists before it starts: the main loop copies the
        # dict while it runs, and a copy must not see the dict change size.
        stats.update(qr_frames=0, qr_ms=0.0, qr_skipped=0)
        qr = _QrThread(QrScanner(settings.qr_hold_off), conn, stats)
        qr.start()
    try:
        _loop(conn, settings, db_path, key_file, pipeline, stats, qr, gallery, bad, stamp)
    finally:
        if qr is not None:
            qr.stop()


def _loop(
    conn: _Pipe,
    settings: Any,
    db_path: Path,
    key_file: Path | None,
    pipeline: Any,
    stats: dict[str, Any],
    qr: _QrThread | None,
    gallery: Any,
    bad: int,
    stamp: tuple[Any, ...],
) -> None:
    from edgegate.face.capture import Capture

    capture: Capture | None = None
    seq = 0
    next_poll = time.monotonic() + GALLERY_POLL_SECONDS
    next_stats = time.monotonic() + STATS_SECONDS
    force_reload = False
    attempt = 0
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
        if qr is not None:
            qr.capture = capture  # the camera the QR thread reads: this one, or none
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
