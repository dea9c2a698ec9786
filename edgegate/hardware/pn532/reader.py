"""The PN532 at the door: polls InListPassiveTarget and reports each card once.

A card left in the field answers every poll; like the RDM6300 reader, the same UID seen again
within ``hold_off`` seconds of its last sighting is suppressed (the hold-off slides while the
card stays), so a card resting on the reader counts once and counts again only after it has
been away for ``hold_off`` seconds. Any poll that times out raises ``OSError`` out of
``serve``: the base class reports reader_fault and reopens (wake-up and handshake again).
"""

from __future__ import annotations

import asyncio
import time

import structlog

from edgegate.hardware.base import (
    CredentialKind,
    CredentialRead,
    Direction,
    HoldOff,
    Reader,
    ReaderSink,
)
from edgegate.hardware.pn532.driver import BAUDRATE, Pn532

log = structlog.get_logger(__name__)


class Pn532Reader(Reader):
    family = "pn532"

    def __init__(
        self,
        name: str,
        sink: ReaderSink,
        port: str,
        *,
        baudrate: int = BAUDRATE,
        direction: Direction = Direction.IN,
        poll_interval: float = 0.1,
        timeout: float = 0.5,
        hold_off: float = 1.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        super().__init__(
            name, sink, direction, backoff_initial=backoff_initial, backoff_max=backoff_max
        )
        self.port = port
        self.chip = Pn532(port, baudrate=baudrate, timeout=timeout, counters=self.counters)
        self.poll_interval = poll_interval
        self.hold_off = hold_off
        self.polls = 0
        self._hold_off = HoldOff(hold_off)

    async def open(self) -> None:
        self.chip.open()
        firmware = await self.chip.handshake()
        log.info(
            "reader_opened",
            reader=self.name,
            port=self.port,
            ic=hex(firmware.ic),
            firmware=f"{firmware.version}.{firmware.revision}",
        )

    def close(self) -> None:
        self.chip.close()

    def status(self) -> dict[str, object]:
        return {**super().status(), "polls": self.polls, "nacks_sent": self.chip.nacks_sent}

    async def serve(self) -> None:
        while True:
            target = await self.chip.list_passive_target()
            self.polls += 1
            if target is not None:
                self._seen(target.uid_hex)
            await asyncio.sleep(self.poll_interval)

    def _seen(self, uid: str) -> None:
        if self._hold_off.repeat(uid):
            self.counters.repeats_suppressed += 1
            return
        self.counters.reads += 1
        self.sink.credential(
            CredentialRead(
                CredentialKind.CARD,
                uid,
                self.name,
                self.direction,
                t=self.chip.last_rx_t or time.perf_counter(),
            )
        )
