"""A QR/barcode scanner module on a UART, for a door without a camera (docs/visitors.md).

Such scanners (the documented model: the Waveshare Barcode Scanner Module, UART mode, 9600
baud 8N1, suffix CR; most others can be set to the same) type what they decode as one line of
ASCII ended by CR, LF or both. A line is a visitor pass token; the door verifies and decides
it (``kind: "qr"``), the reader only reads. A phone held under the scanner is decoded again
and again: the same line within ``hold_off`` seconds counts once.
"""

from __future__ import annotations

import structlog

from edgegate.hardware.base import (
    CredentialKind,
    ReaderCounters,
)
from edgegate.hardware.frame_reader import FrameReader

log = structlog.get_logger(__name__)

# Longer than any pass token (visitor_pass.MAX_TOKEN): a line past this is noise or another
# kind of barcode, dropped and counted instead of buffered without end.
MAX_LINE = 1024


class LineParser:
    """Incremental: bytes in, complete printable lines out. Never raises on input."""

    def __init__(self, counters: ReaderCounters | None = None) -> None:
        self.counters = counters or ReaderCounters()
        self._buf = bytearray()
        self._overflow = False

    def feed(self, data: bytes) -> list[str]:
        out: list[str] = []
        for b in data:
            if b in (0x0D, 0x0A):
                if self._overflow:
                    self._overflow = False
                elif self._buf:
                    out.append(self._buf.decode("ascii"))
                self._buf.clear()
            elif 0x20 <= b < 0x7F:
                if len(self._buf) >= MAX_LINE:
                    self.counters.bad_frames += 1
                    self._buf.clear()
                    self._overflow = True
                elif not self._overflow:
                    self._buf.append(b)
            else:
                self.counters.noise_bytes += 1
        return out


class QrScannerReader(FrameReader):
    family = "qr_scanner"
    kind = CredentialKind.QR
    parser_class = LineParser
    default_hold_off = 2.0
