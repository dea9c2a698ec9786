"""``edgegate central alarms|equipment|maintenance|handover``: alarms, staff releases and the
equipment's upkeep (docs/alarms.md). Thin: every action is a call into the office services
(``edgegate/central/alarms.py``, ``maintenance.py``, ``handover.py``)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgegate.cli.central_common import (
    EXIT_NOT_PUBLISHED,
    add_central_config,
    load,
    signer,
)
from edgegate.cli.common import EXIT_USAGE, CliError, fmt_time, parse_time

if TYPE_CHECKING:
    # The office's services (SQLAlchemy) load when a command runs, not when the CLI
    # registers its commands: every other edgegate command stays quick to start.
    from edgegate.central.alarms import AlarmService
    from edgegate.central.config import CentralConfig
    from edgegate.central.maintenance import MaintenanceService
    from edgegate.central.services import SendCommand
    from edgegate.central.services.alarm_desk import AlarmDesk


def register(csub: argparse._SubParsersAction) -> None:
    al = csub.add_parser("alarms", help="alarms: list, acknowledge, clear, release, report")
    asub = al.add_subparsers(dest="alarms_command", required=True)
    p = asub.add_parser("list", help="open alarms, highest priority first")
    p.add_argument("--all", action="store_true", help="cleared ones too")
    p.add_argument("--door", help="only this door")
    p.add_argument("--since", help="raised at or after (ISO 8601)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)
    p = asub.add_parser("show", help="one alarm and its history")
    p.add_argument("id", type=int)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)
    for action, helptext in (
        ("ack", "acknowledge (silences the door's alarm output)"),
        ("clear", "clear (acknowledges too if new)"),
    ):
        p = asub.add_parser(action, help=helptext)
        p.add_argument("id", type=int)
        p.add_argument("--by", required=True, help="operator")
        p.add_argument("--note", default="", help="what was found or done")
        p.set_defaults(func=cmd_state, action=action)
    p = asub.add_parser(
        "release",
        help="release the door of an assist, naming the person whose identity you checked",
    )
    p.add_argument("id", type=int, help="the assist_requested alarm")
    p.add_argument("--person", required=True, help="the person verified and let in")
    p.add_argument("--by", required=True, help="operator")
    p.add_argument("--note", default="", help="how the identity was checked")
    p.set_defaults(func=cmd_release)
    p = asub.add_parser("report", help="time to acknowledge and to clear, per day and per door")
    p.add_argument("--since", help="ISO 8601 (default: 7 days ago)")
    p.add_argument("--until", help="ISO 8601 (default: now)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_report)
    for sp in asub.choices.values():
        add_central_config(sp)

    eq = csub.add_parser("equipment", help="the equipment register per door")
    esub = eq.add_subparsers(dest="equipment_command", required=True)
    p = esub.add_parser("list", help="every door: entered and reported")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_equipment_list)
    p = esub.add_parser("set", help="enter or change a door's register entry")
    p.add_argument("door")
    p.add_argument("--name")
    p.add_argument("--location")
    p.add_argument("--reader-model", action="append", help="repeat for each reader")
    p.add_argument("--lock-type")
    p.add_argument("--installed-on", help="ISO date")
    p.add_argument("--responsible", help="the person responsible")
    p.add_argument("--by", required=True, help="operator")
    p.set_defaults(func=cmd_equipment_set)
    for sp in esub.choices.values():
        add_central_config(sp)

    mt = csub.add_parser("maintenance", help="inspections and repairs, the plan, fault history")
    msub = mt.add_subparsers(dest="maintenance_command", required=True)
    p = msub.add_parser("add", help="record an inspection or a repair")
    p.add_argument("door")
    p.add_argument("--kind", choices=["inspection", "repair"], required=True)
    p.add_argument("--by", required=True, help="operator")
    p.add_argument("--findings", default="")
    p.add_argument("--action", default="", help="what was done")
    p.add_argument("--reader", help="the reader concerned")
    p.add_argument("--at", help="when (ISO 8601; default now)")
    p.set_defaults(func=cmd_maintenance_add)
    p = msub.add_parser("list", help="the maintenance log")
    p.add_argument("--door")
    p.add_argument("--since")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_maintenance_list)
    p = msub.add_parser("plan", help="inspect DOOR every N days")
    p.add_argument("door")
    p.add_argument("--every-days", type=float, required=True)
    p.set_defaults(func=cmd_maintenance_plan)
    p = msub.add_parser("due", help="the inspection schedule, overdue ones flagged")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_maintenance_due)
    p = msub.add_parser("faults", help="reader faults, downtime per door and reader per month")
    p.add_argument("--since", help="ISO 8601 (default: all)")
    p.add_argument("--until")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_faults)
    for sp in msub.choices.values():
        add_central_config(sp)

    ho = csub.add_parser("handover", help="the shift handover report for a time range")
    ho.add_argument("--since", required=True, help="start of the shift (ISO 8601)")
    ho.add_argument("--until", help="end (default now)")
    ho.add_argument("--html", type=Path, help="also write a printable page to this file")
    ho.add_argument("--json", action="store_true")
    add_central_config(ho)
    ho.set_defaults(func=cmd_handover)


# --- wiring ---------------------------------------------------------------------------------


def cli_send(config: CentralConfig) -> SendCommand:
    """The commands service's send hook for a CLI process: one broker connection per
    command (``central serve`` hands its own connected client instead)."""
    from edgegate.central.publisher import Publisher

    def send(topic: str, message: dict[str, Any]) -> None:
        c = config.central
        with Publisher(config.mqtt, signer(config), c.site, c.publish_timeout_seconds) as pub:
            pub.send(topic, [message])

    return send


def alarm_desk(args: argparse.Namespace) -> AlarmDesk:
    from edgegate.central.services import open_office
    from edgegate.central.services.alarm_desk import AlarmDesk

    config = load(args)
    desk = AlarmDesk(open_office(config, send_command=cli_send(config)))
    desk.refresh()
    return desk


def alarm_service(args: argparse.Namespace) -> tuple[CentralConfig, AlarmService]:
    desk = alarm_desk(args)
    return desk.office.config, desk.alarms


def _dump(value: Any) -> None:
    print(json.dumps(value, indent=1, default=str))


def _show(args: argparse.Namespace, rows: list[dict[str, Any]], line: Any) -> int:
    """``--json``: the rows as they are; else one line per row."""
    if args.json:
        _dump(rows)
    else:
        for row in rows:
            print(line(row))
    return 0


def _minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f}"


# --- alarms ---------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    _, svc = alarm_service(args)
    rows = svc.find(open_only=not args.all, door=args.door, since=parse_time(args.since))
    if args.json:
        _dump(rows)
        return 0
    if not rows:
        print("no open alarms" if not args.all else "no alarms")
    for a in rows:
        who = f" by {a['acknowledged_by']}" if a["acknowledged_by"] else ""
        extra = f" reader {a['reader']}" if a["reader"] else ""
        extra += f" person {a['person']}" if a["person"] else ""
        print(
            f"{a['id']:>5}  {a['priority']:<8} {a['state']:<12}{who:<14} {fmt_time(a['raised'])}"
            f"  {a['door']:<12} {a['type']}{extra}"
        )
    return 0


def _get(svc: AlarmService, alarm_id: int) -> dict[str, Any]:
    from edgegate.central.alarms import AlarmError

    try:
        return svc.get(alarm_id)
    except AlarmError as exc:
        raise CliError(str(exc), 1) from None


def cmd_show(args: argparse.Namespace) -> int:
    _, svc = alarm_service(args)
    alarm = _get(svc, args.id)
    history = svc.history(args.id)
    if args.json:
        _dump({"alarm": alarm, "history": history})
        return 0
    print(
        f"alarm {alarm['id']}: {alarm['type']} at {alarm['door']} ({alarm['priority']}), "
        f"{alarm['state']}"
    )
    print(f"  detail: {json.dumps(alarm['detail'], sort_keys=True)}")
    for h in history:
        by = f" by {h['operator']}" if h["operator"] else ""
        note = f": {h['note']}" if h["note"] else ""
        print(f"  {fmt_time(h['ts'])}  {h['action']}{by}{note}")
    return 0


def cmd_state(args: argparse.Namespace) -> int:
    from edgegate.central.alarms import AlarmError
    from edgegate.central.services import Actor

    desk = alarm_desk(args)
    actor = Actor(args.by, "cli")
    try:
        if args.action == "ack":
            alarm = desk.acknowledge(actor, args.id, args.note)
        else:
            alarm = desk.clear(actor, args.id, args.note)
    except AlarmError as exc:
        raise CliError(str(exc), 1) from None
    print(f"alarm {args.id} {alarm['state']} by {args.by}")
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    from edgegate.central.alarms import AlarmError
    from edgegate.central.publisher import BrokerUnreachable
    from edgegate.central.services import Actor

    desk = alarm_desk(args)
    try:
        alarm = desk.release(Actor(args.by, "cli"), args.id, args.person, args.note)
    except AlarmError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    except BrokerUnreachable as exc:
        print(f"edgegate: broker unreachable ({exc}); the door was not released", file=sys.stderr)
        return EXIT_NOT_PUBLISHED
    print(f"released {alarm['door']} for {args.person} (command {alarm['command']})")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    _, svc = alarm_service(args)
    since = parse_time(args.since) if args.since else time.time() - 7 * 86400
    rep = svc.timeliness(since, parse_time(args.until))
    if args.json:
        _dump(rep)
        return 0
    for title, key in (("per day", "per_day"), ("per door", "per_door")):
        print(f"Time to acknowledge / clear ({title}, minutes: mean, median, max)")
        for name, s in rep[key].items():
            ack, clr = s["to_acknowledge_s"], s["to_clear_s"]
            print(
                f"  {name:<12} {s['alarms']:>4} alarms  ack {_minutes(ack['mean'])} / "
                f"{_minutes(ack['median'])} / {_minutes(ack['max'])}   clear "
                f"{_minutes(clr['mean'])} / {_minutes(clr['median'])} / {_minutes(clr['max'])}"
                f"   escalated {s['escalated']}"
            )
        print()
    return 0


# --- equipment and maintenance ----------------------------------------------------------------


def maintenance_service(args: argparse.Namespace) -> MaintenanceService:
    # Reader faults come from the same ingest as the alarms (the desk's refresh).
    return alarm_desk(args).maintenance


def cmd_equipment_list(args: argparse.Namespace) -> int:
    return _show(
        args,
        maintenance_service(args).register(),
        lambda e: (
            f"{e['door']:<12} {e['name'] or '-':<20} {e['location'] or '-':<24} readers "
            f"{', '.join(e['reader_models'] or e['reported_readers']) or '-'}; "
            f"lock {e['lock_type'] or '-'}; installed {e['installed_on'] or '-'}; "
            f"responsible {e['responsible'] or '-'} [{e['availability']}]"
            + (
                f"; doctor {e['doctor']['result']} {fmt_time(e['doctor']['at'])}"
                if e["doctor"]
                else ""
            )
        ),
    )


def cmd_equipment_set(args: argparse.Namespace) -> int:
    svc = maintenance_service(args)
    try:
        entry = svc.set_equipment(
            args.door,
            args.by,
            time.time(),
            name=args.name,
            location=args.location,
            reader_models=args.reader_model,
            lock_type=args.lock_type,
            installed_on=args.installed_on,
            responsible=args.responsible,
        )
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    print(f"{entry['door']}: registered")
    return 0


def cmd_maintenance_add(args: argparse.Namespace) -> int:
    svc = maintenance_service(args)
    ts = parse_time(args.at) if args.at else time.time()
    assert ts is not None
    entry = svc.record(
        args.door,
        args.kind,
        args.by,
        ts=ts,
        findings=args.findings,
        action=args.action,
        reader=args.reader,
    )
    print(f"recorded {args.kind} {entry} at {args.door}")
    return 0


def cmd_maintenance_list(args: argparse.Namespace) -> int:
    rows = maintenance_service(args).log(door=args.door, since=parse_time(args.since))
    return _show(
        args,
        rows,
        lambda w: (
            f"{fmt_time(w['ts'])}  {w['door']:<12} {w['kind']:<10} by {w['operator']}"
            + (f" reader {w['reader']}" if w["reader"] else "")
            + f": {w['findings'] or '-'} -> {w['action'] or '-'}"
        ),
    )


def cmd_maintenance_plan(args: argparse.Namespace) -> int:
    try:
        maintenance_service(args).plan(args.door, args.every_days, time.time())
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    print(f"{args.door}: inspection every {args.every_days:g} days")
    return 0


def cmd_maintenance_due(args: argparse.Namespace) -> int:
    rows = maintenance_service(args).schedule(time.time())
    return _show(
        args,
        rows,
        lambda r: (
            f"{r['door']:<12} every {r['every_days']:g} d  last {fmt_time(r['last_inspection'])}"
            + (f"  OVERDUE by {r['overdue_days']:g} d" if r["overdue"] else "  due")
            + f" {fmt_time(r['due'])}"
        ),
    )


def _months(entry: dict[str, Any]) -> str:
    by = sorted(entry["downtime_by_month"].items())
    return ", ".join(f"{k} {v / 60:.1f}" for k, v in by) or "-"


def cmd_faults(args: argparse.Namespace) -> int:
    rep = maintenance_service(args).fault_report(
        since=parse_time(args.since), until=parse_time(args.until), now=time.time()
    )
    if args.json:
        _dump(rep)
        return 0
    print("Doors, most faults first (downtime minutes per month)")
    for d in rep["doors"]:
        print(f"  {d['door']:<12} {d['faults']:>3} faults ({d['open']} open)  {_months(d)}")
    print("Readers")
    for r in rep["readers"]:
        print(f"  {r['door']}/{r['reader']:<10} {r['faults']:>3} faults  {_months(r)}")
    return 0


def cmd_handover(args: argparse.Namespace) -> int:
    from edgegate.central import handover

    desk = alarm_desk(args)
    config = desk.office.config
    start = parse_time(args.since)
    end = parse_time(args.until) if args.until else time.time()
    assert start is not None and end is not None
    if end <= start:
        raise CliError("--until must be after --since", EXIT_USAGE)
    from edgegate.cli.central_visits import desk_for

    visits = desk_for(config)
    rep = handover.report(desk.alarms, desk.maintenance, start, end, visits.on_site)
    if args.html:
        args.html.write_text(handover.html(rep, config.central.site))
        print(f"wrote {args.html}", file=sys.stderr)
    if args.json:
        _dump(rep)
    else:
        print(handover.text(rep))
    return 0
