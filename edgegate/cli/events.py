"""``edgegate events``: the local journal, readable while the daemon writes (WAL)."""

from __future__ import annotations

import argparse
import json

from edgegate.cli.common import add_config_arg, load_config, open_store
from edgegate.store import journal


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("events", help="list the local event journal")
    add_config_arg(p)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--limit", type=int, default=50, help="newest N events (default 50)")
    p.add_argument("--type", dest="type_", help="only events of this type")
    p.add_argument("--unsent", action="store_true", help="only events not yet acknowledged")
    p.set_defaults(func=cmd_events)


def format_event(message: dict) -> str:
    skip = {"id", "seq", "ts", "type", "site", "door"}
    rest = " ".join(f"{k}={v}" for k, v in message.items() if k not in skip)
    return f"{message['seq']:>7} {message['ts']} {message['type']:<16} {rest}"


def cmd_events(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    conn = open_store(config, readonly=True)
    if args.unsent:
        events = journal.unsent(conn, limit=args.limit)
    else:
        events = journal.recent(conn, limit=args.limit, type_=args.type_)
    for ev in events:
        msg = ev.as_message()
        if args.json:
            print(json.dumps({**msg, "sent": ev.sent}, separators=(",", ":")))
        else:
            print(format_event(msg) + ("" if ev.sent else "  (unsent)"))
    return 0
