"""The muster list: who is inside each area now, printable, refreshed every few seconds while
it is open (an evacuation roll call). Every role may read it: the guard at the assembly point
may only have a viewer account."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from edgegate.central.services.muster import DEFAULT_HOURS, muster
from edgegate.central.web.auth import ALL, Viewer
from edgegate.central.web.registry import Page, register_page
from edgegate.central.web.render import page, templates

router = APIRouter()
register_page(Page("/muster", "Muster", ALL, order=15))


def muster_of(request: Request, area: str | None, hours: float) -> dict:
    """The muster list for the console page and the REST API alike."""
    office = request.app.state.office
    office.master()  # the archive's tables exist from here on, even on a fresh store
    return muster(office.engine, area=area or None, hours=hours)


@router.get("/muster", response_class=HTMLResponse)
async def muster_page(
    request: Request,
    who: Viewer,
    area: str | None = Query(None, max_length=64),
    hours: float = Query(DEFAULT_HOURS, gt=0, le=24 * 31),
) -> HTMLResponse:
    data = await run_in_threadpool(muster_of, request, area, hours)
    return page(request, "muster.html", title="Muster", area=area or "", **data)


@router.get("/muster/list", response_class=HTMLResponse)
async def muster_list(
    request: Request,
    who: Viewer,
    area: str | None = Query(None, max_length=64),
    hours: float = Query(DEFAULT_HOURS, gt=0, le=24 * 31),
) -> HTMLResponse:
    """The list alone, for the page's periodic refresh (htmx)."""
    data = await run_in_threadpool(muster_of, request, area, hours)
    html = templates.get_template("_muster_list.html").render(request=request, **data)
    return HTMLResponse(html)
