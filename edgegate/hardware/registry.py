"""Building readers from their config tables: one entry per ``[[readers]] type``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgegate.hardware.base import Direction, Reader, ReaderSink
from edgegate.hardware.rdm6300 import Rdm6300Reader

Builder = Callable[[Any, str, ReaderSink], Reader]


def _rdm6300(cfg: Any, name: str, sink: ReaderSink) -> Reader:
    return Rdm6300Reader(
        name,
        sink,
        cfg.port,
        baudrate=cfg.baudrate,
        direction=Direction(cfg.direction),
        hold_off=cfg.hold_off_seconds,
    )


def _pn532(cfg: Any, name: str, sink: ReaderSink) -> Reader:
    from edgegate.hardware.pn532.reader import Pn532Reader

    return Pn532Reader(
        name,
        sink,
        cfg.port,
        baudrate=cfg.baudrate,
        direction=Direction(cfg.direction),
        poll_interval=cfg.poll_interval_seconds,
        timeout=cfg.timeout_seconds,
        hold_off=cfg.hold_off_seconds,
    )


def _wiegand(cfg: Any, name: str, sink: ReaderSink) -> Reader:
    from edgegate.hardware.wiegand.reader import WiegandReader

    return WiegandReader.from_config(cfg, name, sink)


BUILDERS: dict[str, Builder] = {"rdm6300": _rdm6300, "pn532": _pn532, "wiegand": _wiegand}


def build_reader(cfg: Any, name: str, sink: ReaderSink) -> Reader:
    return BUILDERS[cfg.type](cfg, name, sink)
