"""Progress bars for long CLI operations (bulk enrolment, imports, snapshot sync).

A tqdm bar on stderr when stderr is a terminal; otherwise (journal, pipes, scripts, tests)
the bar is disabled and prints nothing, so logs and machine-readable output stay clean.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import IO, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def on_terminal(stream: IO[str] | None = None) -> bool:
    stream = stream if stream is not None else sys.stderr
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


def progress(
    iterable: Iterable[T] | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    stream: IO[str] | None = None,
) -> tqdm:
    """``for x in progress(rows, desc="cards"):`` or ``with progress(total=n) as bar:
    bar.update(k)``. Disabled (silent) unless ``stream`` (default stderr) is a terminal."""
    stream = stream if stream is not None else sys.stderr
    enabled = on_terminal(stream)
    # A terminal that reports no size (serial consoles, some ptys) would get a zero-width bar.
    fixed = enabled and _columns(stream) == 0
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        file=stream,
        disable=not enabled,
        ncols=80 if fixed else None,
        nrows=24 if fixed else None,  # tqdm hides every bar when it reads 0 rows
        dynamic_ncols=not fixed,
        mininterval=0.2,
        unit_scale=True,
    )


def _columns(stream: IO[str]) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 0
