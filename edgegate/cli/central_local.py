"""``edgegate central doors import-local DOOR``: review, import or discard the people a door
enrolled on its own (edgegate/central/local_people.py, docs/central.md)."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edgegate.cli.central_common import add_central_config, change, load, master
from edgegate.cli.common import EXIT_USAGE, CliError
from edgegate.contract import messages as m

if TYPE_CHECKING:
    from edgegate.central.config import CentralConfig
    from edgegate.central.local_people import Offer


def register(dsub: argparse._SubParsersAction) -> None:
    imp = dsub.add_parser(
        "import-local",
        help="review the people a door enrolled on its own, then import or discard them",
    )
    imp.add_argument("door", help="door id")
    what = imp.add_mutually_exclusive_group()
    what.add_argument(
        "--accept", action="store_true", help="import the reviewed people into the master"
    )
    what.add_argument(
        "--discard",
        action="store_true",
        help="import nobody: the office's set replaces the door's own people",
    )
    imp.add_argument(
        "--only", action="append", metavar="PERSON", help="with --accept: only these (repeat)"
    )
    imp.add_argument("--by", default="", help="operator name, recorded with the decision")
    imp.add_argument("--json", action="store_true", help="JSON output")
    add_central_config(imp)
    imp.set_defaults(func=cmd_import_local)


@dataclass
class ImportPlan:
    people: list[m.PersonMsg] = field(default_factory=list)
    cards: list[m.CredentialMsg] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (what, why)

    def ops(self) -> list[m.Op]:
        ops: list[m.Op] = [m.PutPerson(op="put_person", person=p) for p in self.people]
        ops += [m.PutCredential(op="put_credential", credential=c) for c in self.cards]
        return ops


def plan_import(conn: Any, offer: Offer, only: list[str] | None) -> ImportPlan:
    """What an import would add. Nothing in the master is overwritten: a person id or a card
    the master already has is skipped and named, for the operator to settle by hand."""
    from edgegate.central import store

    offered = {p.id for p in offer.people}
    unknown = sorted(set(only or ()) - offered)
    if unknown:
        raise CliError(f"not offered by {offer.door}: {', '.join(unknown)}", EXIT_USAGE)
    plan = ImportPlan()
    chosen = set()
    for person in offer.people:
        if only and person.id not in only:
            continue
        if store.get_person(conn, person.id) is not None:
            plan.skipped.append((f"person {person.id}", "already in the master"))
            continue
        plan.people.append(person)
        chosen.add(person.id)
    for cred in offer.credentials:
        if cred.person not in chosen:
            continue
        owner = store.credential_owner(conn, cred.kind, cred.value)
        if owner is not None:
            plan.skipped.append((f"card {cred.value}", f"belongs to {owner} in the master"))
            continue
        plan.cards.append(cred)
    return plan


def cmd_import_local(args: argparse.Namespace) -> int:
    from edgegate.central.local_people import DISCARDED, IMPORTED, PENDING, LocalOffers

    config = load(args)
    site, door = config.central.site, args.door
    offers = LocalOffers.open(config.central.db)
    try:
        offer = offers.get(site, door)
        if offer is None:
            raise CliError(
                f"{door}: no local people offered (a door offers them when it refuses the "
                "office's snapshot to keep people enrolled on it; see `edgegate central doors`)"
            )
        plan = plan_import(master(config), offer, args.only)
        if not (args.accept or args.discard):
            _review(offer, plan, args.json)
            return 0
        if offer.status != PENDING:
            raise CliError(f"{door}: already {offer.status} by {offer.decided_by or '?'}")
        if args.accept:
            for what, why in plan.skipped:
                print(f"skipped {what}: {why}")

            # Decided before the new version goes out: the door refuses a version while its
            # people await review and asks for a snapshot, which must then replace them.
            def decided() -> None:
                offers.decide(site, door, IMPORTED, args.by)

            if not plan.people:
                decided()
            else:
                done = f"imported {len(plan.people)} people from {door}"
                rc = change(config, plan.ops(), done, "import-local", door, decided)
                if rc:
                    return rc  # in the master and decided; `central publish` sends it
        else:
            offers.decide(site, door, DISCARDED, args.by)
            print(f"{door}: its {offer.total} local people will be replaced by the office's set")
    finally:
        offers.close()
    # The door asks for a snapshot now; it carries replace_local and the door takes it.
    from edgegate.cli.central_office import issue_command  # it registers this module

    return issue_command(config, door, "sync", args.by, {})[0]


def _review(offer: Offer, plan: ImportPlan, as_json: bool) -> None:
    from edgegate.central.local_people import PENDING

    if as_json:
        print(
            json.dumps(
                {
                    "offer": offer.as_json(),
                    "import": [p.id for p in plan.people],
                    "cards": [c.value for c in plan.cards],
                    "skipped": [{"what": w, "why": y} for w, y in plan.skipped],
                }
            )
        )
        return
    cards: dict[str, list[str]] = {}
    for c in plan.cards:
        cards.setdefault(c.person, []).append(c.value)
    print(f"{offer.door}: {offer.total} people enrolled at the door, offer {offer.status}")
    for p in plan.people:
        state = "" if p.enabled else " (disabled)"
        owned = ", ".join(cards.get(p.id, [])) or "-"
        print(f"  import {p.id:<20} {p.name:<24} cards: {owned}{state}")
    for what, why in plan.skipped:
        print(f"  skip   {what}: {why}")
    if offer.total > len(offer.people):
        print(
            f"  ({offer.total - len(offer.people)} more at the door: an offer holds at most "
            f"{m.LOCAL_OFFER_MAX}; import these, then the rest comes with the next offer)"
        )
    if offer.status == PENDING:
        print(
            f"import: edgegate central doors import-local {offer.door} --accept [--only ID]; "
            f"or --discard to let the office's set replace them"
        )


def offers_by_door(config: CentralConfig) -> dict[str, Offer]:
    from edgegate.central.local_people import LocalOffers

    offers = LocalOffers.open(config.central.db)
    try:
        return {o.door: o for o in offers.all() if o.site == config.central.site}
    finally:
        offers.close()


def local_state(telemetry: dict[str, Any] | None, offer: Offer | None) -> dict[str, Any] | None:
    """What ``central doors`` says about a door's own people (None: nothing to say)."""
    from edgegate.central.local_people import PENDING

    credentials = (telemetry or {}).get("credentials")
    held = credentials.get("local_held") if isinstance(credentials, dict) else None
    if held is None and (offer is None or offer.status != PENDING):
        return None
    return {
        "held": held,
        "offer": None if offer is None else offer.status,
        "people": offer.total if offer else (held or {}).get("people"),
    }


def local_line(door: str, state: dict[str, Any]) -> str:
    return (
        f"{door}: keeps {state['people']} people enrolled at the door and refused the office's "
        f"snapshot; offer {state['offer'] or 'not received'}: review with "
        f"`edgegate central doors import-local {door}`"
    )
