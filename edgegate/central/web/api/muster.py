from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from edgegate.central.web.auth import Viewer
from edgegate.central.web.pages.muster import Filters, muster_of

router = APIRouter(tags=["muster"])


@router.get("/muster", summary="Who is inside each area now (the evacuation roll call)")
async def get_muster(request: Request, who: Viewer, q: Filters) -> dict[str, Any]:
    return await run_in_threadpool(muster_of, request, q)
