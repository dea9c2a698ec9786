"""A reader that only receives frames: the RDM6300 (framed 125 kHz card UIDs) and the serial
QR/barcode scanner (one pass token per line) on a UART, the USB HID QR scanner (key events
from a Linux input device, hardware/qr_hid.py).

They differ only in how bytes become credential values (their parser), where the bytes come
from (their byte source: a serial port unless a subclass says otherwise) and the kind of
credential; opening the source, failing with it, the hold-off of a credential held in front
of the reader and the hand-over to the door are this one class.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

import structlog

from edgegate.hardware.base import (
    CredentialKind,
    CredentialRead,
    Direction,
    HoldOff,
    Reader,
    ReaderCounters,
    ReaderSink,
)
from edgegate.hardware.serial_port import AsyncSerial

log = structlog.get_logger(__name__)


class FrameParser(Protocol):
    def feed(self, data: bytes) -> list[str]:
        """Bytes in (any split), whole credential values out; bad input only counted."""
        ...


class ByteSource(Protocol):
    """Where a frame reader's bytes come from (``AsyncSerial``, ``AsyncEvdev``): opened on the
    loop, delivering chunks to the reader's ``_on_data``; ``failed`` set (and ``error`` said)
    when the device went away."""

    failed: asyncio.Event
    error: str | None

    def open(self) -> None: ...

    def close(self) -> None: ...


class FrameReader(Reader):
    """Subclasses set ``family``, ``kind``, ``parser_class`` (built from the counters) and
    ``default_hold_off`` (seconds a repeated value is ignored unless the config says)."""

    kind: CredentialKind
    parser_class: Callable[[ReaderCounters], FrameParser]
    default_hold_off: float = 1.0

    def __init__(
        self,
        name: str,
        sink: ReaderSink,
        port: str,
        *,
        baudrate: int = 9600,
        direction: Direction = Direction.IN,
        hold_off: float | None = None,
        **kwargs: float,
    ) -> None:
        super().__init__(name, sink, direction, **kwargs)
        self.port = port
        self.baudrate = baudrate
        self.parser = self.new_parser()
        self._serial = self.byte_source()
        self._hold_off = HoldOff(self.default_hold_off if hold_off is None else hold_off)

    def new_parser(self) -> FrameParser:
        return self.parser_class(self.counters)

    def byte_source(self) -> ByteSource:
        return AsyncSerial(self.port, self.baudrate, on_data=self._on_data)

    async def open(self) -> None:
        self._serial.open()
        log.info("reader_opened", reader=self.name, port=self.port, baudrate=self.baudrate)

    async def serve(self) -> None:
        await self._serial.failed.wait()
        raise OSError(self._serial.error or "device failed")

    def close(self) -> None:
        self._serial.close()
        self.parser = self.new_parser()

    def _on_data(self, data: bytes, t: float) -> None:
        for value in self.parser.feed(data):
            # Held in front of the reader: the device repeats it; the hold-off slides with
            # each repeat.
            if self._hold_off.repeat(value):
                self.counters.repeats_suppressed += 1
                continue
            self.counters.reads += 1
            self.sink.credential(CredentialRead(self.kind, value, self.name, self.direction, t=t))
