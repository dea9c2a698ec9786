from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool

from edgegate.central.services import events
from edgegate.central.web.auth import Viewer

router = APIRouter(tags=["events"])


@router.get("/events", summary="Archived events, newest first, by keyset (`before`)")
async def search(
    request: Request,
    who: Viewer,
    door: str | None = None,
    type: str | None = None,
    person: str | None = None,
    credential: str | None = None,
    reason: str | None = None,
    since: str | None = Query(None, description="ISO 8601 (local time without a zone)"),
    until: str | None = None,
    before: int | None = Query(None, description="`next_before` of the previous page"),
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    raw = {
        "door": door,
        "type": type,
        "person": person,
        "credential": credential,
        "reason": reason,
        "since": since,
        "until": until,
    }
    try:
        filters = events.clean_filters(raw)
    except events.BadFilter as exc:
        raise HTTPException(400, str(exc)) from None
    page = await run_in_threadpool(events.search, request.app.state.office, filters, before, limit)
    return {"events": page.events, "next_before": page.next_before}
