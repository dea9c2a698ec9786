"""The event archive for the console and the API: filtered pages by keyset, CSV export, with
person names added where the master knows them (read through ``archive`` and ``store``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from edgegate.central import archive, store
from edgegate.central.services import Office
from edgegate.contract.messages import rfc3339
from edgegate.errors import EdgegateError

FILTERS = ("door", "type", "person", "credential", "reason", "since", "until")
PAGE = 100
EXPORT_MAX = 1_000_000
CSV_COLUMNS = [
    "n",
    "ts",
    "door",
    "type",
    "person",
    "name",
    "credential",
    "kind",
    "direction",
    "reason",
    "reader",
    "id",
]


class BadFilter(EdgegateError, ValueError):
    pass


def archive_time(text: str) -> str:
    """An ISO 8601 date or date-time (local time without a zone) as the archive's UTC text."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadFilter(f"not a date or time: {text!r}") from None
    if when.tzinfo is None:
        when = when.astimezone()  # the office's local time
    return rfc3339(when.astimezone(UTC))


def clean_filters(raw: dict[str, str | None]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for key in FILTERS:
        value = (raw.get(key) or "").strip()[:200]
        if not value:
            continue
        out[key] = archive_time(value) if key in ("since", "until") else value
    return out


@dataclass(frozen=True, slots=True)
class Page:
    events: list[dict[str, Any]]
    next_before: int | None  # keyset cursor of the next (older) page


def names(office: Office, ids: set[str]) -> dict[str, str]:
    return store.person_names(office.master(), ids)


def with_names(office: Office, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    known = names(office, {e["person"] for e in events if isinstance(e.get("person"), str)})
    for e in events:
        if e.get("person") in known:
            e["name"] = known[e["person"]]
    return events


def search(
    office: Office, filters: dict[str, str | None], before: int | None = None, limit: int = PAGE
) -> Page:
    limit = max(1, min(limit, 1000))
    rows = archive.search_events(office.master(), filters, before=before, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(with_names(office, rows), rows[-1]["n"] if more and rows else None)


def export_csv(office: Office, filters: dict[str, str | None]) -> Iterator[str]:
    """CSV text in chunks, newest first, by keyset pages (memory stays flat)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    yield buf.getvalue()
    before: int | None = None
    sent = 0
    while sent < EXPORT_MAX:
        page = search(office, filters, before, 1000)
        buf.seek(0)
        buf.truncate()
        for e in page.events:
            writer.writerow({k: _cell(e.get(k)) for k in CSV_COLUMNS})
        sent += len(page.events)
        yield buf.getvalue()
        if page.next_before is None:
            return
        before = page.next_before


def _cell(value: Any) -> Any:
    # A cell starting with = + - @ is a formula to a spreadsheet: quote it (CSV injection).
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def matches(event: dict[str, Any], filters: dict[str, str | None]) -> bool:
    """Whether a live event passes the page's filters (same meaning as the search)."""
    for key, value in filters.items():
        if not value:
            continue
        if key == "since":
            if str(event.get("ts", "")) < value:
                return False
        elif key == "until":
            if str(event.get("ts", "")) >= value:
                return False
        elif str(event.get(key, "")) != value:
            return False
    return True
