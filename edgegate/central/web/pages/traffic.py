"""Traffic: charts (uPlot, served by the office) and the same figures as tables."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from edgegate.central.services import traffic
from edgegate.central.web.auth import ALL, Viewer
from edgegate.central.web.registry import Page, register_page
from edgegate.central.web.render import page

router = APIRouter()
register_page(Page("/traffic", "Traffic", ALL, order=50))


def _chart(x: list, xlabel: str, series: dict[str, list[int]]) -> str:
    # JSON for a <script type="application/json"> block: every "<" is escaped so no value
    # can close the element early or open a comment.
    data = {
        "x": x,
        "xlabel": xlabel,
        "series": [{"label": k, "values": v} for k, v in series.items()],
    }
    return json.dumps(data).replace("<", "\\u003c")


@router.get("/traffic", response_class=HTMLResponse)
async def traffic_page(
    request: Request, who: Viewer, days: int = 7, door: str = ""
) -> HTMLResponse:
    r = await run_in_threadpool(traffic.report, request.app.state.office, days, door)
    hours = _chart(r["hours"], "hour of day (UTC)", r["by_hour"])
    daily = _chart(list(range(len(r["day_names"]))), "day", r["by_day"])
    return page(request, "traffic.html", title="Traffic", r=r, hours_json=hours, days_json=daily)
