"""The shift handover report: what the next shift must know about a time range.

Open alarms (at the end of the range), alarms raised in it, reader faults and the repairs
and inspections done, assists and staff releases (who was let in, by whom), visitors on
site, doors offline. One ``report`` (a dict) for the CLI's text and JSON, the printable HTML
page (``html``: print it or save it as PDF from a browser) and the console.

Visitors on site come from the visitors' desk (``edgegate/central/services/visitors.py``):
the caller passes its ``on_site`` as ``visitors``; without it the report says that none was given.
"""

from __future__ import annotations

import html as html_lib
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from edgegate.central.alarms import OPEN, AlarmService, doors_t, events_t
from edgegate.central.maintenance import MaintenanceService
from edgegate.central.schema.alarms import alarms
from edgegate.store.journal import parse_rfc3339

# Who is on site at a time (VisitDesk.on_site).
OnSite = Callable[[float], list[dict[str, Any]]]
VISITOR_FIELDS = ("visitor_name", "company", "host", "door", "arrived_at", "expected_departure")


def _releases(engine: Engine, start: float, end: float) -> list[dict[str, Any]]:
    """``staff_release`` events of the range from the archive (operator and person)."""
    q = (
        select(events_t.c.door, events_t.c.ts, events_t.c.payload)
        .where(events_t.c.type == "staff_release")
        .order_by(events_t.c.n)
    )
    out = []
    with engine.connect() as conn:
        for door, ts, payload in conn.execute(q):
            try:
                at = parse_rfc3339(ts)
                body = json.loads(payload)
            except (ValueError, TypeError):
                continue
            if start <= at < end:
                out.append(
                    {
                        "door": door,
                        "at": at,
                        "staff": body.get("staff"),
                        "person": body.get("person"),
                        "source": body.get("source"),
                    }
                )
    return out


def report(
    alarm_service: AlarmService,
    maintenance: MaintenanceService,
    start: float,
    end: float,
    visitors: OnSite | None = None,
) -> dict[str, Any]:
    engine = alarm_service.engine
    with engine.connect() as conn:
        open_at_end = [
            dict(r)
            for r in conn.execute(
                select(alarms)
                .where(
                    alarms.c.raised < end,
                    alarms.c.cleared.is_(None) | (alarms.c.cleared >= end),
                )
                .order_by(alarms.c.raised)
            ).mappings()
        ]
        offline = [
            {"door": d, "since": changed}
            for d, availability, changed in conn.execute(
                select(doors_t.c.door, doors_t.c.availability, doors_t.c.changed)
            ).all()
            if availability == "offline"
        ]
    raised = alarm_service.find(open_only=False, since=start, until=end, limit=10**6)
    assists = [a for a in raised if a["type"] == "assist_requested"]
    work = maintenance.log(since=start, until=end)
    on_site = None
    if visitors is not None:
        # Only what a guard needs: no contact details in a printed report.
        on_site = [
            {**{k: v.get(k) for k in VISITOR_FIELDS}, "overdue": v.get("overdue", False)}
            for v in visitors(end)
        ]
    return {
        "start": start,
        "end": end,
        "open_alarms": open_at_end,
        "open_now": sum(a["state"] in OPEN for a in open_at_end),
        "alarms_raised": raised,
        "faults": maintenance.faults(since=start, until=end, now=end),
        "repairs": [w for w in work if w["kind"] == "repair"],
        "inspections": [w for w in work if w["kind"] == "inspection"],
        "assists": assists,
        "releases": _releases(engine, start, end),
        "visitors_on_site": on_site,
        "doors_offline": offline,
    }


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M")


def _assist_detail(a: dict[str, Any]) -> str:
    d = a.get("detail") or {}
    parts = [f"{d.get('kind', '?')} tries failed: {d.get('failures', '?')}"]
    if d.get("last_reason"):
        parts.append(f"last: {d['last_reason']}")
    if d.get("person") or a.get("person"):
        parts.append(f"credential of {d.get('person') or a.get('person')}")
    return ", ".join(parts)


ALARM_HEADER = ["id", "door", "type", "priority", "state", "raised"]


def _alarm_row(a: dict[str, Any], who: str) -> list[str]:
    return [
        str(a["id"]),
        a["door"],
        a["type"],
        a["priority"],
        a["state"],
        when(a["raised"]),
        a[who] or "-",
    ]


def tables(rep: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """The report as titled tables (title, header, rows) for text and HTML alike."""
    out: list[tuple[str, list[str], list[list[str]]]] = [
        (
            "Open alarms",
            [*ALARM_HEADER, "acknowledged by"],
            [_alarm_row(a, "acknowledged_by") for a in rep["open_alarms"]],
        ),
        (
            "Alarms raised in the shift",
            [*ALARM_HEADER, "cleared by"],
            [_alarm_row(a, "cleared_by") for a in rep["alarms_raised"]],
        ),
        (
            "Reader faults",
            ["door", "reader", "from", "to", "downtime (min)", "error"],
            [
                [
                    f["door"],
                    f["reader"],
                    when(f["started"]),
                    when(f["ended"]),
                    f"{f['downtime'] / 60:.1f}",
                    f["error"],
                ]
                for f in rep["faults"]
            ],
        ),
        (
            "Repairs and inspections",
            ["when", "door", "kind", "by", "findings", "action"],
            [
                [when(w["ts"]), w["door"], w["kind"], w["operator"], w["findings"], w["action"]]
                for w in sorted(rep["repairs"] + rep["inspections"], key=lambda w: w["ts"])
            ],
        ),
        (
            "Assists",
            ["id", "door", "raised", "what failed", "state"],
            [
                [str(a["id"]), a["door"], when(a["raised"]), _assist_detail(a), a["state"]]
                for a in rep["assists"]
            ],
        ),
        (
            "Staff releases",
            ["when", "door", "released by", "person let in", "source"],
            [
                [
                    when(r["at"]),
                    r["door"],
                    r["staff"] or "-",
                    r["person"] or "-",
                    r["source"] or "-",
                ]
                for r in rep["releases"]
            ],
        ),
        (
            "Doors offline",
            ["door", "since"],
            [[d["door"], when(d["since"])] for d in rep["doors_offline"]],
        ),
    ]
    if rep["visitors_on_site"] is None:
        out.append(("Visitors on site", ["note"], [["no visitors register given"]]))
    else:
        out.append(
            (
                "Visitors on site",
                ["visitor", "company", "host", "last door", "arrived", "leaves", "overdue"],
                [
                    [
                        v["visitor_name"] or "-",
                        v["company"] or "-",
                        v["host"] or "-",
                        v["door"] or "-",
                        when(v["arrived_at"]),
                        when(v["expected_departure"]),
                        "OVERDUE" if v["overdue"] else "",
                    ]
                    for v in rep["visitors_on_site"]
                ],
            )
        )
    return out


def text(rep: dict[str, Any]) -> str:
    lines = [f"Shift handover {when(rep['start'])} .. {when(rep['end'])}", ""]
    for title, header, rows in tables(rep):
        lines.append(f"{title} ({len(rows)})")
        if rows:
            widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
            lines.append("  " + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
            for r in rows:
                lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
        else:
            lines.append("  none")
        lines.append("")
    return "\n".join(lines)


PRINT_CSS = """
body { font: 11pt/1.35 sans-serif; margin: 1.5cm; color: #000; }
h1 { font-size: 16pt; } h2 { font-size: 12pt; margin-top: 1.2em; }
table { border-collapse: collapse; width: 100%; margin-bottom: .5em; }
th, td { border: 1px solid #888; padding: 2px 5px; text-align: left; vertical-align: top; }
th { background: #eee; } .none { color: #555; font-style: italic; }
@media print { body { margin: 0; } h2 { page-break-after: avoid; }
  tr { page-break-inside: avoid; } }
"""


def html(rep: dict[str, Any], site: str) -> str:
    """A self-contained printable page (no scripts, no external resources)."""
    e = html_lib.escape
    title = f"Shift handover, {site}: {when(rep['start'])} to {when(rep['end'])}"
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{e(title)}</title><style>{PRINT_CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
    ]
    for name, header, rows in tables(rep):
        parts.append(f"<h2>{e(name)} ({len(rows)})</h2>")
        if not rows:
            parts.append("<p class='none'>none</p>")
            continue
        parts.append("<table><thead><tr>")
        parts.extend(f"<th>{e(h)}</th>" for h in header)
        parts.append("</tr></thead><tbody>")
        for r in rows:
            parts.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>")
        parts.append("</tbody></table>")
    parts.append(f"<p>Printed {e(when(datetime.now().timestamp()))}. Signature: ____________</p>")
    parts.append("</body></html>")
    return "".join(parts)
