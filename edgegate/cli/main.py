"""The ``edgegate`` console script."""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

import structlog

from edgegate import __version__, logging_setup
from edgegate.cli import backup, central, demo, doctor, events, people, stats
from edgegate.cli.common import EXIT_USAGE, CliError, add_config_arg, load_config
from edgegate.config import ConfigError, load_trusted
from edgegate.store import reserve
from edgegate.store.db import StoreError
from edgegate.store.identity import StoreVanished

log = structlog.get_logger(__name__)


def cmd_run(args: argparse.Namespace) -> int:
    """Run the daemon. Every fatal start error is ONE structured log line
    (``daemon_start_failed``: the file, the reason in plain words, the fix), never a
    traceback: under journald it is the line an operator finds (docs/operations.md)."""
    logging_setup.configure("info", "auto")  # until the config says otherwise
    try:
        config = load_trusted(args.config)
    except ConfigError as exc:
        return start_failed(
            args.config,
            "; ".join(exc.problems),
            f"correct the file (edgegate check-config {args.config} lists every problem)",
            EXIT_USAGE,
        )
    lg = config.logging
    logging_setup.configure(
        lg.level,
        lg.format,
        repeat_burst=lg.repeat_burst,
        repeat_window_seconds=lg.repeat_window_seconds,
    )
    from edgegate.daemon.app import run
    from edgegate.mqtt.client import MqttSetupError

    try:
        asyncio.run(run(config))
    except MqttSetupError as exc:  # a password or key file that cannot be read
        return start_failed(args.config, str(exc), "check the [mqtt] files it names", EXIT_USAGE)
    except StoreVanished as exc:
        return start_failed(exc.path, str(exc), exc.fix, 1)
    except (StoreError, sqlite3.Error, OSError) as exc:
        store = config.storage.path
        if reserve.is_disk_full(exc.__cause__ or exc, store):
            why = f"disk full: {exc}"
            fix = f"free space on the file system of {store.parent} (df -h {store.parent})"
        elif isinstance(exc, StoreError | sqlite3.DatabaseError):
            why = f"the store cannot be used: {exc}"
            fix = "restore the store from a backup (docs/operations.md, Backup and restore)"
        else:
            why = str(exc)
            fix = "check the file's permissions and the device it names"
        where = getattr(exc, "filename", None) or store
        return start_failed(where, why, fix, 1)
    return 0


def start_failed(file: Path | str, reason: str, fix: str, code: int) -> int:
    log.error("daemon_start_failed", file=str(file), reason=reason, fix=fix, exit=code)
    return code


def cmd_check_config(args: argparse.Namespace) -> int:
    config = load_config(args.path, load_trusted)
    print(
        f"{args.path}: ok (site {config.door.site}, door {config.door.id}, "
        f"{len(config.readers)} reader(s))"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgegate", description=__doc__)
    parser.add_argument("--version", action="version", version=f"edgegate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the door daemon (what systemd starts)")
    add_config_arg(run)
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check-config", help="validate a config file")
    check.add_argument("path", type=Path)
    check.set_defaults(func=cmd_check_config)

    demo.register(sub)
    people.register(sub)
    events.register(sub)
    stats.register(sub)
    doctor.register(sub)
    backup.register(sub)
    central.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "run":
        # Commands other than the daemon log warnings only, readable on the terminal.
        logging_setup.configure("warning", "console")
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"edgegate: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
