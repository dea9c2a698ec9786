"""structlog configuration: JSON lines under systemd, readable lines on a terminal.

journald stores one entry per line, so under systemd (``JOURNAL_STREAM`` set) or when stderr is
not a terminal every event is one JSON object on one line. On a terminal it is the readable
console renderer.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Literal

import structlog

from edgegate.log_rate_limit import RepeatLimiter

LogFormat = Literal["auto", "json", "console"]


def use_json(fmt: LogFormat) -> bool:
    if fmt == "json":
        return True
    if fmt == "console":
        return False
    return bool(os.environ.get("JOURNAL_STREAM")) or not sys.stderr.isatty()


def configure(
    level: str = "info",
    fmt: LogFormat = "auto",
    to_stdout: bool = False,
    repeat_burst: int = 10,
    repeat_window_seconds: float = 60.0,
) -> None:
    out = sys.stdout if to_stdout else sys.stderr
    processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        # Before the time stamp and rendering: a dropped line costs almost nothing.
        RepeatLimiter(repeat_burst, repeat_window_seconds),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    renderer: structlog.types.Processor
    if use_json(fmt):
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty())
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        # Look the stream up at every call rather than binding the file object now: a test
        # harness (or a daemonising wrapper) may replace sys.stderr after configuration.
        logger_factory=lambda *_: structlog.PrintLogger(
            file=sys.stdout if to_stdout else sys.stderr
        ),
        cache_logger_on_first_use=False,
    )
