"""What a piece of code reads: every file it opens (Python's own audit events) and every
statement of every SQLite connection it makes (the real ``sqlite3.connect``, each connection
traced from the moment it is made). For tests that pin "read once"."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

# The audit hook cannot be removed once added: it is added once and records only while a
# test watches.
_watch: dict[str, list[Any]] | None = None
_hooked = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _watch is not None and event == "open" and isinstance(args[0], str | Path):
        _watch["opens"].append((str(args[0]), args[1]))


@contextmanager
def watching(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[Any]]]:
    """``{"opens": [(path, mode)], "sql": [statement]}`` of what ran inside the block."""
    global _watch, _hooked
    if not _hooked:
        sys.addaudithook(_audit)
        _hooked = True
    watch: dict[str, list[Any]] = {"opens": [], "sql": []}
    connect = sqlite3.connect

    def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)
        conn.set_trace_callback(watch["sql"].append)
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced)
    _watch = watch
    try:
        yield watch
    finally:
        _watch = None
        monkeypatch.undo()


def reads_of(watch: dict[str, list[Any]], path: Path) -> int:
    """How many times ``path`` was opened for reading."""
    return sum(1 for name, mode in watch["opens"] if name == str(path) and "r" in str(mode))
