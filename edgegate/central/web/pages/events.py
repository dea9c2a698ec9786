"""Events: the archive with filters, keyset paging, a live tail (SSE) and CSV export."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from edgegate.central.services import events
from edgegate.central.web.auth import ALL, Viewer
from edgegate.central.web.registry import Page, register_page
from edgegate.central.web.render import page, templates
from edgegate.central.web.sse import sse_frame, sse_response

router = APIRouter()
register_page(Page("/events", "Events", ALL, order=20))
BATCH = 200  # live rows sent at once at most


def _filters(request: Request) -> tuple[dict[str, str | None], dict[str, str]]:
    raw = {k: request.query_params.get(k) for k in events.FILTERS}
    return events.clean_filters(raw), {k: v for k, v in raw.items() if v}


@router.get("/events", response_class=HTMLResponse)
async def events_page(request: Request, who: Viewer, before: int | None = None) -> Response:
    try:
        filters, shown = _filters(request)
    except events.BadFilter as exc:
        return PlainTextResponse(str(exc), 400)
    result = await run_in_threadpool(events.search, request.app.state.office, filters, before)
    query = urlencode(shown)
    return page(
        request,
        "events.html",
        title="Events",
        events=result.events,
        next_before=result.next_before,
        f=shown,
        query=query,
        first=before is None,
    )


@router.get("/events.csv")
async def events_csv(request: Request, who: Viewer) -> Response:
    try:
        filters, _ = _filters(request)
    except events.BadFilter as exc:
        return PlainTextResponse(str(exc), 400)
    chunks = events.export_csv(request.app.state.office, filters)
    return StreamingResponse(
        iterate_in_threadpool(chunks),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="events.csv"'},
    )


@router.get("/live/events")
async def live_events(request: Request, who: Viewer) -> StreamingResponse:
    filters, _ = _filters(request)
    office, hub = request.app.state.office, request.app.state.hub
    row = templates.get_template("_event_row.html")

    async def stream() -> AsyncIterator[str]:
        sub = hub.subscribe("events")
        try:
            yield ": live\n\n"
            while True:
                # Whatever queued meanwhile goes out together: one names lookup for all of
                # them, so a stream that fell behind (a burst, a busy machine) catches up.
                queued = [await sub.queue.get()]
                while not sub.queue.empty() and len(queued) < BATCH:
                    queued.append(sub.queue.get_nowait())
                shown = [dict(ev) for _topic, ev in queued if events.matches(ev, filters)]
                if not shown:
                    continue
                named = await run_in_threadpool(events.with_names, office, shown)
                yield "".join(sse_frame("event", row.render(e=ev)) for ev in named)
        finally:
            hub.unsubscribe(sub)

    return sse_response(stream())
