"""A QR/barcode scanner that types as a USB keyboard (HID), for a door without a camera.

Most desk and door scanners come as a USB keyboard: each code they decode is typed as key
presses ended by Enter. The door reads the scanner's Linux input device (evdev_port.py:
grabbed, so nothing is typed into a console), turns key events into lines through the
scanner's keyboard layout (input_events.py, hid_keymaps.py), and hands each line over as a
``kind: "qr"`` read, exactly as the serial scanner does (hardware/qr_scanner.py): the door
verifies and decides the pass; the reader only reads. Unplugged, the reader reports
``reader_fault`` and reopens the device with backoff until the scanner is back.
"""

from __future__ import annotations

import structlog

from edgegate.hardware.base import CredentialKind, Direction, ReaderSink
from edgegate.hardware.evdev_port import AsyncEvdev
from edgegate.hardware.frame_reader import ByteSource, FrameParser, FrameReader
from edgegate.hardware.hid_keymaps import Layout
from edgegate.hardware.input_events import KeyLineDecoder

log = structlog.get_logger(__name__)


class QrHidReader(FrameReader):
    family = "qr_hid"
    kind = CredentialKind.QR
    default_hold_off = 2.0

    def __init__(
        self,
        name: str,
        sink: ReaderSink,
        device: str,
        *,
        layout: Layout = "us",
        grab: bool = True,
        direction: Direction = Direction.IN,
        hold_off: float | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        # Read by new_parser and byte_source, which the base class calls.
        self.layout: Layout = layout
        self.grab = grab
        super().__init__(
            name,
            sink,
            device,
            direction=direction,
            hold_off=hold_off,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
        )

    def new_parser(self) -> FrameParser:
        return KeyLineDecoder(self.counters, self.layout, self.name)

    def byte_source(self) -> ByteSource:
        self._evdev = AsyncEvdev(self.port, on_data=self._on_data, grab=self.grab)
        return self._evdev

    async def open(self) -> None:
        self._evdev.open()
        log.info(
            "reader_opened",
            reader=self.name,
            device=self.port,
            layout=self.layout,
            grabbed=self._evdev.grabbed,
        )
