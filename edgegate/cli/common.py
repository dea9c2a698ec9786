"""Pieces every CLI command shares: loading the config, opening the store, printing errors."""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar, overload

from edgegate.config import DEFAULT_PATH, Config, ConfigError, load
from edgegate.errors import EdgegateError
from edgegate.store.db import StoreError, open_db

EXIT_USAGE = 2
T = TypeVar("T")


class CliError(EdgegateError):
    """A problem to print as one line and exit with ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def add_config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_PATH, help=f"config file (default {DEFAULT_PATH})"
    )


@overload
def load_config(path: Path) -> Config: ...
@overload
def load_config(path: Path, loader: Callable[[Path], T]) -> T: ...
def load_config(path: Path, loader: Callable[[Path], object] = load) -> object:
    """``loader(path)`` (the door's config by default), or one line per problem and exit 2."""
    try:
        return loader(path)
    except ConfigError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        raise CliError(f"{path}: {len(exc.problems)} problem(s)", EXIT_USAGE) from None


def open_store(config: Config, *, readonly: bool = False) -> sqlite3.Connection:
    try:
        # Synchronous NORMAL for CLI writes is enough: a lost enrolment is redone by hand.
        return open_db(
            config.storage.path,
            readonly=readonly,
            check=False,
            synchronous="NORMAL",
            identity=True,
        )
    except StoreError as exc:
        raise CliError(str(exc)) from None


def parse_time(text: str | None) -> float | None:
    """ISO 8601 date or date-time; without a zone it is the door's local time."""
    if text is None:
        return None
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"not an ISO 8601 date or time: {text!r}", EXIT_USAGE) from None
    return dt.astimezone().timestamp()


def fmt_time(ts: float | None) -> str:
    return (
        "-" if ts is None else datetime.fromtimestamp(ts).astimezone().isoformat(timespec="minutes")
    )
