"""``edgegate stats``: traffic per day and per hour, the busiest and the quietest hours."""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from collections import defaultdict
from datetime import datetime
from typing import TypedDict

from edgegate.cli.common import CliError, add_config_arg, load_config, open_store
from edgegate.store.rules_state import TRAFFIC_COLUMNS, traffic_rows

BAR_WIDTH = 40


class Summary(TypedDict):
    """What ``summarise`` finds (also the ``--json`` output)."""

    days: dict[str, dict[str, int]]
    hours: list[int]
    traffic_measure: str
    busiest_hour: int
    quietest_hour: int


def register(sub: argparse._SubParsersAction) -> None:
    stats = sub.add_parser("stats", help="traffic per day and per hour, peaks and quiet hours")
    add_config_arg(stats)
    stats.add_argument("--days", type=int, default=31, help="how many days back (default 31)")
    stats.add_argument("--door", help="door id (default: this door's)")
    stats.add_argument("--json", action="store_true", help="machine-readable output")
    stats.set_defaults(func=cmd_stats)


def summarise(
    rows: list[tuple[str, int, int, int, int, int]],
) -> Summary:
    """Daily totals and the per-hour-of-day profile (local time) of traffic rows.

    "traffic" is what passed the door: passages (turnstile passages, or door openings on a
    pass) plus exit requests; a door with no contact or passage input counts no passages, so
    there its grants stand in for them.
    """
    days: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(TRAFFIC_COLUMNS, 0))
    for _door, hour, *counts in rows:
        day = datetime.fromtimestamp(hour).strftime("%Y-%m-%d")
        for key, n in zip(TRAFFIC_COLUMNS, counts, strict=True):
            days[day][key] += n
    counted = any(r[4] or r[5] for r in rows)
    hours = [0] * 24
    for _door, hour, granted, _denied, passages, exits in rows:
        hod = datetime.fromtimestamp(hour).hour
        hours[hod] += passages + exits if counted else granted
    busiest = max(range(24), key=lambda h: (hours[h], -h))
    quietest = min(range(24), key=lambda h: (hours[h], h))
    return {
        "days": dict(sorted(days.items())),
        "hours": hours,
        "traffic_measure": "passages+exits" if counted else "granted",
        "busiest_hour": busiest,
        "quietest_hour": quietest,
    }


def render(summary: Summary, door: str) -> str:
    days = summary["days"]
    hours = summary["hours"]
    lines = [f"traffic at door {door} ({len(days)} day(s) with activity)", ""]
    lines.append(f"{'day':<11}" + "".join(f"{c:>10}" for c in TRAFFIC_COLUMNS))
    for day, counts in days.items():
        lines.append(f"{day:<11}" + "".join(f"{counts[c]:>10}" for c in TRAFFIC_COLUMNS))
    totals = {c: sum(d[c] for d in days.values()) for c in TRAFFIC_COLUMNS}
    lines.append(f"{'total':<11}" + "".join(f"{totals[c]:>10}" for c in TRAFFIC_COLUMNS))
    ndays = max(1, len(days))
    b, q = summary["busiest_hour"], summary["quietest_hour"]
    lines += [
        "",
        f"busiest hour:  {b:02d}:00-{b + 1:02d}:00 ({hours[b]} in total, "
        f"{hours[b] / ndays:.1f}/day)",
        f"quietest hour: {q:02d}:00-{q + 1:02d}:00 ({hours[q]} in total, "
        f"{hours[q] / ndays:.1f}/day)",
        "",
        f"traffic by hour of day ({summary['traffic_measure']}):",
    ]
    peak = max(hours) or 1
    for h, n in enumerate(hours):
        bar = "#" * round(n / peak * BAR_WIDTH)
        lines.append(f"{h:02d} |{bar:<{BAR_WIDTH}} {n}")
    return "\n".join(lines)


def cmd_stats(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    conn = open_store(config, readonly=True)
    door = args.door or config.door.id
    try:
        rows = traffic_rows(conn, door, since=time.time() - args.days * 86400)
    except sqlite3.OperationalError:
        raise CliError(
            "this store has no traffic yet (start the daemon once to upgrade it)"
        ) from None

    summary = summarise(rows)
    if args.json:
        print(json.dumps({"door": door, **summary}, indent=1))
    else:
        print(render(summary, door))
    return 0
