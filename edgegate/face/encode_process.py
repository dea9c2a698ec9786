"""The office's face enrolment encoder in a process of its own.

``central serve`` encodes the photos an operator uploads (console, REST API, the browser's
camera) with the face stack's enrolment function (``encode.face_data_from_photos``). dlib
holds the GIL while it works (~40 ms to a second per photo), so encoding on one of serve's
threads stalled its asyncio loop: the archive, the live views, every other request. Here the
work runs in a separate process (started with "spawn": forking a process that has threads
and an event loop is unsafe), niced like the door's face process so the kernel gives serve
the CPU first; the calling thread only waits on a pipe, without the GIL.

One request is on the pipe at a time (encoding holds ~200 MB of dlib buffers: a burst queues
instead of exhausting memory), and at most ``max_pending`` wait or run: one more is refused
at once (``EncoderUnavailable``, reason ``encoder_busy``) rather than queued without end. A
worker that dies (killed, out of memory, a crash in dlib) or does not answer within
``timeout`` while it holds an enrolment is counted (``died``), logged as an error
(``face_encoder_died``) and replaced by a new one; the request it held fails with a clear
``EncoderUnavailable`` (``encoder_died``), the next one goes to the new worker. A worker found
dead between enrolments (nothing in hand, nothing lost) is replaced, counted (``restarted``)
and logged as a warning (``face_encoder_restarted``). The office's services turn the
refusals into a refused enrolment, logged and counted like a photo without a face
(``services/biometrics.py``).
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing as mp
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import structlog

from edgegate.errors import EdgegateError
from edgegate.face.encode import FaceImageError

log = structlog.get_logger(__name__)

Photos = list[tuple[str, bytes]]
DEFAULT_ENCODE = "edgegate.face.encode:face_data_from_photos"


class EncoderUnavailable(EdgegateError, RuntimeError):
    """The encoder cannot take this enrolment now; ``reason`` for the office's counters:
    ``encoder_busy``, ``encoder_died``, ``encoder_failed``."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def _resolve(path: str) -> Callable[[Photos], bytes]:
    module, _, name = path.partition(":")
    fn: Callable[[Photos], bytes] = getattr(importlib.import_module(module), name)
    return fn


def worker_main(conn: Connection, encode_path: str, nice: int, warm_up: bool = True) -> None:
    """The worker process: answer ("encode", photos) with ("ok", data), ("refused", message,
    reason) for a photo the face stack refuses, or ("error", text); end on ("stop",) or when
    serve's end of the pipe closes."""
    if nice:
        os.nice(nice)
    encode = _resolve(encode_path)
    if warm_up:  # dlib and its models load here, before the first request, not during it
        importlib.import_module("face_recognition")
    conn.send(("ready", os.getpid()))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return  # serve is gone
        if msg[0] != "encode":
            return
        try:
            reply: tuple[Any, ...] = ("ok", encode(msg[1]))
        except FaceImageError as exc:
            reply = ("refused", str(exc), exc.reason)
        except Exception as exc:  # an answer rather than a dead worker: said to the caller
            reply = ("error", f"{type(exc).__name__}: {exc}")
        conn.send(reply)


class FaceEncoderProcess:
    """``EncodeFace`` for ``central serve`` (see the module docstring). Thread-safe: console
    requests call it from worker threads. ``encode``: the face stack's function as
    ``module:name`` (what the worker imports)."""

    def __init__(
        self,
        *,
        nice: int = 10,
        max_pending: int = 4,
        timeout: float = 120.0,
        encode: str = DEFAULT_ENCODE,
        warm_up: bool = True,
    ) -> None:
        self.nice = nice
        self.warm_up = warm_up
        self.timeout = timeout
        self.encode = encode
        self.counters: Counter[str] = Counter()
        self._ctx = mp.get_context("spawn")
        self._max_pending = max_pending
        # The one count of enrolments waiting or running: admission (at most max_pending)
        # and what ``pending`` says are the same number, taken and given back under one lock.
        self._pending = 0
        self._count = threading.Lock()  # guards _pending
        self._pipe = threading.Lock()  # one request on the pipe at a time; guards the worker
        self._proc: Any = None  # the spawn context's Process (multiprocessing is untyped here)
        self._conn: Connection | None = None
        self._ready = False  # the worker said hello (it reads requests from now on)
        self._closed = False

    @property
    def pending(self) -> int:
        """Enrolments waiting for the encoder or being encoded now."""
        return self._pending

    @property
    def restarts(self) -> int:
        """Workers replaced: those that died with an enrolment and those found dead between."""
        return self.counters["died"] + self.counters["restarted"]

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return None if proc is None else proc.pid

    def start(self) -> None:
        """Start the worker now (else at the first enrolment)."""
        with self._pipe:
            self._ensure()

    def wait_ready(self) -> None:
        """Start the worker if needed and wait until it reads requests (its imports done)."""
        with self._pipe:
            self._wait_ready(self._ensure(), time.monotonic() + self.timeout)

    def close(self) -> None:
        with self._pipe:
            self._closed = True
            self._stop()

    def __call__(self, photos: Photos) -> bytes:
        with self._count:
            busy = self._pending >= self._max_pending
            if busy:
                self.counters["busy"] += 1
            else:
                self._pending += 1
        if busy:
            log.warning("face_encoder_busy", pending=self._max_pending)
            raise EncoderUnavailable(
                f"the face encoder has {self._max_pending} enrolments waiting; try again "
                "in a moment",
                "encoder_busy",
            )
        try:
            with self._pipe:
                return self._ask(photos)
        finally:
            with self._count:
                self._pending -= 1

    # --- under self._pipe ------------------------------------------------------------------

    def _ensure(self) -> Connection:
        if self._closed:
            raise EncoderUnavailable("the face encoder is stopped", "encoder_stopped")
        if self._conn is not None and not self._answers(self._conn):
            # Nothing in hand: no enrolment was lost, so a warning, not an error.
            self.counters["restarted"] += 1
            log.warning(
                "face_encoder_restarted",
                why="found dead between enrolments",
                restarts=self.restarts,
            )
            self._stop(kill=True)
        if self._conn is None:
            ours, theirs = self._ctx.Pipe()
            self._proc = self._ctx.Process(
                target=worker_main,
                args=(theirs, self.encode, self.nice, self.warm_up),
                name="face-encoder",
                daemon=True,  # never outlives serve
            )
            self._proc.start()
            theirs.close()
            self._conn = ours
            log.info("face_encoder_started", pid=self._proc.pid, nice=self.nice)
        return self._conn

    def _answers(self, conn: Connection) -> bool:
        """Whether the worker's end of the pipe is still open. The pipe, not
        ``Process.is_alive``: that relies on waitpid, and a process that reaps every child
        (a SIGCHLD handler, another library's child watcher) makes a dead worker look alive.
        A dead worker's end closes with it, so the pipe reads as EOF."""
        try:
            while conn.poll(0):
                self._ready = conn.recv()[0] == "ready"  # only its hello can be waiting
        except (EOFError, OSError):
            return False
        return True

    def _wait_ready(self, conn: Connection, deadline: float) -> None:
        """Wait for the worker's hello before sending: a photo of megabytes does not fit in
        the pipe, and a send to a worker still importing dlib would block with no deadline.
        Raises EOFError when it died, TimeoutError when it did not get ready in time."""
        while not self._ready:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            if conn.poll(min(left, 0.5)):
                self._ready = conn.recv()[0] == "ready"

    def _ask(self, photos: Photos) -> bytes:
        conn = self._ensure()
        deadline = time.monotonic() + self.timeout
        try:
            self._wait_ready(conn, deadline)
            conn.send(("encode", photos))
            while True:
                # Waits without the GIL. A dead worker's end of the pipe closes with it:
                # poll() then returns and recv() raises EOFError.
                if conn.poll(0.5):
                    reply = conn.recv()
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError
        except TimeoutError:
            self._lost(f"no answer in {self.timeout:.0f} s")
            raise EncoderUnavailable(
                f"the face encoder did not answer in {self.timeout:.0f} s; it was "
                "restarted, try again",
                "encoder_died",
            ) from None
        except (EOFError, OSError):
            self._lost("its pipe closed")
            raise EncoderUnavailable(
                "the face encoder stopped while encoding these photos; it was restarted, try again",
                "encoder_died",
            ) from None
        if reply[0] == "ok":
            data: bytes = reply[1]
            return data
        if reply[0] == "refused":
            raise FaceImageError(reply[1], reply[2])
        self.counters["failed"] += 1
        log.error("face_encoder_failed", error=reply[1])
        raise EncoderUnavailable(f"the face encoder failed: {reply[1]}", "encoder_failed")

    def _lost(self, why: str) -> None:
        """The worker died or hung with an enrolment in hand (lost: an error): count it, end
        it and start a new one at once (its imports run while the operator reads the error)."""
        self.counters["died"] += 1
        log.error("face_encoder_died", why=why, restarts=self.restarts)
        self._stop(kill=True)
        self._ensure()

    def _stop(self, kill: bool = False) -> None:
        proc, conn = self._proc, self._conn
        self._proc, self._conn, self._ready = None, None, False
        if conn is not None:
            if not kill:
                with contextlib.suppress(OSError):
                    conn.send(("stop",))
            conn.close()
        if proc is not None:
            if not kill:
                proc.join(5)
            if proc.is_alive():
                proc.kill()
            proc.join(5)
