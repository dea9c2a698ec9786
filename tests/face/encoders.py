"""Encoders for the worker process's failure tests (``module:name`` paths the spawned worker
imports). They wrap the real face stack; only what a test cannot provoke for real is added:
a worker that dies in the middle of a request (dlib crashing, the OOM killer) and one that
is still busy when the next enrolment arrives."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from edgegate.face.encode import face_data_from_photos


def dies_on_die_jpg(photos: list[tuple[str, bytes]]) -> bytes:
    if photos[0][0] == "die.jpg":
        os.kill(os.getpid(), signal.SIGKILL)
    return face_data_from_photos(photos)


def waits_for_file(photos: list[tuple[str, bytes]]) -> bytes:
    """``wait.jpg`` carries a path: busy until the test creates that file."""
    if photos[0][0] == "wait.jpg":
        flag = Path(photos[0][1].decode())
        deadline = time.monotonic() + 60
        while not flag.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return b"waited"
    return face_data_from_photos(photos)
