"""``edgegate central cmd|serve|doors|events|publish``: commands, the daemon, watching doors."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from edgegate import logging_setup
from edgegate.cli import central_local
from edgegate.cli.central_common import (
    EXIT_NOT_PUBLISHED,
    add_central_config,
    load,
    master,
    publish_pending,
    signer,
)
from edgegate.cli.common import EXIT_USAGE, CliError, parse_time
from edgegate.contract import messages as m
from edgegate.store.journal import rfc3339

if TYPE_CHECKING:
    from edgegate.central.config import CentralConfig


def register(csub: argparse._SubParsersAction) -> None:
    cmd = csub.add_parser("cmd", help="send a signed command to one door or all")
    cmd.add_argument("door", help="door id, or 'all'")
    cmd.add_argument("command", choices=[c for c in get_args(m.CommandName) if c != "enrol_finger"])
    cmd.add_argument("--ttl", type=float, help="seconds the command stays valid")
    cmd.add_argument("--by", default="", help="operator name, journaled by the door")
    cmd.add_argument("--seconds", type=float, help="with unlock: how long to release")
    add_central_config(cmd)
    cmd.set_defaults(func=cmd_cmd)

    serve = csub.add_parser("serve", help="run the central office service")
    add_central_config(serve)
    serve.set_defaults(func=cmd_serve)

    backup = csub.add_parser("backup", help="a consistent copy of the SQLite office store")
    backup.add_argument("--to", type=Path, required=True, help="the new backup file")
    add_central_config(backup)
    backup.set_defaults(func=cmd_backup)

    publish = csub.add_parser("publish", help="publish versions the broker did not get yet")
    add_central_config(publish)
    publish.set_defaults(func=cmd_publish)

    doors = csub.add_parser("doors", help="doors online/offline, last seen, versions")
    doors.add_argument("--json", action="store_true", help="JSON output")
    add_central_config(doors)
    doors.set_defaults(func=cmd_doors)
    dsub = doors.add_subparsers(dest="doors_action", metavar="{import-local}")
    central_local.register(dsub)

    events = csub.add_parser("events", help="query or tail the event archive")
    events.add_argument("--door", help="only this door")
    events.add_argument("--type", dest="type_", help="only this event type")
    events.add_argument("--since", help="ISO 8601 date or time (local unless a zone is given)")
    events.add_argument("--limit", type=int, default=50, help="newest N (default 50)")
    events.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    events.add_argument("--json", action="store_true", help="one JSON object per line")
    add_central_config(events)
    events.set_defaults(func=cmd_events)


def cmd_cmd(args: argparse.Namespace) -> int:
    config = load(args)
    extra: dict[str, Any] = {}
    if args.seconds is not None:
        if args.command != "unlock":
            raise CliError("--seconds goes with unlock only", EXIT_USAGE)
        extra["seconds"] = args.seconds
    return issue_command(config, args.door, args.command, args.by, extra, ttl=args.ttl)[0]


def issue_command(
    config: CentralConfig,
    door: str,
    command: str,
    by: str,
    extra: dict[str, Any],
    *,
    ttl: float | None = None,
) -> tuple[int, dict[str, Any]]:
    """Build, record (``commands`` table) and send one signed command: (0 or exit 3, the
    message)."""
    from edgegate.central.publisher import (
        BrokerUnreachable,
        Publisher,
        command_message,
        command_topic,
    )

    c = config.central
    try:
        message = command_message(
            c.site, door, command, ttl=ttl or c.command_ttl_seconds, by=by, args=extra
        )
    except ValueError as exc:
        raise CliError(f"not a valid command: {exc}", EXIT_USAGE) from None
    sign = signer(config)
    from edgegate.central.services import commands, open_office
    from edgegate.cli.central_console import cli_actor

    office = open_office(config)
    commands.record(office, cli_actor(), message)  # every command issued, sent or not
    try:
        with Publisher(config.mqtt, sign, c.site, c.publish_timeout_seconds) as pub:
            pub.send(command_topic(c.site, door), [message])
    except BrokerUnreachable as exc:
        # A command is not queued for later: it expires, and a late unlock is a hazard.
        print(f"edgegate: broker unreachable ({exc}); command not sent", file=sys.stderr)
        return EXIT_NOT_PUBLISHED, message
    commands.mark_sent(office, message)
    print(f"sent {command} to {door} (id {message['id']}, expires {message['expires']})")
    return 0, message


def cmd_serve(args: argparse.Namespace) -> int:
    config = load(args)
    logging_setup.configure(config.logging.level, config.logging.format)
    from edgegate.central.leader import SecondInstance
    from edgegate.central.server import serve
    from edgegate.cli.central_bio import face_encoder_process

    encoder = face_encoder_process()
    try:
        asyncio.run(serve(config, signer(config), encoder))
    except SecondInstance as exc:
        print(f"edgegate: {exc}", file=sys.stderr)
        return 2
    finally:
        if encoder is not None:
            encoder.close()
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from edgegate.central.backup import BackupError, backup_sqlite

    config = load(args)
    engine = master(config, readonly=True)
    try:
        pages = backup_sqlite(engine, config.central.db, args.to)
    except BackupError as exc:
        raise CliError(str(exc)) from None
    finally:
        engine.dispose()
    print(f"backed up {config.central.db} to {args.to} ({pages} pages)")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from edgegate.central import store

    config = load(args)
    engine = master(config)
    with store.reading(engine) as conn:
        pending = store.unpublished_count(conn)
    if not pending:
        print("nothing to publish")
        return 0
    return publish_pending(config, engine, signer(config))


def _ago(ts: float | None, now: float) -> str:
    if ts is None:
        return "never"
    s = max(0, now - ts)
    return (
        f"{s:.0f}s ago"
        if s < 120
        else f"{s / 60:.0f}min ago"
        if s < 7200
        else (f"{s / 3600:.1f}h ago")
    )


def archive_behind(telemetry: dict[str, Any] | None, archived: int) -> int | None:
    """The door's published-and-acknowledged count when it runs ahead of what the archive
    holds of that door (events the broker took that never reached the office), else None.
    The door counts since its start, the archive since ever: only "ahead" is certain."""
    acked = ((telemetry or {}).get("journal") or {}).get("acked")
    if isinstance(acked, int) and not isinstance(acked, bool) and acked > archived:
        return acked
    return None


def cmd_doors(args: argparse.Namespace) -> int:
    from edgegate.central import archive, instances, store
    from edgegate.central.services.doors import journal_depth, unarchived

    config = load(args)
    now = time.time()
    with store.reading(master(config, readonly=True)) as conn:
        rows = archive.list_doors(conn)
        latest = store.current_version(conn)
        counters = archive.counters(conn)
        held = archive.archived_per_door(conn)
        dead_after = instances.stale_after(config.central.duty_check_seconds)
        links = instances.office_links(conn, now, dead_after)
    stale = config.central.offline_after_seconds
    for r in rows:
        r["journal_depth"] = journal_depth(r["telemetry"])
        r["unarchived"] = unarchived(r["telemetry"])
        r["stale"] = bool(stale and r["last_seen"] and now - r["last_seen"] > stale)
        r["archived"] = held.get((r["site"], r["door"]), 0)
        r["archive_behind"] = archive_behind(r["telemetry"], r["archived"])
    offers = central_local.offers_by_door(config)
    for r in rows:
        r["local_people"] = central_local.local_state(r["telemetry"], offers.get(r["door"]))
    if args.json:
        out = {"version": latest, "office": links, "doors": rows, "counters": counters}
        print(json.dumps(out))
        return 0
    for line in instances.describe_all(links):
        print(line)
    print(
        f"{'door':<16} {'status':<8} {'since':<12} {'last seen':<12} {'version':<10} "
        f"{'journal':<8} unarchived"
    )
    for r in rows:
        have = r["credential_version"]
        ver = "-" if have is None else f"{have}" + ("" if have == latest else f"/{latest}")
        status = r["availability"] + ("?" if r["stale"] else "")
        print(
            f"{r['door']:<16} {status:<8} {_ago(r['changed'], now):<12} "
            f"{_ago(r['last_seen'], now):<12} {ver:<10} {r['journal_depth'] or '-':<8} "
            f"{'-' if r['unarchived'] is None else r['unarchived']}"
        )
    for r in rows:
        if r["local_people"] is not None:
            print(central_local.local_line(r["door"], r["local_people"]))
        if r["archive_behind"]:
            print(
                f"{r['door']}: ARCHIVE BEHIND: the door's broker acknowledged "
                f"{r['archive_behind']} events since it started, the archive holds "
                f"{r['archived']} of it (is `central serve` running and subscribed?)"
            )
    online = sum(r["availability"] == "online" for r in rows)
    print(f"{online}/{len(rows)} online; master version {latest}")
    return 0


def _line(ev: dict[str, Any]) -> str:
    skip = {"n", "id", "seq", "ts", "type", "site", "door"}
    rest = " ".join(f"{k}={v}" for k, v in ev.items() if k not in skip)
    return f"{ev['ts']} {ev.get('door', '?'):<12} {ev['type']:<16} {rest}"


def cmd_events(args: argparse.Namespace) -> int:
    from edgegate.central import archive, store

    config = load(args)
    engine = master(config, readonly=True)
    since = None
    if args.since:
        ts = parse_time(args.since)
        assert ts is not None
        since = rfc3339(ts)
    query: dict[str, Any] = {"door": args.door, "type_": args.type_, "since": since}
    with store.reading(engine) as conn:
        events = archive.query_events(conn, limit=args.limit, **query)
        last = events[-1]["n"] if events else archive.last_n(conn)
    if not last and not args.follow:
        print(
            "no events archived yet (has `central serve` run and a door sent any?)",
            file=sys.stderr,
        )
    _print(events, args.json)
    while args.follow:
        time.sleep(0.5)  # a fresh read each time: it sees serve's commits, locks nothing
        with store.reading(engine) as conn:
            events = archive.query_events(conn, after=last, **query)
        if events:
            last = events[-1]["n"]
            _print(events, args.json)
    return 0


def _print(events: list[dict[str, Any]], as_json: bool) -> None:
    for ev in events:
        if as_json:
            ev = {k: v for k, v in ev.items() if k != "n"}
        print(json.dumps(ev, separators=(",", ":")) if as_json else _line(ev), flush=True)
