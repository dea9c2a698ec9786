"""``edgegate enroll pin``: a person's keypad PIN (or duress PIN), stored hashed.

The PIN is read with getpass on a terminal (never echoed, never on the command line where
`ps` and shell history would keep it) or as one line from standard input in scripts.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from edgegate.cli.common import EXIT_USAGE, CliError, add_config_arg, load_config, open_store
from edgegate.core.pin import hash_pin, valid_pin, verify_pin
from edgegate.store import credentials as creds
from edgegate.store.db import transaction
from edgegate.store.pins import pin_hashes, set_pin


def register(kinds: argparse._SubParsersAction) -> None:
    pin = kinds.add_parser("pin", help="set a person's keypad PIN (card+PIN doors)")
    add_config_arg(pin)
    pin.add_argument("--person", required=True, help="person id (must exist)")
    pin.add_argument(
        "--duress",
        action="store_true",
        help="set the person's duress PIN instead (opens and raises a silent alarm)",
    )
    pin.set_defaults(func=cmd_enroll_pin)


def _read_pin(what: str) -> str:
    if sys.stdin.isatty():
        first = getpass.getpass(f"{what} (4-12 digits): ")
        if getpass.getpass(f"{what} again: ") != first:
            raise CliError("the two entries differ", EXIT_USAGE)
        return first
    return sys.stdin.readline().strip()


def cmd_enroll_pin(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    what = "duress PIN" if args.duress else "PIN"
    pin = _read_pin(what)
    if not valid_pin(pin):
        raise CliError(f"a {what} is 4 to 12 digits", EXIT_USAGE)
    encoded = hash_pin(pin)
    conn = open_store(config)
    with transaction(conn):
        own, duress = pin_hashes(conn, args.person)
        other = duress if not args.duress else own
        if other is not None and verify_pin(pin, other):
            raise CliError("the PIN and the duress PIN must differ", EXIT_USAGE)
        try:
            set_pin(conn, args.person, encoded, duress=args.duress)
        except creds.CredentialError as exc:
            raise CliError(str(exc)) from None
    print(f"{what} set for {args.person}")
    return 0
