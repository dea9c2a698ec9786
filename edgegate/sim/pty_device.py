"""A serial device simulated on a real pseudo-terminal.

The slave end is what the daemon opens with pyserial, exactly like /dev/serial0. It is put in
raw mode at once: a fresh pty is in canonical mode, which would swallow bytes like 0x03 (^C)
and echo input back before pyserial gets to configure it.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
import tty
from typing import Self


class PtyDevice:
    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        # Keeping the slave open here means the pty never hangs up when the reader closes and
        # reopens its end.
        self.port = os.ttyname(self.slave)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.master, view)
            view = view[n:]

    def close(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ThreadedPtyDevice:
    """A device with its own processor: a pty whose master end is served by a thread.

    A real module answers while the loop under test is busy, so its answers (and their
    pacing) must not wait for that loop; a stalled loop must show up as latency in the daemon,
    not slow the "device" down with it. Subclasses implement ``_received(data, t)``, called
    on the device thread with every chunk the host wrote and the ``perf_counter`` time it
    arrived, and answer with ``_write``. The thread also makes a device usable from
    synchronous code (the demo).
    """

    thread_name = "pty-device"

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        # Raw at once: a fresh pty is canonical and would eat or echo bytes such as 0x03/0x0D.
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        # The slave stays open here so the pty never hangs up while the driver reopens it.
        self.port = os.ttyname(self.slave)
        self.bytes_in = 0
        self.bytes_out = 0
        # Fault switches, set from the test's thread and read on the device thread.
        self._lock = threading.RLock()
        self._unplugged = False
        self._corrupt_next = 0
        self._wake_r, self._wake_w = os.pipe()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)

    def _received(self, data: bytes, t: float) -> None:
        raise NotImplementedError

    def corrupt_next(self, n: int = 1) -> None:
        """Send the next ``n`` answers with a wrong checksum."""
        with self._lock:
            self._corrupt_next += n

    def unplug(self) -> None:
        """Stop answering (power or wire lost); input is swallowed until ``replug``."""
        with self._lock:
            self._unplugged = True

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._stop:
            return
        self._stop = True
        os.write(self._wake_w, b"x")
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        for fd in (self.master, self.slave, self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- device thread ------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop:
            try:
                ready, _, _ = select.select([self.master, self._wake_r], [], [], 0.5)
            except (OSError, ValueError):
                return
            if self.master not in ready:
                continue
            try:
                data = os.read(self.master, 4096)
            except BlockingIOError:
                continue
            except OSError:
                return  # pty closed under us: stop()
            t_arrived = time.perf_counter()
            self.bytes_in += len(data)
            self._received(data, t_arrived)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view and not self._stop:
            try:
                n = os.write(self.master, view)
            except BlockingIOError:
                # The host is not reading (port closed); wait a little, never forever.
                select.select([], [self.master], [], 0.05)
                continue
            except OSError:
                return
            self.bytes_out += n
            view = view[n:]
