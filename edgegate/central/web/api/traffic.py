from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from edgegate.central.services import traffic
from edgegate.central.web.auth import Viewer

router = APIRouter(tags=["traffic"])


@router.get("/traffic", summary="Entries, exits, denials per hour of day and per day")
async def report(
    request: Request, who: Viewer, days: int = Query(7, ge=1, le=366), door: str = ""
) -> dict[str, Any]:
    return await run_in_threadpool(traffic.report, request.app.state.office, days, door)
