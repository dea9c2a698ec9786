"""The muster list: who is inside each area now, printable, live while it is open (an
evacuation roll call): it re-renders when a passage is archived by any instance
(central/live_feed.py), at most every ``MIN_GAP_SECONDS`` (each render reads the window's
passages), and every ``REFRESH_SECONDS`` for the passages leaving the window. Every role may
read it: the guard at the assembly point may only have a viewer account."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from edgegate.central.services.muster import DEFAULT_HOURS, muster
from edgegate.central.web.auth import ALL, Viewer
from edgegate.central.web.hub import renders
from edgegate.central.web.registry import Page, register_page
from edgegate.central.web.render import page, templates
from edgegate.central.web.sse import sse_frame, sse_response

router = APIRouter()
register_page(Page("/muster", "Muster", ALL, order=15))
REFRESH_SECONDS = 30.0
MIN_GAP_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class MusterQuery:
    """The list's filters, shared by the page, its refresh and the REST API."""

    area: str | None = None
    hours: float = DEFAULT_HOURS


def muster_query(
    area: str | None = Query(None, max_length=64),
    hours: float = Query(DEFAULT_HOURS, gt=0, le=24 * 31),
) -> MusterQuery:
    return MusterQuery(area or None, hours)


Filters = Annotated[MusterQuery, Depends(muster_query)]


def muster_of(request: Request, q: MusterQuery) -> dict:
    """The muster list for the console page and the REST API alike."""
    office = request.app.state.office
    office.master()  # the archive's tables exist from here on, even on a fresh store
    return muster(office.engine, area=q.area, hours=q.hours)


@router.get("/muster", response_class=HTMLResponse)
async def muster_page(request: Request, who: Viewer, q: Filters) -> HTMLResponse:
    data = await run_in_threadpool(muster_of, request, q)
    return page(request, "muster.html", title="Muster", area=q.area or "", **data)


@router.get("/muster/list", response_class=HTMLResponse)
async def muster_list(request: Request, who: Viewer, q: Filters) -> HTMLResponse:
    """The list alone (a script's or a kiosk's poll; the page itself is live)."""
    data = await run_in_threadpool(muster_of, request, q)
    html = templates.get_template("_muster_list.html").render(request=request, **data)
    return HTMLResponse(html)


@router.get("/live/muster")
async def live_muster(request: Request, who: Viewer, q: Filters) -> StreamingResponse:
    """The list, at once and again on every passage (the module docstring)."""
    hub, listing = request.app.state.hub, templates.get_template("_muster_list.html")

    async def stream() -> AsyncIterator[str]:
        async with aclosing(renders(hub, "muster", REFRESH_SECONDS, MIN_GAP_SECONDS)) as wakes:
            async for _ in wakes:
                data = await run_in_threadpool(muster_of, request, q)
                yield sse_frame("muster", listing.render(request=request, **data))

    return sse_response(stream())
