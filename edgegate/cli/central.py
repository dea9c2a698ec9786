"""``edgegate central ...``: keys, people and credentials of the whole site (docs/central.md).

Every change is written to the master store as a new credential version first and published
to the doors second (``central_common.change``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from edgegate.cli import (
    central_alarms,
    central_bio,
    central_console,
    central_muster,
    central_office,
    central_visits,
)
from edgegate.cli.central_common import (
    add_central_config,
    change,
    load,
    master,
    publish_pending,
    signer,
)
from edgegate.cli.common import EXIT_USAGE, CliError, parse_time
from edgegate.contract import messages as m
from edgegate.contract import signing
from edgegate.store.credentials import CredentialError, normalise_card

if TYPE_CHECKING:
    from edgegate.central.config import CentralConfig


def register(sub: argparse._SubParsersAction) -> None:
    central = sub.add_parser("central", help="the central office: keys, people, doors, events")
    csub = central.add_subparsers(dest="central_command", required=True)

    key = csub.add_parser("keygen", help="create the signing key; prints the doors' public key")
    key.add_argument("--force", action="store_true", help="replace an existing key")
    add_central_config(key)
    key.set_defaults(func=cmd_keygen)

    people = csub.add_parser("people", help="add, remove, list, disable, enable or erase people")
    people.add_argument(
        "action",
        choices=["add", "set", "remove", "list", "disable", "enable", "add-credential", "erase"],
    )
    people.add_argument(
        "person", nargs="?", help="person id (not for list; with erase: the id or the name)"
    )
    people.add_argument("--name", help="with add: display name")
    people.add_argument("--group", action="append", help="with add/set: group (repeatable)")
    people.add_argument("--valid-from", help="with add/set: ISO 8601 start of validity")
    people.add_argument("--valid-until", help="with add/set: ISO 8601 end of validity")
    # "set": the rule attributes the doors read (docs/rules.md), owned by the office.
    people.add_argument("--zone", action="append", help="with set: allowed zone (repeatable)")
    people.add_argument("--all-zones", action="store_true", help="with set: remove the zone limit")
    people.add_argument("--host", help="with set: the visitor's host (a person id)")
    people.add_argument(
        "--settled", choices=["yes", "no"], help="with set: 'no' holds the person on exit"
    )
    people.add_argument("--card", action="append", help="with add: card UID (repeatable)")
    people.add_argument(
        "--kind", choices=["face", "finger"], help="with add-credential: biometric kind"
    )
    people.add_argument(
        "--data-file", type=Path, help="with add-credential: template/encodings, base64 or raw"
    )
    people.add_argument(
        "--image",
        type=Path,
        nargs="+",
        help="with add-credential --kind face: photo(s) with exactly one face, encoded here",
    )
    people.add_argument(
        "--label", default="", help="with add-credential: e.g. 'model=r307' (sensor model)"
    )
    people.add_argument(
        "--capture",
        action="store_true",
        help="with add-credential --kind finger: capture on the [fingerprint] desk sensor",
    )
    people.add_argument(
        "--timeout", type=float, default=60.0, help="with --capture: seconds to wait per touch"
    )
    people.add_argument("--json", action="store_true", help="with list: JSON output")
    people.add_argument(
        "--reason", help="with erase: the request it answers (kept in the audit log; no names)"
    )
    people.add_argument(
        "--yes", action="store_true", help="with erase: erase (without it: only show what)"
    )
    people.add_argument(
        "--reapply",
        action="store_true",
        help="with erase (no person): repeat the ledger's erasures this store still needs "
        "(after restoring a backup); with --yes",
    )
    add_central_config(people)
    people.set_defaults(func=cmd_people)

    cards = csub.add_parser("cards", help="add, disable (lost card), enable, remove, list")
    cards.add_argument("action", choices=["add", "disable", "enable", "remove", "list"])
    cards.add_argument("card", nargs="?", help="card UID, hex (not for list)")
    cards.add_argument("--person", help="with add: owner; with list: only this person's")
    cards.add_argument("--label", default="", help="with add: free text, e.g. 'badge 2'")
    cards.add_argument("--valid-from", help="with add: ISO 8601 start of validity")
    cards.add_argument("--valid-until", help="with add: ISO 8601 end of validity")
    cards.add_argument("--json", action="store_true", help="with list: JSON output")
    add_central_config(cards)
    cards.set_defaults(func=cmd_cards)

    imp = csub.add_parser("import", help="add or update people and cards from a CSV file")
    imp.add_argument("file", type=Path, help="CSV with a header row (docs/central.md)")
    imp.add_argument("--dry-run", action="store_true", help="check and count, change nothing")
    add_central_config(imp)
    imp.set_defaults(func=cmd_import)

    central_office.register(csub)
    central_console.register(csub)
    central_alarms.register(csub)
    central_visits.register(csub)
    central_muster.register(csub)


def _need(value: str | None, what: str) -> str:
    if not value:
        raise CliError(f"give the {what}", EXIT_USAGE)
    return value


def _card(text: str | None) -> str:
    try:
        return normalise_card(_need(text, "card UID"))
    except CredentialError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def cmd_keygen(args: argparse.Namespace) -> int:
    config = load(args)
    path = config.central.key_file
    if path.exists() and not args.force:
        raise CliError(f"{path} exists; --force replaces it (then every door needs the new key)")
    key = signing.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created 0600 from the start: the private key is never readable by others, not even
    # for the moment between create and chmod.
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(signing.private_pem(key))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    public = key.public_key()
    print(f"wrote {path} (key id {signing.key_id(public)})", file=sys.stderr)
    print("public key for the doors' config:", file=sys.stderr)
    print(signing.public_text(public))
    return 0


def cmd_people(args: argparse.Namespace) -> int:
    from edgegate.central import store

    config = load(args)
    if args.action == "list":
        with store.reading(master(config, readonly=True)) as conn:
            rows = store.list_people(conn)
        if args.json:
            print(json.dumps(rows, indent=1))
            return 0
        for r in rows:
            state = "enabled" if r["enabled"] else "DISABLED"
            groups = ",".join(r.get("attrs", {}).get("groups", []))
            print(
                f"{r['id']:<20} {r.get('name', '')!s:<24} {state:<9} {groups:<16} "
                f"credentials={r['credentials']}"
            )
        print(f"{len(rows)} people")
        return 0
    if args.action == "erase" and args.reapply:
        return _reapply(config, args)
    person = _need(args.person, "person id")
    if args.action == "add":
        return _add_person(config, person, args)
    if args.action == "add-credential":
        return central_bio.add_biometric(config, person, args)
    if args.action == "set":
        return _set_person(config, person, args)
    if args.action == "erase":
        return _erase(config, person, args)
    ops: list[m.Op] = (
        [m.RemovePerson(op="remove_person", id=person)]
        if args.action == "remove"
        else [
            m.SetPersonEnabled(op="set_person_enabled", id=person, enabled=args.action == "enable")
        ]
    )
    return change(config, ops, f"{args.action}d {person}", f"person_{args.action}d", person)


def _add_person(config: CentralConfig, person: str, args: argparse.Namespace) -> int:
    from edgegate.central.services.credentials import ChangeRefused, person_ops

    try:
        ops, existed = person_ops(
            master(config),
            person,
            name=args.name,
            groups=args.group or None,
            valid_from=parse_time(args.valid_from) if args.valid_from else None,
            valid_until=parse_time(args.valid_until) if args.valid_until else None,
            cards=args.card or [],
        )
    except ChangeRefused as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    action = "person_updated" if existed else "person_added"
    return change(config, ops, f"{'updated' if existed else 'added'} {person}", action, person)


def _erase(config: CentralConfig, who: str, args: argparse.Namespace) -> int:
    """Erase a person's personal data (docs/central.md): first what the office holds
    (nothing changes without ``--yes``), then the erasure, then the doors' version."""
    from edgegate.central.services import erasure, open_office
    from edgegate.central.services.credentials import ChangeRefused
    from edgegate.cli.central_console import cli_actor

    if args.yes and not (args.reason or "").strip():
        raise CliError("give --reason: the request the erasure answers", EXIT_USAGE)
    sign = signer(config)  # a missing key must stop the command before the master changes
    office = open_office(config)
    try:
        if not args.yes:
            for line in erasure.plan(office, who).lines():
                print(line)
            print("nothing erased: run again with --yes --reason '...' to erase")
            return 1
        done = erasure.erase(office, cli_actor(), who, args.reason)
    except ChangeRefused as exc:
        raise CliError(str(exc)) from None
    for line in done.plan.lines():
        print(line)
    version = f" (version {done.version})" if done.versions else ""
    print(f"erased {done.plan.person}: now {done.pseudonym} in the archive{version}")
    return publish_pending(config, office.master(), sign) if done.versions else 0


def _reapply(config: CentralConfig, args: argparse.Namespace) -> int:
    """``erase --reapply``: the ledger's erasures this store still names the person of
    (docs/central.md, "Backups and erasures"); without ``--yes`` only how many."""
    from edgegate.central.services import erasure, open_office
    from edgegate.central.services.credentials import ChangeRefused
    from edgegate.cli.central_console import cli_actor

    if args.person:
        raise CliError("--reapply takes no person: it repeats the ledger's erasures", EXIT_USAGE)
    sign = signer(config)
    office = open_office(config)
    try:
        if not args.yes:
            pending = erasure.pending_reapply(office)
            for _person, entry in pending:
                print(f"to re-apply: {entry.pseudonym}")
            print(f"{len(pending)} erasures to re-apply: run again with --yes")
            return 1 if pending else 0
        done = erasure.reapply(office, cli_actor())
    except ChangeRefused as exc:
        raise CliError(str(exc)) from None
    for d in done:
        print(f"re-applied {d.pseudonym}: {d.plan.events} events, version {d.version}")
    print(f"{len(done)} erasures re-applied")
    if any(d.versions for d in done):
        return publish_pending(config, office.master(), sign)
    return 0


def _set_person(config: CentralConfig, person: str, args: argparse.Namespace) -> int:
    from edgegate.central import person_rules, store

    if args.zone and args.all_zones:
        raise CliError("--zone and --all-zones exclude each other", EXIT_USAGE)
    change_ = person_rules.RuleChange(
        groups=args.group or person_rules.KEEP,
        zones=None if args.all_zones else (args.zone or person_rules.KEEP),
        host=args.host or person_rules.KEEP,
        settled=person_rules.KEEP if args.settled is None else args.settled == "yes",
        valid_from=parse_time(args.valid_from) if args.valid_from else person_rules.KEEP,
        valid_until=parse_time(args.valid_until) if args.valid_until else person_rules.KEEP,
    )
    try:
        with store.reading(master(config)) as conn:
            ops = person_rules.person_ops(conn, person, change_)
    except store.CentralError as exc:
        raise CliError(str(exc)) from None
    attrs = ops[0].person.attrs  # type: ignore[union-attr]
    done = f"set {person}: {json.dumps(attrs, sort_keys=True)}"
    return change(config, ops, done, "person_set", person)


def cmd_cards(args: argparse.Namespace) -> int:
    from edgegate.central import store

    config = load(args)
    if args.action == "list":
        with store.reading(master(config, readonly=True)) as conn:
            rows = store.list_credentials(conn, args.person, "card")
        if args.json:
            print(json.dumps(rows, indent=1))
            return 0
        for r in rows:
            state = "enabled" if r["enabled"] else "DISABLED"
            print(f"{r['value']:<16} {r['person']:<20} {state:<9} {r.get('label', '')}")
        print(f"{len(rows)} cards")
        return 0
    uid = _card(args.card)
    op: m.Op
    if args.action == "add":
        try:
            cred = m.CredentialMsg(
                kind="card",
                value=uid,
                person=_need(args.person, "--person"),
                label=args.label,
                valid_from=parse_time(args.valid_from),
                valid_until=parse_time(args.valid_until),
            )
        except ValueError as exc:
            raise CliError(str(exc), EXIT_USAGE) from None
        op = m.PutCredential(op="put_credential", credential=cred)
    elif args.action == "remove":
        op = m.RemoveCredential(op="remove_credential", kind="card", value=uid)
    else:
        # disable: a lost card. One small version, published at once to every door.
        op = m.SetCredentialEnabled(
            op="set_credential_enabled", kind="card", value=uid, enabled=args.action == "enable"
        )
    done = f"{args.action} card {uid}".replace("add card", "added card")
    action = {"add": "card_added", "remove": "card_removed", "enable": "card_enabled"}
    return change(config, [op], done, action.get(args.action, "card_disabled"), uid)


def cmd_import(args: argparse.Namespace) -> int:
    # Imported here: keeps the start of every other command (a lost card) short.
    from edgegate.central import importer, store
    from edgegate.cli.progress import progress

    config = load(args)
    try:
        text = args.file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"{args.file}: cannot read: {exc}") from None
    sign = None if args.dry_run else signer(config)
    engine = master(config)
    with store.reading(engine) as conn:
        plan = importer.plan_import(
            conn, text, lambda rows: progress(rows, desc="checking", unit="row")
        )
    for line in plan.errors[:50]:
        print(f"{args.file}: {line}", file=sys.stderr)
    if plan.errors:
        more = len(plan.errors) - 50
        if more > 0:
            print(f"{args.file}: ... and {more} more", file=sys.stderr)
        raise CliError(f"{args.file}: {len(plan.errors)} problem(s), nothing imported", EXIT_USAGE)
    summary = (
        f"{plan.rows} rows: {plan.people_new} new people, {plan.people_changed} changed, "
        f"{plan.cards_new} new cards, {len(plan.ops)} ops"
    )
    if args.dry_run or not plan.ops:
        print(summary + (" (dry run)" if args.dry_run else " (nothing to publish)"))
        return 0
    try:
        with engine.begin() as conn:
            versions = store.commit_ops(conn, plan.ops, max_ops=config.central.update_max_ops)
    except store.CentralError as exc:
        raise CliError(str(exc)) from None
    from edgegate.central.services import audit, open_office
    from edgegate.cli.central_console import cli_actor

    audit.record(
        open_office(config).engine,
        cli_actor(),
        "people_imported",
        args.file.name,
        rows=plan.rows,
        ops=len(plan.ops),
        version=versions[-1].version,
    )
    print(f"{summary}; versions {versions[0].version}..{versions[-1].version}")
    assert sign is not None
    with store.reading(engine) as conn:
        total = store.unpublished_count(conn)
    with progress(total=total, desc="publishing", unit="version") as bar:
        return publish_pending(config, engine, sign, bar)
