"""Local enrolment and card management: works on the door's store with no network."""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path

from edgegate.cli import bulk_cards, enroll_bio, enroll_pin
from edgegate.cli.common import (
    EXIT_USAGE,
    CliError,
    add_config_arg,
    fmt_time,
    load_config,
    open_store,
    parse_time,
)
from edgegate.config.models import Config
from edgegate.hardware.wiegand.formats import wiegand_to_uid
from edgegate.store import credentials as creds
from edgegate.store.credential_sync import get_version
from edgegate.store.db import transaction, truncate_wal


def register(sub: argparse._SubParsersAction) -> None:
    enroll = sub.add_parser("enroll", help="enrol a credential at this door")
    kinds = enroll.add_subparsers(dest="kind", required=True)
    card = kinds.add_parser("card", help="enrol an RFID card")
    add_config_arg(card)
    card.add_argument("--person", help="person id (required unless --csv)")
    card.add_argument("--name", default=None, help="person's display name")
    which = card.add_mutually_exclusive_group(required=True)
    which.add_argument("--card", help="UID as the reader reports it, hex (e.g. 0F00BC614E)")
    which.add_argument("--card-number", help="decimal number printed on an EM4100 card")
    which.add_argument(
        "--wiegand", metavar="BITS:FC:CN", help="Wiegand card, e.g. 26:123:45678 (or 34:...)"
    )
    which.add_argument(
        "--csv", type=Path, help="many cards: CSV with person, name, card or card_number columns"
    )
    card.add_argument("--valid-from", help="ISO 8601 start of validity")
    card.add_argument("--valid-until", help="ISO 8601 end of validity")
    card.add_argument("--label", default="", help="free text, e.g. 'badge 2'")
    card.set_defaults(func=cmd_enroll_card)
    enroll_bio.register(kinds)
    enroll_pin.register(kinds)

    people = sub.add_parser("people", help="list, remove, disable or enable people")
    people.add_argument("action", choices=["list", "remove", "disable", "enable", "set"])
    people.add_argument("person", nargs="?", help="person id (not for list)")
    people.add_argument("--json", action="store_true", help="machine-readable output")
    people.add_argument(
        "--erase",
        action="store_true",
        help="with remove: also rewrite them out of the journal (a person only this door "
        "holds; docs/central.md, erasing a person)",
    )
    # "set": the attributes the door rules read (docs/rules.md).
    people.add_argument("--group", action="append", help="with set: group (repeatable)")
    people.add_argument("--zone", action="append", help="with set: allowed zone (visitors)")
    people.add_argument("--host", help="with set: the visitor's host (a person id)")
    people.add_argument(
        "--settled", choices=["yes", "no"], help="with set: 'no' holds the person on exit"
    )
    people.add_argument("--valid-from", help="with set: ISO 8601 start of the pass")
    people.add_argument("--valid-until", help="with set: ISO 8601 end of the pass")
    add_config_arg(people)
    people.set_defaults(func=cmd_people)

    cards = sub.add_parser("cards", help="list, remove, disable (lost card) or enable cards")
    cards.add_argument("action", choices=["list", "remove", "disable", "enable"])
    cards.add_argument("card", nargs="?", help="card UID (not for list)")
    cards.add_argument("--person", help="with list: only this person's cards")
    cards.add_argument("--json", action="store_true", help="machine-readable output")
    add_config_arg(cards)
    cards.set_defaults(func=cmd_cards)


def cmd_enroll_card(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.csv is not None:
        return bulk_cards.enroll_csv(args.csv, open_store(config))
    _need(args.person, "person id (--person)")
    try:
        if args.wiegand:
            uid = wiegand_to_uid(args.wiegand)
        elif args.card_number:
            uid = creds.card_number_to_uid(args.card_number)
        else:
            uid = creds.normalise_card(args.card)
    except creds.CredentialError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    valid_from, valid_until = parse_time(args.valid_from), parse_time(args.valid_until)
    conn = open_store(config)
    with transaction(conn):
        existing = conn.execute("SELECT name FROM people WHERE id = ?", (args.person,)).fetchone()
        name = args.name if args.name is not None else (existing[0] if existing else "")
        if existing is None or args.name is not None:
            creds.upsert_person(conn, creds.Person(args.person, name))
        owner = conn.execute(
            "SELECT person_id FROM credentials WHERE kind='card' AND value=?", (uid,)
        ).fetchone()
        if owner and owner[0] != args.person:
            raise CliError(f"card {uid} already belongs to {owner[0]}; remove it first")
        creds.add_credential(
            conn,
            "card",
            uid,
            args.person,
            valid_from=valid_from,
            valid_until=valid_until,
            label=args.label,
        )
    print(f"enrolled card {uid} for {args.person}")
    return 0


def _need(value: str | None, what: str) -> str:
    if not value:
        raise CliError(f"give the {what}", EXIT_USAGE)
    return value


def cmd_people(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    conn = open_store(config)
    if args.action == "list":
        rows = creds.list_people(conn)
        if args.json:
            print(json.dumps(rows, indent=1))
        else:
            for r in rows:
                state = "enabled" if r["enabled"] else "DISABLED"
                print(f"{r['id']:<20} {r['name']!s:<24} {state:<9} credentials={r['credentials']}")
            print(f"{len(rows)} people")
        return 0
    person = _need(args.person, "person id")
    if args.action == "set":
        _refuse_if_managed(config, conn)
        return _set_person(conn, person, args)
    if args.erase and args.action != "remove":
        raise CliError("--erase goes with remove", EXIT_USAGE)
    rewritten = 0
    with transaction(conn):
        if args.action == "remove" and args.erase:
            ok, rewritten = creds.erase_person(conn, person)
        elif args.action == "remove":
            ok = creds.remove_person(conn, person)
        else:
            ok = creds.set_person_enabled(conn, person, args.action == "enable")
    if args.erase:
        truncate_wal(conn)  # the pages as they were must not linger in old WAL frames
    if not ok and not rewritten:
        raise CliError(f"no person {person!r}")
    done = f", {rewritten} journal rows rewritten" if args.erase else ""
    print(f"{args.action}d {person}{done}")
    return 0


def _refuse_if_managed(config: Config, conn: sqlite3.Connection) -> None:
    """A door that takes its people from the office must not change their rule attributes
    itself: the office's next update or snapshot would put its own back without a word."""
    version = get_version(conn)
    if config.mqtt is None and version == 0:
        return
    raise CliError(
        f"this door's people come from the office (credential version {version}): set "
        "them there with `edgegate central people set`; a change made here would be "
        "overwritten by the office's next update"
    )


def _set_person(conn: sqlite3.Connection, person: str, args: argparse.Namespace) -> int:
    updates: dict[str, object] = {}
    if args.group:
        updates["groups"] = args.group
    if args.zone:
        updates["zones"] = args.zone
    if args.host:
        updates["host"] = args.host
    if args.settled:
        updates["settled"] = args.settled == "yes"
    try:
        with transaction(conn):
            attrs = creds.update_person_attrs(conn, person, updates)
            if args.valid_from or args.valid_until:
                creds.set_person_validity(
                    conn, person, parse_time(args.valid_from), parse_time(args.valid_until)
                )
    except creds.CredentialError as exc:
        raise CliError(str(exc)) from None
    print(f"set {person}: {json.dumps(attrs, sort_keys=True)}")
    return 0


def cmd_cards(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    conn = open_store(config)
    if args.action == "list":
        rows = [r for r in creds.list_credentials(conn, args.person) if r["kind"] == "card"]
        if args.json:
            print(json.dumps(rows, indent=1))
        else:
            for r in rows:
                state = "enabled" if r["enabled"] else "DISABLED"
                print(
                    f"{r['value']:<16} {r['person_id']:<20} {state:<9} "
                    f"{fmt_time(r['valid_from'])} .. {fmt_time(r['valid_until'])} {r['label']}"
                )
            print(f"{len(rows)} cards")
        return 0
    try:
        uid = creds.normalise_card(_need(args.card, "card UID"))
    except creds.CredentialError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    with transaction(conn):
        if args.action == "remove":
            ok = creds.remove_credential(conn, "card", uid)
        else:
            ok = creds.set_credential_enabled(conn, "card", uid, args.action == "enable")
    if not ok:
        raise CliError(f"no card {uid}")
    print(f"{args.action}d card {uid}")
    return 0
