"""Traffic per door and for the site: per hour of day and per day, entries and exits apart,
peaks and quiet hours, denials by reason (from the archive's decisions)."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from edgegate.central import archive
from edgegate.central.services import Office
from edgegate.contract.messages import rfc3339


def report(
    office: Office, days: int = 7, door: str | None = None, now: float | None = None
) -> dict[str, Any]:
    now = time.time() if now is None else now
    days = max(1, min(days, 366))
    start = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start -= timedelta(days=days - 1)
    rows = archive.traffic_counts(office.master(), rfc3339(start), door or None)
    day_names = [(start + timedelta(days=i)).strftime("%Y-%m-%d") for i in range(days)]
    by_hour = {k: [0] * 24 for k in ("in", "out", "denied")}
    by_day = {k: dict.fromkeys(day_names, 0) for k in ("in", "out", "denied")}
    reasons: Counter[str] = Counter()
    doors: dict[str, Counter[str]] = defaultdict(Counter)
    for d, day, hour, type_, direction, reason, n in rows:
        key = "denied" if type_ == "access_denied" else ("out" if direction == "out" else "in")
        h = int(hour) if hour and hour.isdigit() else 0
        by_hour[key][h] += n
        if day in by_day[key]:
            by_day[key][day] += n
        if key == "denied":
            reasons[reason or "unknown"] += n
        doors[d][key] += n
    totals = [by_hour["in"][h] + by_hour["out"][h] for h in range(24)]
    busy = [h for h in range(24) if totals[h]]
    peak = max(busy, key=lambda h: totals[h]) if busy else None
    top = max(totals) if busy else 0
    # Quiet: hours with passages but at most a tenth of the peak hour.
    quiet = [h for h in busy if totals[h] <= top / 10]
    return {
        "days": days,
        "door": door or "",
        "hours": list(range(24)),
        "by_hour": by_hour,
        "day_names": day_names,
        "by_day": {k: list(v.values()) for k, v in by_day.items()},
        "peak_hour": peak,
        "quiet_hours": quiet,
        "reasons": reasons.most_common(),
        "doors": {d: dict(c) for d, c in sorted(doors.items())},
        "totals": {k: sum(v) for k, v in by_hour.items()},
    }
