from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from edgegate.central.services.muster import DEFAULT_HOURS
from edgegate.central.web.auth import Viewer
from edgegate.central.web.pages.muster import muster_of

router = APIRouter(tags=["muster"])


@router.get("/muster", summary="Who is inside each area now (the evacuation roll call)")
async def get_muster(
    request: Request,
    who: Viewer,
    area: str | None = Query(None, max_length=64),
    hours: float = Query(DEFAULT_HOURS, gt=0, le=24 * 31),
) -> dict[str, Any]:
    return await run_in_threadpool(muster_of, request, area, hours)
