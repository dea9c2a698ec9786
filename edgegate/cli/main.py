"""The ``edgegate`` console script."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from edgegate import __version__, logging_setup
from edgegate.cli import backup, central, demo, doctor, events, people, stats
from edgegate.cli.common import CliError, add_config_arg, load_config
from edgegate.config import load_trusted


def cmd_run(args: argparse.Namespace) -> int:
    config = load_config(args.config, load_trusted)
    logging_setup.configure(config.logging.level, config.logging.format)
    from edgegate.daemon.app import run
    from edgegate.sync.paho_client import MqttSetupError

    try:
        asyncio.run(run(config))
    except MqttSetupError as exc:  # a password or key file that cannot be read
        raise CliError(str(exc), 2) from None
    return 0


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
