"""Doors board, live: the rows are re-rendered and pushed over server-sent events whenever the
archive commits something from a door (availability, state, telemetry, events), and every
few seconds so that "since" and "last seen" keep counting; the office's own broker link
(``central/instances.py``) above them, refreshed alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from edgegate.central.services import doors
from edgegate.central.web.auth import ALL, Viewer
from edgegate.central.web.hub import renders
from edgegate.central.web.registry import Page, register_page
from edgegate.central.web.render import page, templates
from edgegate.central.web.sse import sse_frame, sse_response

router = APIRouter()
register_page(Page("/doors", "Doors", ALL, order=10))
REFRESH_SECONDS = 5.0
MIN_GAP_SECONDS = 0.25


@router.get("/", include_in_schema=False)
async def home(request: Request, who: Viewer) -> HTMLResponse:
    return await board(request, who)


@router.get("/doors", response_class=HTMLResponse)
async def board(request: Request, who: Viewer) -> HTMLResponse:
    data = await run_in_threadpool(doors.board, request.app.state.office)
    return page(request, "doors.html", title="Doors", **data)


def rows_html(request: Request, data: dict) -> str:
    return templates.get_template("_doors_rows.html").render(request=request, **data)


def office_html(request: Request, data: dict) -> str:
    return templates.get_template("_office_link.html").render(request=request, **data)


@router.get("/live/doors")
async def live(request: Request, who: Viewer) -> StreamingResponse:
    office, hub = request.app.state.office, request.app.state.hub

    async def stream() -> AsyncIterator[str]:
        async with aclosing(renders(hub, "doors", REFRESH_SECONDS, MIN_GAP_SECONDS)) as wakes:
            async for _ in wakes:
                data = await run_in_threadpool(doors.board, office)
                yield sse_frame("doors", rows_html(request, data))
                yield sse_frame("office", office_html(request, data))

    return sse_response(stream())
