from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from edgegate.central.services import doors
from edgegate.central.web.auth import Viewer

router = APIRouter(tags=["doors"])


@router.get("/doors", summary="Every door: availability, state, health, credential lag")
async def list_doors(request: Request, who: Viewer) -> dict[str, Any]:
    return await run_in_threadpool(doors.board, request.app.state.office)
