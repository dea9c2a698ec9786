"""``edgegate central muster``: who is inside each area, from the archive (for an evacuation
roll call; the console's /muster page shows the same list, printable).

The office's services (SQLAlchemy) are imported when the command runs, not when the CLI
registers it: a door installed without the office extra still runs ``edgegate``.
"""

from __future__ import annotations

import argparse
import json

from edgegate.cli.central_common import add_central_config


def register(csub: argparse._SubParsersAction) -> None:
    p = csub.add_parser("muster", help="who is inside each area now (evacuation roll call)")
    p.add_argument("--area", help="one area only (default: every area)")
    p.add_argument("--hours", type=float, help="only passages of the last HOURS count (default 24)")
    p.add_argument("--json", action="store_true", help="JSON output")
    add_central_config(p)
    p.set_defaults(func=cmd_muster)


def cmd_muster(args: argparse.Namespace) -> int:
    from edgegate.central.services.muster import muster
    from edgegate.cli.central_console import office_of

    office = office_of(args)
    office.master()  # the archive's tables exist from here on, even on a fresh store
    window = {} if args.hours is None else {"hours": args.hours}
    data = muster(office.engine, area=args.area, **window)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    if not data["areas"]:
        print(f"nobody entered any area in the last {data['hours']:g} h")
        return 0
    for area in data["areas"]:
        print(f"{area['area']}: {area['occupancy']} inside")
        for p in area["people"]:
            name = f" ({p['name']})" if p["name"] else ""
            print(f"  {p['person']}{name}  since {p['since']}  via {p['door']}")
    print(f"total: {data['total']} (generated {data['generated']})")
    return 0
