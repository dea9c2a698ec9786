"""A USB HID QR scanner: the ``struct input_event`` records the kernel would hand a reader.

``HidScannerSimulator`` writes them into a pseudo-terminal (raw mode, so every byte passes
as is) behind a ``...-event-kbd`` link, as ``/dev/input/by-id`` has one to ``../eventN``:
a pty is not an input device, so the reader's grab fails there (the reader logs it once and
reads on). ``unplug`` closes the pty (the reader's read fails, as with ENODEV on a real
unplug) and removes the link; ``replug`` makes a new pty (another node, as the kernel gives
a replugged scanner another ``eventN``) behind the same link. Writes go through a thread of
the scanner's own: a pass is ~40 kB of records, more than a pty holds, and a real scanner
types on while the reader's loop is busy (a write from that loop would wait for itself).

``UinputScanner`` is the same scanner as a real kernel input device made through
``/dev/uinput`` (needs the uinput module and the privilege to open it): the reader's grab and
the kernel's own records are then the real ones.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import struct
import threading
import time
import tty
from pathlib import Path
from typing import Self

from edgegate.hardware.hid_keymaps import KEY_ENTER, KEY_LEFTSHIFT, KEYMAPS, Layout, keys_of
from edgegate.hardware.input_events import EV_KEY, EV_MSC, EV_SYN, SYN_REPORT, record

MSC_SCAN = 4


def typed(text: str, layout: Layout = "us", *, enter: bool = True) -> bytes:
    """The records a scanner set to ``layout`` sends to type ``text`` (then Enter)."""
    keys = keys_of(KEYMAPS[layout], text)
    if enter:
        keys.append((KEY_ENTER, False))
    sec, usec = divmod(time.time_ns() // 1000, 1_000_000)
    out = bytearray()

    def key(code: int, value: int) -> None:
        # As a USB keyboard reports: the HID usage (MSC_SCAN), the key, then SYN_REPORT.
        out.extend(record(EV_MSC, MSC_SCAN, 0x70000 + code, sec, usec))
        out.extend(record(EV_KEY, code, value, sec, usec))
        out.extend(record(EV_SYN, SYN_REPORT, 0, sec, usec))

    for code, shift in keys:
        if shift:
            key(KEY_LEFTSHIFT, 1)
        key(code, 1)
        key(code, 0)
        if shift:
            key(KEY_LEFTSHIFT, 0)
    return bytes(out)


class HidScannerSimulator:
    def __init__(self, directory: Path, name: str = "usb-Barcode_Scanner-event-kbd") -> None:
        self.link = Path(directory) / name
        self.master: int | None = None
        self.slave: int | None = None
        self.plugged = 0
        self._lock = threading.Lock()
        self._pending: queue.Queue[bytes | None] = queue.Queue()
        self._writer = threading.Thread(target=self._write_loop, name="hid-scanner", daemon=True)
        self._writer.start()
        self.replug()

    @property
    def path(self) -> str:
        return str(self.link)

    def replug(self) -> None:
        self.unplug()
        with self._lock:
            self.master, self.slave = os.openpty()
            tty.setraw(self.slave)
            # The slave stays open here so the pty never hangs up while the reader reopens it.
            self.link.symlink_to(os.ttyname(self.slave))
            self.plugged += 1

    def unplug(self) -> None:
        """Pull the cable: what was not read yet is lost with it."""
        with self._lock:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()
            for fd in (self.master, self.slave):
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self.master = self.slave = None

    def write(self, data: bytes) -> None:
        """Queue records to type; the scanner's thread writes them in order."""
        if self.master is None:
            raise OSError("the scanner is unplugged")
        self._pending.put(data)

    def _write_loop(self) -> None:
        while (data := self._pending.get()) is not None:
            view = memoryview(data)
            while view:
                with self._lock:
                    fd = self.master
                    if fd is None:
                        break  # unplugged meanwhile
                    try:
                        # Blocking write with the lock held would stall unplug: poll instead.
                        os.set_blocking(fd, False)
                        n = os.write(fd, view)
                    except BlockingIOError:
                        n = 0
                    except OSError:
                        break
                view = view[n:]
                if not n:
                    time.sleep(0.002)  # the pty is full: the reader has not read yet

    def scan(self, text: str, layout: Layout = "us") -> None:
        self.write(typed(text, layout))

    def close(self) -> None:
        self.unplug()  # first: a writer waiting on a full pty gives up
        self._pending.put(None)
        self._writer.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# linux/uinput.h: _IOW('U', 100, int), _IOW('U', 101, int), _IO('U', 1), _IO('U', 2),
# _IOW('U', 3, struct uinput_setup), _IOC(_IOC_READ, 'U', 44, 64).
UI_SET_EVBIT = 0x40045564
UI_SET_KEYBIT = 0x40045565
UI_DEV_CREATE = 0x5501
UI_DEV_DESTROY = 0x5502
UINPUT_SETUP = struct.Struct("HHHH80sI")  # struct input_id, name[80], ff_effects_max
UI_DEV_SETUP = 0x40000000 | UINPUT_SETUP.size << 16 | 0x5503
UI_GET_SYSNAME_64 = 0x80000000 | 64 << 16 | 0x552C
UINPUT = "/dev/uinput"


class UinputScanner:
    """A scanner as a real kernel keyboard through ``/dev/uinput``; ``path`` is its
    ``/dev/input/eventN``. Raises OSError where uinput is missing or not permitted."""

    def __init__(self, name: str = "edgegate test scanner") -> None:
        self.fd = os.open(UINPUT, os.O_WRONLY | os.O_NONBLOCK)
        try:
            fcntl.ioctl(self.fd, UI_SET_EVBIT, EV_KEY)
            for code in {KEY_ENTER, KEY_LEFTSHIFT, *KEYMAPS["us"]}:
                fcntl.ioctl(self.fd, UI_SET_KEYBIT, code)
            setup = UINPUT_SETUP.pack(0x03, 0x1234, 0x5678, 1, name.encode()[:79], 0)
            fcntl.ioctl(self.fd, UI_DEV_SETUP, setup)
            fcntl.ioctl(self.fd, UI_DEV_CREATE)
            sysname = fcntl.ioctl(self.fd, UI_GET_SYSNAME_64, bytes(64)).split(b"\0")[0].decode()
            self.path = self._node(Path("/sys/devices/virtual/input") / sysname)
        except OSError:
            os.close(self.fd)
            raise

    @staticmethod
    def _node(sys_dir: Path, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # udev makes the node shortly after creation
            for entry in sys_dir.glob("event*"):
                node = Path("/dev/input") / entry.name
                if node.exists():
                    return str(node)
            time.sleep(0.05)
        raise OSError(f"no /dev/input node for {sys_dir}")

    def scan(self, text: str, layout: Layout = "us") -> None:
        # The kernel stamps its own time on what it passes on; the ones written are ignored.
        os.write(self.fd, typed(text, layout))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            fcntl.ioctl(self.fd, UI_DEV_DESTROY)
        with contextlib.suppress(OSError):
            os.close(self.fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
