"""The Wiegand reader at the door: edges -> decoder -> cards and keypad PINs.

Cards are reported as ``CredentialKind.CARD`` with the value from ``formats.card_value``
(facility + number as hex). Keys collect into a PIN (``keypad.PinAssembler``) reported as
``CredentialKind.PIN`` when '#' is pressed or the key timeout runs out. Frames with bad
parity or a wrong length are counted (``bad_checksum`` / ``bad_frames``), logged and dropped.

Everything runs on the event loop: the edge source's descriptor is watched with
``add_reader``; a loop timer ends the frame once the line has been quiet for the frame gap,
and another submits a PIN when no key follows.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from edgegate.hardware.base import (
    CredentialKind,
    CredentialRead,
    Direction,
    HoldOff,
    Reader,
    ReaderSink,
)
from edgegate.hardware.keypad import PinAssembler
from edgegate.hardware.wiegand.decoder import Timing, WiegandDecoder
from edgegate.hardware.wiegand.formats import Card, FrameError, Key, decode
from edgegate.hardware.wiegand.gpio import EdgeSource, GpiodEdgeSource

log = structlog.get_logger(__name__)


class WiegandReader(Reader):
    family = "wiegand"

    def __init__(
        self,
        name: str,
        sink: ReaderSink,
        source: EdgeSource,
        *,
        direction: Direction = Direction.IN,
        timing: Timing | None = None,
        formats: tuple[int, ...] = (26, 34),
        hold_off: float = 1.0,
        key_timeout: float = 5.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        super().__init__(
            name, sink, direction, backoff_initial=backoff_initial, backoff_max=backoff_max
        )
        self.source = source
        self.timing = timing or Timing()
        self.decoder = WiegandDecoder(self.timing)
        self.formats = formats
        self.hold_off = hold_off
        self.keypad = PinAssembler(key_timeout)
        self.keys = 0
        self.pins = 0
        self._fd: int | None = None
        self._failed = asyncio.Event()
        self._error = ""
        self._frame_timer: asyncio.TimerHandle | None = None
        self._key_timer: asyncio.TimerHandle | None = None
        self._hold_off = HoldOff(hold_off)

    @classmethod
    def from_config(
        cls, cfg: Any, name: str, sink: ReaderSink, source: EdgeSource | None = None
    ) -> WiegandReader:
        """The reader for a ``[[readers]] type = "wiegand"`` table. ``source``: wires injected
        in place of the table's GPIO lines (simulated ones in tests and the demo)."""
        if source is None:
            source = GpiodEdgeSource(cfg.chip, cfg.d0, cfg.d1)
        return cls(
            name,
            sink,
            source,
            direction=Direction(cfg.direction),
            timing=Timing.from_us(
                cfg.min_pulse_us, cfg.max_pulse_us, cfg.min_interval_us, cfg.frame_gap_ms
            ),
            formats=tuple(cfg.formats),
            hold_off=cfg.hold_off_seconds,
            key_timeout=cfg.pin_key_timeout_seconds,
        )

    # -- Reader -------------------------------------------------------------------------------
    async def open(self) -> None:
        self._failed = asyncio.Event()
        self._error = ""
        fd = self.source.open()
        self._fd = fd
        asyncio.get_running_loop().add_reader(fd, self._readable)
        log.info("reader_opened", reader=self.name, source=type(self.source).__name__)

    async def serve(self) -> None:
        await self._failed.wait()
        raise OSError(self._error or "edge source failed")

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            asyncio.get_running_loop().remove_reader(fd)
        for timer in (self._frame_timer, self._key_timer):
            if timer is not None:
                timer.cancel()
        self._frame_timer = self._key_timer = None
        self.source.close()
        # A frame cut by the fault is lost; the counters carry on.
        counters = self.decoder.counters
        self.decoder = WiegandDecoder(self.timing)
        self.decoder.counters = counters

    def status(self) -> dict[str, object]:
        return {
            **super().status(),
            **{f"wiegand_{k}": v for k, v in self.decoder.counters.as_dict().items()},
            "keys": self.keys,
            "pins": self.pins,
        }

    # -- edges --------------------------------------------------------------------------------
    def _readable(self) -> None:
        try:
            edges = self.source.read()
        except OSError as exc:
            self._fail(str(exc) or "edge source read failed")
            return
        for edge in edges:
            for frame in self.decoder.feed(edge):
                self._frame(frame)
        if self.decoder.pending:
            if self._frame_timer is not None:
                self._frame_timer.cancel()
            # Slightly over the gap so the frame's last bit is surely in.
            delay = self.timing.frame_gap_ns / 1e9 * 1.2
            self._frame_timer = asyncio.get_running_loop().call_later(delay, self._frame_ended)

    def _fail(self, reason: str) -> None:
        self._error = reason
        self._failed.set()
        if self._fd is not None:
            asyncio.get_running_loop().remove_reader(self._fd)
            self._fd = None

    def _frame_ended(self) -> None:
        self._frame_timer = None
        bits = self.decoder.flush()
        if bits is not None:
            self._frame(bits)

    def _frame(self, bits: list[int]) -> None:
        result = decode(bits, self.formats)
        if isinstance(result, Card):
            self._card(result)
        elif isinstance(result, Key):
            self._key(result.key)
        else:
            if result is FrameError.BAD_PARITY:
                self.counters.bad_checksum += 1
            else:
                self.counters.bad_frames += 1
            log.warning(
                "wiegand_frame_dropped", reader=self.name, problem=str(result), bits=len(bits)
            )

    def _card(self, card: Card) -> None:
        value = card.value
        if self._hold_off.repeat(value):
            self.counters.repeats_suppressed += 1
            return
        self.counters.reads += 1
        log.debug("wiegand_card", reader=self.name, bits=card.bits, facility=card.facility)
        self.sink.credential(CredentialRead(CredentialKind.CARD, value, self.name, self.direction))

    def _key(self, key: str) -> None:
        self.keys += 1
        loop = asyncio.get_running_loop()
        pin = self.keypad.key(key, loop.time())
        self._arm_key_timer()
        if pin is not None:
            self._pin(pin)

    def _arm_key_timer(self) -> None:
        if self._key_timer is not None:
            self._key_timer.cancel()
            self._key_timer = None
        deadline = self.keypad.deadline
        if deadline is not None:
            loop = asyncio.get_running_loop()
            self._key_timer = loop.call_at(deadline, self._key_timeout)

    def _key_timeout(self) -> None:
        self._key_timer = None
        pin = self.keypad.expired(asyncio.get_running_loop().time())
        if pin is not None:
            self._pin(pin)

    def _pin(self, pin: str) -> None:
        self.pins += 1
        # Never log the digits.
        log.info("keypad_pin", reader=self.name, digits=len(pin))
        self.sink.credential(CredentialRead(CredentialKind.PIN, pin, self.name, self.direction))
