"""The camera as a reader: talks to the face process, reports faces like any credential.

``open`` starts the face process (once; it survives camera faults with its gallery loaded)
and asks it to open the camera; ``serve`` waits for the process to report a camera failure,
which the base class turns into ``reader_fault`` and a reopen with backoff. Results come back
on a pipe whose fd is registered with ``loop.add_reader``: the loop reads a small tuple when
one is ready and never waits on the face process.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import structlog

from edgegate.face import worker
from edgegate.face.pipeline import Settings
from edgegate.hardware.base import CredentialKind, CredentialRead, Direction, Reader, ReaderSink

log = structlog.get_logger(__name__)

FailedCallback = Callable[[str, bool], None]
START_TIMEOUT = 60.0  # importing dlib and loading its models on a Pi 3 takes a while
OPEN_TIMEOUT = 15.0


class CameraReader(Reader):
    family = "camera"

    def __init__(
        self,
        name: str,
        sink: ReaderSink,
        source: str,
        settings: Settings,
        db_path: Path,
        *,
        key_file: Path | None = None,
        direction: Direction = Direction.IN,
        fps: float = 0.0,
        nice: int = 10,
        on_failed: FailedCallback | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        super().__init__(
            name, sink, direction, backoff_initial=backoff_initial, backoff_max=backoff_max
        )
        self.source = source
        self.settings = settings
        self.db_path = db_path
        self.key_file = key_file
        self.fps = fps
        self.nice = nice
        self.on_failed = on_failed
        self.gallery_size = 0
        self.gallery_bad = 0
        self.gallery_errors = 0
        self.pipeline_stats: dict[str, Any] = {}
        # (detect, encode, match) ms of the deciding frame of recent grants, for benchmarks.
        self.grant_timings: list[dict[str, float]] = []
        self._proc: BaseProcess | None = None
        self._conn: Connection | None = None
        self._control: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self._attempt = 0

    # --- the face process ------------------------------------------------------------------
    async def _ensure_process(self) -> None:
        if self._proc is not None and self._proc.is_alive() and self._conn is not None:
            return
        await asyncio.to_thread(self._reap, self._stop_process())
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(
            target=worker.main,
            args=(child, self.settings, self.db_path, self.key_file, self.nice),
            name=f"edgegate-face-{self.name}",
            daemon=True,
        )
        # Process.start() spawns a new interpreter: a few ms of fork/exec, not the imports.
        proc.start()
        child.close()
        self._proc, self._conn = proc, parent
        self._control = asyncio.Queue()
        asyncio.get_running_loop().add_reader(parent.fileno(), self._readable)
        msg = await self._expect(("ready",), START_TIMEOUT)
        self.gallery_size, self.gallery_bad = msg[1], msg[2]
        log.info(
            "face_process_ready", reader=self.name, pid=proc.pid, people=msg[1], unreadable=msg[2]
        )

    def _stop_process(self) -> BaseProcess | None:
        """Tell the face process to stop; returns it for ``_reap``."""
        conn, proc = self._conn, self._proc
        self._conn = self._proc = None
        if conn is not None:
            with contextlib.suppress(RuntimeError, ValueError, OSError):
                asyncio.get_running_loop().remove_reader(conn.fileno())
            with contextlib.suppress(OSError):
                conn.send(("stop",))
            conn.close()
        return proc

    @staticmethod
    def _reap(proc: BaseProcess | None) -> None:
        """Blocking: wait for the process to exit (run in a thread, never on the loop)."""
        if proc is None:
            return
        # It exits within one frame of "stop"; kill it if it is stuck inside dlib.
        proc.join(timeout=2.0)
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=2.0)

    def _readable(self) -> None:
        # Messages are a few dozen bytes, written whole (below PIPE_BUF), so a readable pipe
        # holds a complete message and recv() does not wait.
        conn = self._conn
        if conn is None:
            return
        try:
            while conn.poll():
                self._dispatch(conn.recv())
        except (EOFError, OSError):
            # The face process died (killed, out of memory): serve() raises, the base class
            # reports reader_fault and open() starts a new one.
            asyncio.get_running_loop().remove_reader(conn.fileno())
            self._conn = None
            self._control.put_nowait(("camera_error", "face process exited", None))

    def _dispatch(self, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "grant":
            _, value, distance, frame_t, timings = msg
            self.counters.reads += 1
            self.grant_timings = [*self.grant_timings[-99:], timings]
            self.sink.credential(
                CredentialRead(
                    kind=CredentialKind.FACE,
                    value=value,
                    reader=self.name,
                    direction=self.direction,
                    score=round(float(distance), 4),
                    t=frame_t,
                )
            )
        elif kind == "qr":
            _, text, frame_t = msg
            self.counters.reads += 1
            self.sink.credential(
                CredentialRead(CredentialKind.QR, text, self.name, self.direction, t=frame_t)
            )
        elif kind == "failed":
            _, reason, poor, distance = msg
            log.info(
                "face_not_recognised",
                reader=self.name,
                reason=reason,
                poor=poor,
                distance=None if distance is None else round(distance, 4),
            )
            if self.on_failed is not None:
                self.on_failed(reason, poor)
        elif kind == "gallery":
            self.gallery_size, self.gallery_bad = msg[1], msg[2]
            log.info("face_gallery_loaded", reader=self.name, people=msg[1], unreadable=msg[2])
            if msg[2]:
                log.error("face_credentials_unreadable", reader=self.name, count=msg[2])
        elif kind == "gallery_error":
            self.gallery_errors += 1
            log.error("face_gallery_failed", reader=self.name, error=msg[1])
        elif kind == "stats":
            self.pipeline_stats = msg[1]
        else:
            self._control.put_nowait(msg)

    def _current(self, msg: tuple[Any, ...]) -> bool:
        """False for an answer to an earlier open attempt (see worker.py)."""
        if msg[0] == "opened":
            return msg[1] == self._attempt
        if msg[0] == "camera_error":
            return msg[2] is None or msg[2] == self._attempt
        return True

    async def _expect(self, kinds: tuple[str, ...], timeout: float) -> tuple[Any, ...]:
        try:
            async with asyncio.timeout(timeout):
                while True:
                    msg = await self._control.get()
                    if not self._current(msg):
                        continue
                    if msg[0] in kinds:
                        return msg
                    if msg[0] == "camera_error":
                        raise OSError(msg[1])
        except TimeoutError:
            raise OSError(f"face process did not answer within {timeout:g} s") from None

    def _send(self, *cmd: Any) -> None:
        if self._conn is None:
            raise OSError("face process is not running")
        self._conn.send(cmd)

    # --- Reader ----------------------------------------------------------------------------
    async def open(self) -> None:
        await self._ensure_process()
        self._attempt += 1
        self._send("open", self.source, self.fps, self._attempt)
        await self._expect(("opened",), OPEN_TIMEOUT)

    async def serve(self) -> None:
        while True:
            msg = await self._control.get()
            if msg[0] == "camera_error" and self._current(msg):
                raise OSError(msg[1])

    def close(self) -> None:
        # The camera only: the face process stays up with its gallery for the reopen.
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.send(("close",))

    async def run(self) -> None:
        try:
            await super().run()
        finally:
            await asyncio.to_thread(self._reap, self._stop_process())

    def reload_gallery(self) -> None:
        """Reload the gallery from the store now (after a credential update arrived)."""
        if self._conn is not None:
            self._send("reload")

    def status(self) -> dict[str, object]:
        return {
            **super().status(),
            "people": self.gallery_size,
            "unreadable_faces": self.gallery_bad,
            "gallery_errors": self.gallery_errors,
            "pipeline": self.pipeline_stats,
        }
