"""A Linux input device (``/dev/input/eventN``) read on the asyncio loop, grabbed.

Like ``AsyncSerial`` for a UART: the device is opened non-blocking and registered with
``loop.add_reader``, so a chunk of ``struct input_event`` records is handed over the moment
the kernel has it, with no thread and no polling.

Grab (EVIOCGRAB): a scanner is a keyboard to the kernel, so without it every scanned pass
would also be typed into the console or a login prompt on the door's screen. While grabbed,
this process is the only reader of the device. A device that cannot be grabbed because it is
no input device (a pty standing in for one) is read anyway, logged once; one another program
has grabbed (EBUSY) is a fault like a missing device, retried with the reader's backoff.

Unplugging the scanner makes ``read`` fail with ENODEV; its node and its
``/dev/input/by-id`` link disappear, and the reader's reopen (with backoff) finds them again
when it is plugged back, whichever ``eventN`` the kernel gives it then.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import time

import structlog

from edgegate.hardware.input_events import RECORD
from edgegate.hardware.serial_port import DataCallback

log = structlog.get_logger(__name__)

# _IOW('E', 0x90, int): dir write (1 << 30) | sizeof(int) << 16 | 'E' << 8 | 0x90.
EVIOCGRAB = 0x40044590
READ_BYTES = RECORD.size * 128  # whole records: evdev returns only whole events
NOT_AN_INPUT_DEVICE = (errno.ENOTTY, errno.EINVAL)


class AsyncEvdev:
    """``on_data(data, t)`` gets every chunk read and its ``perf_counter`` arrival time; a
    failed read or a hang-up sets ``failed`` and ``error`` (the reader's ``serve`` raises)."""

    def __init__(self, path: str, *, on_data: DataCallback, grab: bool = True) -> None:
        self.path = path
        self.grab = grab
        self._on_data = on_data
        self._fd: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.failed: asyncio.Event = asyncio.Event()
        self.error: str | None = None
        self.grabbed = False
        self._grab_warned = False

    def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            self.grabbed = self._grab(fd) if self.grab else False
        except OSError:
            os.close(fd)
            raise
        self._fd = fd
        self.failed = asyncio.Event()
        self.error = None
        self._loop.add_reader(fd, self._readable)

    def _grab(self, fd: int) -> bool:
        try:
            fcntl.ioctl(fd, EVIOCGRAB, 1)
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                raise OSError(exc.errno, f"{self.path} is grabbed by another program") from None
            if exc.errno not in NOT_AN_INPUT_DEVICE:
                raise
            if not self._grab_warned:  # once per reader: it will not change on reopen
                self._grab_warned = True
                log.warning("hid_grab_unsupported", device=self.path, error=os.strerror(exc.errno))
            return False
        return True

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if self._loop is not None:
            self._loop.remove_reader(fd)
        # Closing releases the grab too; the device goes back to the console.
        with contextlib.suppress(OSError):
            os.close(fd)

    def _fail(self, reason: str) -> None:
        self.error = reason
        self.failed.set()
        self.close()

    def _readable(self) -> None:
        fd = self._fd
        if fd is None:
            return
        try:
            data = os.read(fd, READ_BYTES)
        except BlockingIOError:
            return
        except OSError as exc:
            # ENODEV: unplugged; EIO: the other end of a pty went away.
            self._fail(f"{self.path}: {exc.strerror or exc}")
            return
        if not data:
            self._fail(f"{self.path}: device hung up")
            return
        self._on_data(data, time.perf_counter())
