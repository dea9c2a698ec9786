"""A serial device simulated on a real pseudo-terminal.

The slave end is what the daemon opens with pyserial, exactly like /dev/serial0. It is put in
raw mode at once: a fresh pty is in canonical mode, which would swallow bytes like 0x03 (^C)
and echo input back before pyserial gets to configure it.
"""

from __future__ import annotations

import contextlib
import os
import tty


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

    def __enter__(self) -> PtyDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
