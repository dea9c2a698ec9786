"""Frames from a camera, video file or stream, newest only, on a thread of the face process.

The thread reads as fast as the source delivers and overwrites one slot, so the pipeline
always works on the newest frame and a slow decision never builds a queue of stale frames
(OpenCV's own buffer for devices is kept to one frame where the backend allows). A video
file is paced at its frame rate so it behaves like a camera; its end, a failed read or a
device that vanishes is a camera failure (``error`` set), reported by the reader as
``reader_fault`` and reopened with backoff.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import structlog

log = structlog.get_logger(__name__)

DEFAULT_FILE_FPS = 15.0


def _is_file(source: str) -> bool:
    return not source.isdigit() and "://" not in source


class Capture:
    def __init__(self, source: str, fps: float = 0.0) -> None:
        self.source = source
        self.fps = fps
        self.error: str | None = None
        self.frames = 0
        self._cap: object | None = None
        self._cond = threading.Condition()
        self._frame: np.ndarray | None = None
        self._t = 0.0
        self._seq = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        """Open the source and start reading; OSError when it cannot be opened."""
        import cv2

        src = self.source
        if _is_file(src) and not Path(src).is_file():
            raise OSError(f"camera source {src} does not exist")
        cap = cv2.VideoCapture(int(src) if src.isdigit() else src)
        if not cap.isOpened():
            cap.release()
            raise OSError(f"cannot open camera source {src}")
        if src.isdigit():
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        period = 0.0
        if _is_file(src):
            fps = self.fps or cap.get(cv2.CAP_PROP_FPS) or DEFAULT_FILE_FPS
            period = 1.0 / fps
        self._cap = cap
        self._thread = threading.Thread(
            target=self._read, args=(cap, period), name="capture", daemon=True
        )
        self._thread.start()

    def _read(self, cap: object, period: float) -> None:
        import cv2

        next_t = time.monotonic()
        while not self._stop.is_set():
            ok, frame = cap.read()  # type: ignore[attr-defined]
            t = time.perf_counter()
            if not ok or frame is None:
                self._fail("camera stream ended" if period else "camera read failed")
                return
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            with self._cond:
                self._frame, self._t = rgb, t
                self._seq += 1
                self.frames += 1
                self._cond.notify_all()
            if period:
                next_t += period
                delay = next_t - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                else:
                    next_t = time.monotonic()

    def _fail(self, reason: str) -> None:
        with self._cond:
            self.error = reason
            self._cond.notify_all()

    def newest(self, after: int, timeout: float) -> tuple[np.ndarray, float, int] | None:
        """The newest frame with a sequence number above ``after``: (rgb, perf_counter time
        of its arrival, seq), or None after ``timeout``. Raises OSError once the camera failed."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq > after or self.error is not None, timeout)
            if self._seq > after and self._frame is not None:
                return self._frame, self._t, self._seq
            if self.error is not None:
                raise OSError(self.error)
            return None

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()  # type: ignore[attr-defined]
