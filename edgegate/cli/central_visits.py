"""``edgegate central visits ...``: reception's desk (docs/visitors.md). Every command calls
the visitors service (``edgegate.central.visits``) and publishes what it changed for the doors
like any other office change (``central_common.publish_pending``)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from edgegate.central.visits import (
    CATEGORIES,
    NewVisit,
    NoticeChannels,
    Outcome,
    VisitDesk,
    VisitError,
    policy_of,
)
from edgegate.cli.central_common import (
    add_central_config,
    load,
    master,
    publish_pending,
    signer,
)
from edgegate.cli.common import EXIT_USAGE, CliError, parse_time


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
    approve.add_argument("--role", required=True, help="the approving operator's role")
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


def desk_for(config: Any) -> VisitDesk:
    """The visitors service on the office's store (the CLI's and ``serve``'s)."""
    from edgegate.central.engine import make_engine

    sign = signer(config) if config.central.key_file.exists() else None
    return VisitDesk(
        make_engine(config.central.db),
        master(config),
        sign,
        policy_of(config),
        update_max_ops=config.central.update_max_ops,
    )


def channels_for(config: Any) -> NoticeChannels:
    return NoticeChannels(config.visitors.webhook_url, config.smtp)


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


def _done(config: Any, desk: VisitDesk, out: Outcome, what: str) -> int:
    print(what)
    if out.versions:
        sign = desk.signer or signer(config)
        return publish_pending(config, desk.master, sign)
    return 0


def _ids(desk: VisitDesk, args: argparse.Namespace) -> list[str]:
    if args.visitor:
        ids = desk.find(args.visitor)
        if not ids:
            raise VisitError(f"no visit of {args.visitor!r}")
        return ids
    if not args.visit:
        raise CliError("give a visit id or --visitor NAME", EXIT_USAGE)
    return [args.visit]


def cmd_visits(args: argparse.Namespace) -> int:
    config = load(args)
    desk = desk_for(config)
    try:
        return _run(config, desk, args)
    except VisitError as exc:
        raise CliError(str(exc)) from None
    finally:
        desk.engine.dispose()


def _run(config: Any, desk: VisitDesk, args: argparse.Namespace) -> int:
    c = args.visits_command
    by = args.by
    if c == "book":
        arrive, depart = parse_time(args.arrive), parse_time(args.depart)
        assert arrive is not None and depart is not None
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
        visit_id, out = desk.book(visit, by)
        _print({"visit": visit_id, "host_link": out.link}, args.json)
        return 0
    if c in ("confirm", "decline"):
        desk.decide(args.visit, c == "confirm", by or "office")
        print(f"{c}d {args.visit}")
        return 0
    if c == "link":
        token = args.token.rstrip("/").rsplit("/", 1)[-1]
        visit_id, out = desk.use_link(token, args.action)
        return _done(config, desk, out, f"{args.action}: visit {visit_id}")
    if c == "approve-zone":
        out = desk.approve_zone(args.visit, args.zone, by, args.role)
        return _done(config, desk, out, f"approved {args.zone} for {args.visit} by {by}")
    if c == "issue":
        if args.qr:
            out = desk.issue_qr(args.visit, by, single=args.single)
            _print({"pass": out.pass_id, "token": out.token}, args.json)
            if args.png:
                import segno

                assert out.token is not None
                segno.make(out.token, error="m", micro=False).save(str(args.png), scale=6)
                print(f"wrote {args.png}", file=sys.stderr)
        else:
            out = desk.issue_card(args.visit, by, None if args.pool else args.card)
            _print({"pass": out.pass_id}, args.json)
        return _done(config, desk, out, f"issued {out.pass_id}")
    if c == "revoke":
        return _done(config, desk, desk.revoke(args.pass_id, by), f"revoked {args.pass_id}")
    if c == "returned":
        return _done(config, desk, desk.returned(args.pass_id, by), f"returned {args.pass_id}")
    if c == "sign-off":
        return _done(config, desk, desk.sign_off(args.visit, by), f"signed off {args.visit}")
    if c == "sign-off-link":
        print(desk.sign_off_link(args.visit))
        return 0
    if c == "today":
        start = datetime.now().replace(hour=0, minute=0, second=0, microsecond=0)
        end = start + timedelta(days=1)
        _print(desk.day(start.timestamp(), end.timestamp()), args.json)
        return 0
    if c == "show":
        _print(desk.get(args.visit), args.json)
        return 0
    if c == "register":
        _print(desk.on_site() if args.on_site else desk.register(args.visit), args.json)
        return 0
    if c == "unreturned":
        _print(desk.unreturned_cards(), args.json)
        return 0
    if c == "cards":
        if args.action == "add":
            if not args.card:
                raise CliError("give the card UID", EXIT_USAGE)
            print(f"added {desk.add_pool_card(args.card, args.label)} to the visitor pool")
        else:
            _print(desk.pool(), args.json)
        return 0
    if c == "notices":
        _print(desk.notices(), args.json)
        return 0
    if c == "host-email":
        desk.set_host_email(args.person, args.email)
        print(f"notices for {args.person} go to {args.email}")
        return 0
    if c == "sweep":
        now = time.time()
        arrivals = desk.ingest(now).notices
        out = desk.sweep(now)
        desk.deliver(channels_for(config), now)
        return _done(config, desk, out, f"{len(arrivals)} arrival(s) noticed; swept")
    if c == "export":
        print(json.dumps(desk.export(_ids(desk, args)), indent=1, default=str))
        return 0
    if c == "erase":
        ids = _ids(desk, args)
        return _done(config, desk, desk.erase(ids, by), f"erased {', '.join(ids)}")
    raise CliError(f"unknown visits command {c}", EXIT_USAGE)
