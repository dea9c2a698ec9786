"""A reader that only receives frames over a UART: the RDM6300 (framed 125 kHz card UIDs)
and the serial QR/barcode scanner (one pass token per line).

The two differ only in how bytes become credential values (their parser) and in the kind of
credential; opening the port, failing with it, the hold-off of a credential held in front of
the reader and the hand-over to the door are this one class.
"""

from __future__ import annotations

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
        self.parser = self.parser_class(self.counters)
        self._serial = AsyncSerial(port, baudrate, on_data=self._on_data)
        self._hold_off = HoldOff(self.default_hold_off if hold_off is None else hold_off)

    async def open(self) -> None:
        self._serial.open()
        log.info("reader_opened", reader=self.name, port=self.port, baudrate=self.baudrate)

    async def serve(self) -> None:
        await self._serial.failed.wait()
        raise OSError(self._serial.error or "serial port failed")

    def close(self) -> None:
        self._serial.close()
        self.parser = self.parser_class(self.counters)

    def _on_data(self, data: bytes, t: float) -> None:
        for value in self.parser.feed(data):
            # Held in front of the reader: the device repeats it; the hold-off slides with
            # each repeat.
            if self._hold_off.repeat(value):
                self.counters.repeats_suppressed += 1
                continue
            self.counters.reads += 1
            self.sink.credential(CredentialRead(self.kind, value, self.name, self.direction, t=t))
