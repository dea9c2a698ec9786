"""Linux input events (``struct input_event``) from a keyboard-like device, decoded to lines.

What ``read()`` on ``/dev/input/eventN`` returns is a run of fixed-size records::

    struct input_event { struct timeval time; __u16 type; __u16 code; __s32 value; };

24 bytes on a 64-bit kernel ABI (two 8-byte longs for the time), 16 on a 32-bit one (a
Raspberry Pi OS armhf install): the native ``struct`` format ``llHHi`` is the right size on
either, as for any program built for the machine. Hand-decoded rather than with
python-evdev: its ``InputDevice`` queries the device with ioctls on open, so it cannot read a
simulated device (a pty), it is a C extension built from source on install (no wheels), and
all a scanner needs from it is this record layout and one ioctl (EVIOCGRAB, evdev_port.py),
both stable kernel ABI.

A scanner in HID mode "types" each code: for every character Shift down if needed, the key
down and up, Shift up, each group ended by a SYN_REPORT; the code ends with Enter. Key *down*
events (value 1; 2 is the kernel's autorepeat of a held key, taken as another press) are
turned into characters through the layout (hid_keymaps.py); Enter ends a line. What cannot be
a scanned code is counted, logged (rate-limited) and dropped, never raised:

* a record whose type, key code or key value no kernel sends (``bad_frames``);
* a line with a key the layout does not type, or Ctrl/Alt held, or events the kernel dropped
  (SYN_DROPPED: its buffer overflowed) -- the whole line goes (``bad_frames``), since a pass
  with a character missing is no pass;
* a line longer than :data:`MAX_LINE` (``bad_frames``).
"""

from __future__ import annotations

import struct

import structlog

from edgegate.hardware.base import ReaderCounters
from edgegate.hardware.hid_keymaps import (
    ENTERS,
    KEYMAPS,
    LOCKS,
    OTHER_MODIFIERS,
    SHIFTS,
    Layout,
    char_of,
)
from edgegate.hardware.qr_scanner import MAX_LINE

log = structlog.get_logger(__name__)

RECORD = struct.Struct("llHHi")  # native: 24 bytes on 64-bit, 16 on 32-bit kernels' ABI

EV_SYN, EV_KEY, EV_MSC, EV_LED, EV_REP = 0x00, 0x01, 0x04, 0x11, 0x14
SYN_REPORT, SYN_DROPPED = 0, 3
KEY_MAX = 0x2FF
# Every event type a kernel defines (input-event-codes.h); others are not input events.
EV_TYPES = frozenset({0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x11, 0x12, 0x14, 0x15, 0x16, 0x17})


def record(type_: int, code: int, value: int, sec: int = 0, usec: int = 0) -> bytes:
    """One ``struct input_event`` as the kernel writes it (for simulators and tests)."""
    return RECORD.pack(sec, usec, type_, code, value)


class KeyLineDecoder:
    """Incremental: input-event bytes in (any split), complete lines out. Never raises."""

    def __init__(
        self, counters: ReaderCounters | None = None, layout: Layout = "us", reader: str = ""
    ) -> None:
        self.counters = counters or ReaderCounters()
        self.keymap = KEYMAPS[layout]
        self.reader = reader
        self._buf = bytearray()
        self._line: list[str] = []
        self._shift: set[int] = set()
        self._other: set[int] = set()
        self._spoilt: str | None = None  # why the line being typed cannot be used

    def feed(self, data: bytes) -> list[str]:
        self._buf += data
        size = RECORD.size
        whole = len(self._buf) - len(self._buf) % size
        out: list[str] = []
        for _sec, _usec, type_, code, value in RECORD.iter_unpack(bytes(self._buf[:whole])):
            line = self._event(type_, code, value)
            if line is not None:
                out.append(line)
        del self._buf[:whole]
        return out

    def _bad_record(self, why: str, type_: int, code: int, value: int) -> None:
        self.counters.bad_frames += 1
        log.warning(
            "hid_record_bad", reader=self.reader, reason=why, type=type_, code=code, value=value
        )

    def _spoil(self, why: str) -> None:
        if self._spoilt is None:
            self._spoilt = why

    def _event(self, type_: int, code: int, value: int) -> str | None:
        if type_ not in EV_TYPES:
            self._bad_record("type", type_, code, value)
            return None
        if type_ == EV_SYN:
            if code == SYN_DROPPED:
                # The kernel's buffer overflowed: keys of this line are lost, and which
                # modifiers are held is unknown until they are pressed again.
                self._spoil("events_dropped")
                self._shift.clear()
                self._other.clear()
            return None
        if type_ != EV_KEY:
            return None  # EV_MSC scan codes, LED and repeat settings: nothing to type
        if code > KEY_MAX or value not in (0, 1, 2):
            self._bad_record("key", type_, code, value)
            return None
        if code in SHIFTS or code in OTHER_MODIFIERS:
            held = self._shift if code in SHIFTS else self._other
            if value:
                held.add(code)
            else:
                held.discard(code)
            return None
        if value == 0 or code in LOCKS:
            return None
        if code in ENTERS:
            return self._end()
        ch = None if self._other else char_of(self.keymap, code, bool(self._shift))
        if ch is None:
            self._spoil("modifier" if self._other else "key")
        elif len(self._line) >= MAX_LINE:
            self._spoil("too_long")
        else:
            self._line.append(ch)
        return None

    def _end(self) -> str | None:
        line, spoilt = "".join(self._line), self._spoilt
        self._line.clear()
        self._spoilt = None
        if spoilt is not None:
            self.counters.bad_frames += 1
            log.warning("hid_line_unreadable", reader=self.reader, reason=spoilt, chars=len(line))
            return None
        return line or None
