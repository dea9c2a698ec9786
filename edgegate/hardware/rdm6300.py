"""RDM6300 125 kHz EM4100 reader on a UART (9600 baud, 8N1, transmit only).

A frame is 14 bytes: STX (0x02), 10 ASCII hex digits (version byte + 4 data bytes), 2 ASCII hex
digits of checksum (XOR of the 5 bytes), ETX (0x03). While a card stays in the field the module
repeats the frame every few tens of milliseconds, so the reader suppresses repeats of the same
card within ``hold_off`` seconds of its last frame.

The module sends nothing when no card is present, so a dead module is indistinguishable from
a quiet door; only a vanished serial device (USB adaptor unplugged) is detected as a fault.
"""

from __future__ import annotations

import structlog

from edgegate.hardware.base import (
    CredentialKind,
    ReaderCounters,
)
from edgegate.hardware.frame_reader import FrameReader

log = structlog.get_logger(__name__)

STX = 0x02
ETX = 0x03
FRAME_LEN = 14
_HEX = frozenset(b"0123456789ABCDEFabcdef")
# Never buffer more than a few frames of garbage while waiting for a frame end.
MAX_BUFFER = FRAME_LEN * 4


def checksum(data: bytes) -> int:
    result = 0
    for b in data:
        result ^= b
    return result


def encode_frame(uid: str) -> bytes:
    """The frame an RDM6300 sends for a card whose 10-hex-digit id is ``uid``."""
    raw = bytes.fromhex(uid)
    if len(raw) != 5:
        raise ValueError("an EM4100 id is 5 bytes (10 hex digits)")
    return bytes([STX]) + uid.upper().encode() + f"{checksum(raw):02X}".encode() + bytes([ETX])


class Rdm6300Parser:
    """Incremental frame parser. Feed it any bytes; it returns the UIDs of valid frames and
    counts everything else. It never raises on input."""

    def __init__(self, counters: ReaderCounters | None = None) -> None:
        self.counters = counters or ReaderCounters()
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[str]:
        buf = self._buf
        buf += data
        out: list[str] = []
        while buf:
            start = buf.find(STX)
            if start < 0:
                self.counters.noise_bytes += len(buf)
                buf.clear()
                break
            if start:
                self.counters.noise_bytes += start
                del buf[:start]
            # An STX inside what should be the frame body means the earlier frame was cut off.
            nxt = buf.find(STX, 1, FRAME_LEN)
            if nxt > 0:
                self.counters.bad_frames += 1
                log.debug("rdm6300_partial_frame", skipped=nxt)
                del buf[:nxt]
                continue
            if len(buf) < FRAME_LEN:
                break
            frame = bytes(buf[:FRAME_LEN])
            body = frame[1:13]
            if frame[13] != ETX or not all(c in _HEX for c in body):
                self.counters.bad_frames += 1
                log.warning("rdm6300_bad_frame", frame=frame.hex())
                del buf[:1]  # resync on the next STX
                continue
            del buf[:FRAME_LEN]
            raw = bytes.fromhex(body[:10].decode())
            if checksum(raw) != int(body[10:12], 16):
                self.counters.bad_checksum += 1
                log.warning("rdm6300_bad_checksum", frame=frame.hex())
                continue
            out.append(body[:10].decode().upper())
        if len(buf) > MAX_BUFFER:  # unreachable by construction; a guard against surprises
            self.counters.noise_bytes += len(buf)
            buf.clear()
        return out


class Rdm6300Reader(FrameReader):
    family = "rdm6300"
    kind = CredentialKind.CARD
    parser_class = Rdm6300Parser
