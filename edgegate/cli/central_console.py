"""``edgegate central operators|tokens|audit``: console accounts, API tokens, the audit log.

Passwords are prompted (twice on a terminal), or read as one line from standard input when it
is not a terminal (scripts: ``printf '%s\\n' "$PW" | edgegate central operators add ...``);
never taken from the command line, where ``ps`` and shell history would show them.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from typing import TYPE_CHECKING

from edgegate.cli.central_common import add_central_config, load
from edgegate.cli.common import EXIT_USAGE, CliError

if TYPE_CHECKING:
    from edgegate.central.services import Actor, Office

# Kept here (not imported from the services) so that registering the commands does not load
# SQLAlchemy and argon2 for every other edgegate command.
ROLES = ("admin", "security", "reception", "viewer")


def cli_actor() -> Actor:
    """The CLI's user as the audit log names them (``cli:<login>``)."""
    from edgegate.central.services import Actor

    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = str(os.getuid())
    return Actor(f"cli:{login}", "cli")


def office_of(args: argparse.Namespace) -> Office:
    from edgegate.central.services import open_office

    return open_office(load(args))


def register(csub: argparse._SubParsersAction) -> None:
    ops = csub.add_parser("operators", help="console accounts: add, passwd, role, disable, list")
    ops.add_argument(
        "action", choices=["add", "passwd", "role", "disable", "enable", "unlock", "list"]
    )
    ops.add_argument("name", nargs="?", help="operator name (not for list)")
    ops.add_argument("--role", choices=ROLES, help="with add (default viewer) or role")
    ops.add_argument("--json", action="store_true", help="with list: JSON output")
    add_central_config(ops)
    ops.set_defaults(func=cmd_operators)

    tok = csub.add_parser("tokens", help="REST API tokens: create (shown once), revoke, list")
    tok.add_argument("action", choices=["create", "revoke", "list"])
    tok.add_argument("name", nargs="?", help="the integration's name (not for list)")
    tok.add_argument("--role", choices=ROLES, default="viewer", help="with create")
    add_central_config(tok)
    tok.set_defaults(func=cmd_tokens)

    aud = csub.add_parser("audit", help="the audit log: verify the hash chain, list entries")
    aud.add_argument("action", choices=["verify", "list"])
    aud.add_argument("--limit", type=int, default=50, help="with list: newest N")
    aud.add_argument("--json", action="store_true", help="with list: JSON lines")
    add_central_config(aud)
    aud.set_defaults(func=cmd_audit)


def _need(name: str | None) -> str:
    if not name:
        raise CliError("give the name", EXIT_USAGE)
    return name


def read_password(prompt: str = "password: ") -> str:
    if not sys.stdin.isatty():
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise CliError("no password on standard input", EXIT_USAGE)
        return line
    first = getpass.getpass(prompt)
    if getpass.getpass("again: ") != first:
        raise CliError("the two passwords differ", EXIT_USAGE)
    return first


def cmd_operators(args: argparse.Namespace) -> int:
    from edgegate.central.services import operators

    office = office_of(args)
    engine, actor = office.engine, cli_actor()
    try:
        if args.action == "list":
            rows = operators.list_all(engine)
            if args.json:
                print(json.dumps(rows))
                return 0
            for r in rows:
                state = "enabled" if r["enabled"] else "DISABLED"
                locked = " locked" if r["locked_until"] else ""
                print(f"{r['name']:<24} {r['role']:<10} {state}{locked}")
            print(f"{len(rows)} operators")
            return 0
        name = _need(args.name)
        if args.action == "add":
            operators.add(engine, actor, name, args.role or "viewer", read_password())
            print(f"added operator {name} ({args.role or 'viewer'})")
        elif args.action == "passwd":
            operators.set_password(engine, actor, name, read_password("new password: "))
            print(f"password of {name} changed; their sessions ended")
        elif args.action == "role":
            if not args.role:
                raise CliError("give --role", EXIT_USAGE)
            operators.set_role(engine, actor, name, args.role)
            print(f"{name} is now {args.role}")
        elif args.action == "unlock":
            operators.unlock(engine, actor, name)
            print(f"{name} unlocked")
        else:
            operators.set_enabled(engine, actor, name, args.action == "enable")
            print(f"{name} {args.action}d")
    except operators.OperatorError as exc:
        raise CliError(str(exc)) from None
    return 0


def cmd_tokens(args: argparse.Namespace) -> int:
    from edgegate.central.services import operators, tokens

    office = office_of(args)
    try:
        if args.action == "list":
            for r in tokens.list_all(office.engine):
                state = "revoked" if r["revoked"] else "active"
                print(f"{r['name']:<24} {r['role']:<10} eg_{r['prefix']}_...  {state}")
            return 0
        name = _need(args.name)
        if args.action == "create":
            token = tokens.create(office.engine, cli_actor(), name, args.role)
            print(
                f"token for {name} ({args.role}); shown this once, store it now:", file=sys.stderr
            )
            print(token)
        else:
            tokens.revoke(office.engine, cli_actor(), name)
            print(f"revoked {name}")
    except operators.OperatorError as exc:
        raise CliError(str(exc)) from None
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from edgegate.central.services import audit

    office = office_of(args)
    if args.action == "verify":
        verdict = audit.verify(office.engine)
        if verdict.ok:
            redacted = (
                f" ({verdict.redacted} redacted by erasures, as their entries list)"
                if verdict.redacted
                else ""
            )
            print(f"audit log intact: {verdict.entries} entries{redacted}")
            return 0
        print(f"audit log BROKEN at entry {verdict.bad_seq}: {verdict.reason}", file=sys.stderr)
        return 1
    rows = list(reversed(audit.recent(office.engine, limit=args.limit)))
    for r in rows:
        if args.json:
            print(json.dumps(r, default=str))
        else:
            print(
                f"{r['seq']:>6} {r['ts']:.3f} {r['actor']:<20} {r['via']:<8} {r['action']:<22} "
                f"{r['target']} {r['detail']}"
            )
    return 0
