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


BUILDERS: dict[str, Builder] = {"rdm6300": _rdm6300}


def build_reader(cfg: Any, name: str, sink: ReaderSink) -> Reader:
    return BUILDERS[cfg.type](cfg, name, sink)
