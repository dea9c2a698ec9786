"""``edgegate central visits ...``: reception's desk (docs/visitors.md). Every command calls
the visitors service (``edgegate.central.services.visitors``) and publishes what it changed
for the doors like any other office change (``central_common.publish_pending``)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgegate.central.writer_handoff import Writes
from edgegate.cli.central_common import (
    add_central_config,
    load,
    master,
    publish_pending,
    signer,
)
from edgegate.cli.common import EXIT_USAGE, CliError, parse_time

if TYPE_CHECKING:
    from edgegate.central.services.visitors import Outcome, VisitDesk


# The visitors service's categories, kept here (a test checks they match) so that registering
# the commands does not load SQLAlchemy: a door without the office extra runs ``edgegate``.
CATEGORIES = ("important", "ordinary", "other")


def register(csub: argparse._SubParsersAction) -> None:
    visits = csub.add_parser("visits", help="visitors: book, confirm, passes, register")
    vsub = visits.add_subparsers(dest="visits_command", required=True)

    def sub(name: str, help_: str) -> argparse.ArgumentParser:
        p = vsub.add_parser(name, help=help_)
        add_central_config(p)
        p.add_argument("--by", default="", help="the operator doing it (recorded)")
        p.add_argument("--json", action="store_true", help="JSON output")
        return p

    book = sub("book", "book or register a visit; prints the visit id and the host's link")
    book.add_argument("--visitor", required=True, help="visitor's name (kept at the office)")
    book.add_argument("--company", default="", help="visitor's company")
    book.add_argument("--category", choices=CATEGORIES, default="ordinary")
    book.add_argument("--reason", default="", help="reason of the visit")
    book.add_argument("--host", required=True, help="the person visited (a person id)")
    book.add_argument("--department", default="", help="the host's department")
    book.add_argument("--contact", help="visitor's phone or e-mail (optional)")
    book.add_argument("--arrive", required=True, help="expected arrival, ISO 8601")
    book.add_argument("--depart", required=True, help="expected departure, ISO 8601")
    book.add_argument("--zone", action="append", default=[], help="zone the visit needs")

    for name, help_ in (("confirm", "the host confirms"), ("decline", "the host declines")):
        p = sub(name, help_ + " (an operator on the host's behalf)")
        p.add_argument("visit")
    link = sub("link", "use a host's one-time link: confirm, decline or sign_off")
    link.add_argument("token", help="the link, or its token")
    link.add_argument("action", choices=["confirm", "decline", "sign_off"])
    approve = sub("approve-zone", "approve a zone beyond the visit's (approver roles only)")
    approve.add_argument("visit")
    approve.add_argument("zone")
    approve.add_argument(
        "--role",
        default="admin",
        help="the approving operator's role (default admin: whoever runs the office CLI has "
        "the office's store and key); the console checks the signed-in operator's",
    )
    issue = sub("issue", "issue a pass: a QR pass, or a card from the pool")
    issue.add_argument("visit")
    how = issue.add_mutually_exclusive_group(required=True)
    how.add_argument("--qr", action="store_true", help="a signed QR pass")
    how.add_argument("--card", help="this card of the pool")
    how.add_argument("--pool", action="store_true", help="the first free card of the pool")
    issue.add_argument("--single", action="store_true", help="with --qr: single entry")
    issue.add_argument("--png", type=Path, help="with --qr: write the QR code as a PNG")
    for name, help_ in (
        ("revoke", "revoke a pass at every door"),
        ("returned", "reception has the pass back"),
    ):
        p = sub(name, help_)
        p.add_argument("pass_id")
    off = sub("sign-off", "the host signs the visit off (releases the exit hold)")
    off.add_argument("visit")
    off_link = sub("sign-off-link", "a one-time sign-off link for the host")
    off_link.add_argument("visit")
    sub("today", "today's expected visitors and who has arrived")
    show = sub("show", "one visit, its approvals and passes")
    show.add_argument("visit")
    reg = sub("register", "entries and exits with times; --on-site: who is on site now")
    reg.add_argument("--on-site", action="store_true", help="only visitors on site now")
    reg.add_argument("--visit", help="only this visit")
    sub("unreturned", "cards not returned after their visit's window")
    cards = sub("cards", "the desk's pool of visitor cards")
    cards.add_argument("action", choices=["add", "list"])
    cards.add_argument("card", nargs="?")
    cards.add_argument("--label", default="")
    sub("notices", "notices to hosts (confirm requests, arrivals)")
    email = sub("host-email", "the e-mail address a host's notices go to")
    email.add_argument("person")
    email.add_argument("email")
    sub("sweep", "read new door events; disable unreturned cards; anonymise old visits")
    exp = sub("export", "everything held about a visitor (by visit id or --visitor name)")
    exp.add_argument("visit", nargs="?")
    exp.add_argument("--visitor", help="the visitor's name")
    erase = sub("erase", "erase a visitor's personal data now (by visit id or --visitor)")
    erase.add_argument("visit", nargs="?")
    erase.add_argument("--visitor", help="the visitor's name")
    visits.set_defaults(func=cmd_visits)


def desk_for(config: Any, writes: Writes = Writes.INTERACTIVE) -> VisitDesk:
    """The visitors service on the office's store (the CLI's and ``serve``'s; serve's loop
    passes ``Writes.BULK``: its sweeps are background writes)."""
    from edgegate.central.engine import make_engine
    from edgegate.central.services.visitors import VisitDesk, policy_of

    sign = signer(config) if config.central.key_file.exists() else None
    return VisitDesk(
        make_engine(config.central.db, writes=writes),
        master(config, writes=writes),
        sign,
        policy_of(config),
        update_max_ops=config.central.update_max_ops,
    )


def _print(data: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(data, indent=1, default=str))
        return
    rows = data if isinstance(data, list) else [data]
    for row in rows:
        print("  ".join(f"{k}={_fmt(k, v)}" for k, v in row.items() if v not in (None, "", [])))
    if isinstance(data, list):
        print(f"{len(data)} rows")


def _fmt(key: str, value: Any) -> str:
    if isinstance(value, float) and value > 1e9 and not key.endswith("_days"):
        return datetime.fromtimestamp(value).isoformat(timespec="minutes")
    return str(value)


def _done(
    config: Any, desk: VisitDesk, out: Outcome, what: str, action: str = "", target: str = ""
) -> int:
    """A change: in the audit log (as ``cli:<login>``), then the doors' versions published."""
    if action:
        from edgegate.central.services import audit
        from edgegate.cli.central_console import cli_actor

        audit.record(desk.engine, cli_actor(), action, target, versions=out.versions)
    if what:
        print(what)
    if out.versions:
        sign = desk.signer or signer(config)
        return publish_pending(config, desk.master, sign)
    return 0


def _ids(desk: VisitDesk, args: argparse.Namespace) -> list[str]:
    from edgegate.central.services.visitors import VisitError

    if args.visitor:
        ids = desk.find(args.visitor)
        if not ids:
            raise VisitError(f"no visit of {args.visitor!r}")
        return ids
    if not args.visit:
        raise CliError("give a visit id or --visitor NAME", EXIT_USAGE)
    return [args.visit]


def cmd_visits(args: argparse.Namespace) -> int:
    from edgegate.central.services.visitors import VisitError

    config = load(args)
    desk = desk_for(config)
    try:
        return _run(config, desk, args)
    except VisitError as exc:
        raise CliError(str(exc)) from None
    finally:
        desk.engine.dispose()


def _book(config: Any, desk: VisitDesk, args: argparse.Namespace) -> int:
    from edgegate.central.services.visitors import NewVisit

    arrive, depart = parse_time(args.arrive), parse_time(args.depart)
    assert arrive is not None and depart is not None  # required options
    visit = NewVisit(
        visitor_name=args.visitor,
        host=args.host,
        expected_arrival=arrive,
        expected_departure=depart,
        zones=tuple(args.zone),
        category=args.category,
        company=args.company,
        reason=args.reason,
        department=args.department,
        contact=args.contact,
    )
    visit_id, out = desk.book(visit, args.by)
    _print({"visit": visit_id, "host_link": out.link}, args.json)
    return _done(config, desk, out, f"booked {visit_id}", "visit_booked", visit_id)


def _decide(config: Any, desk: VisitDesk, args: argparse.Namespace) -> int:
    from edgegate.central.services.visitors import Outcome

    accept = args.visits_command == "confirm"
    done = "confirmed" if accept else "declined"
    desk.decide(args.visit, accept, args.by or "office")
    return _done(config, desk, Outcome(), f"{done} {args.visit}", f"visit_{done}", args.visit)


def _link(config: Any, desk: VisitDesk, args: argparse.Namespace) -> int:
    token = args.token.rstrip("/").rsplit("/", 1)[-1]
    visit_id, out = desk.use_link(token, args.action)
    what = f"{args.action}: visit {visit_id}"
    return _done(config, desk, out, what, f"visit_link_{args.action}", visit_id)


def _approve(config: Any, desk: VisitDesk, args: argparse.Namespace) -> int:
    out = desk.approve_zone(args.visit, args.zone, args.by, args.role)
    what = f"approved {args.zone} for {args.visit} by {args.by}"
    return _done(config, desk, out, what, "visit_zone_approved", args.visit)


def _issue(config: Any, desk: VisitDesk, args: argparse.Namespace) -> int:
    if args.qr:
        out = desk.issue_qr(args.visit, args.by, single=args.single)
        _print({"pass": out.pass_id, "token": out.token}, args.json)
        if args.png and out.token is not None:
            import segno

            segno.make(out.token, error="m", micro=False).save(str(args.png), scale=6)
            print(f"wrote {args.png}", file=sys.stderr)
    else:
        out = desk.issue_card(args.visit, args.by, None if args.pool else args.card)
        _print({"pass": out.pass_id}, args.json)
    return _done(config, desk, out, f"issued {out.pass_id}", "visit_pass_issued", args.visit)


def _pass_change(config: Any, desk: VisitDesk, args: argparse.Namespace) -> int:
    c = args.visits_command
    fn = desk.revoke if c == "revoke" else desk.returned
    out = fn(args.pass_id, args.by)
    return _done(config, desk, out, f"{c} {args.pass_id}", f"visit_pass_{c}", args.pass_id)


def _sign_off(config: Any, desk: VisitDesk, args: argparse.Namespace) -> int:
    out = desk.sign_off(args.visit, args.by)
    return _done(config, desk, out, f"signed off {args.visit}", "visit_signed_off", args.visit)


def _today(config: Any, desk: VisitDesk, args: argparse.Namespace) -> int:
    start = datetime.now().replace(hour=0, minute=0, second=0, microsecond=0)
    end = start + timedelta(days=1)
    _print(desk.day(start.timestamp(), end.timestamp()), args.json)
    return 0


def _cards(config: Any, desk: VisitDesk, args: argparse.Namespace) -> int:
    from edgegate.central.services.visitors import Outcome

    if args.action == "list":
        _print(desk.pool(), args.json)
        return 0
    if not args.card:
        raise CliError("give the card UID", EXIT_USAGE)
    card = desk.add_pool_card(args.card, args.label)
    return _done(config, desk, Outcome(), f"added {card} to the visitor pool",
                 "visitor_card_added", card)  # fmt: skip


def _host_email(config: Any, desk: VisitDesk, args: argparse.Namespace) -> int:
    from edgegate.central.services.visitors import Outcome

    desk.set_host_email(args.person, args.email)
    return _done(config, desk, Outcome(), f"notices for {args.person} go to {args.email}",
                 "visit_host_email", args.person)  # fmt: skip


def _sweep(config: Any, desk: VisitDesk, args: argparse.Namespace) -> int:
    now = time.time()
    arrivals = desk.ingest(now).notices
    out = desk.sweep(now)
    desk.deliver(config.smtp is not None, now)
    return _done(config, desk, out, f"{len(arrivals)} arrival(s) noticed; swept")


def _export(config: Any, desk: VisitDesk, args: argparse.Namespace) -> int:
    from edgegate.central.services.visitors import Outcome

    ids = _ids(desk, args)
    print(json.dumps(desk.export(ids), indent=1, default=str))
    return _done(config, desk, Outcome(), "", "visitor_exported", ",".join(ids))


def _erase(config: Any, desk: VisitDesk, args: argparse.Namespace) -> int:
    ids = _ids(desk, args)
    out = desk.erase(ids, args.by)
    return _done(config, desk, out, f"erased {', '.join(ids)}", "visitor_erased", ",".join(ids))


def _show(fn: Any) -> Any:
    """A read-only command: print what ``fn(desk, args)`` returns."""

    def run(config: Any, desk: VisitDesk, args: argparse.Namespace) -> int:
        _print(fn(desk, args), args.json)
        return 0

    return run


COMMANDS: dict[str, Any] = {
    "book": _book,
    "confirm": _decide,
    "decline": _decide,
    "link": _link,
    "approve-zone": _approve,
    "issue": _issue,
    "revoke": _pass_change,
    "returned": _pass_change,
    "sign-off": _sign_off,
    "sign-off-link": _show(lambda d, a: {"link": d.sign_off_link(a.visit)}),
    "today": _today,
    "show": _show(lambda d, a: d.get(a.visit)),
    "register": _show(lambda d, a: d.on_site() if a.on_site else d.register(a.visit)),
    "unreturned": _show(lambda d, a: d.unreturned_cards()),
    "cards": _cards,
    "notices": _show(lambda d, a: d.notices()),
    "host-email": _host_email,
    "sweep": _sweep,
    "export": _export,
    "erase": _erase,
}


def _run(config: Any, desk: VisitDesk, args: argparse.Namespace) -> int:
    return COMMANDS[args.visits_command](config, desk, args)
