from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from edgegate.central.services import commands
from edgegate.central.web.api.models import CommandIn
from edgegate.central.web.auth import Security, Viewer

router = APIRouter(tags=["commands"])


@router.post("/commands", summary="Send a signed command; dangerous ones need confirm=true")
async def send(request: Request, body: CommandIn, who: Security) -> dict[str, Any]:
    if commands.needs_confirmation(body.door, body.cmd) and not body.confirm:
        raise HTTPException(409, f"'{body.cmd}' to {body.door} needs confirm=true")
    try:
        message = await run_in_threadpool(
            lambda: commands.send(
                request.app.state.office,
                who.actor,
                body.door,
                body.cmd,
                seconds=body.seconds,
                person=body.person,
            )
        )
    except commands.CommandRefused as exc:
        raise HTTPException(400, str(exc)) from None
    except Exception as exc:  # the broker did not take it
        raise HTTPException(503, f"not sent: {exc}") from None
    return {"id": message["id"], "expires": message["expires"]}


@router.get("/commands", summary="Recent commands with the doors' acknowledgements")
async def recent(request: Request, who: Viewer) -> list[dict[str, Any]]:
    return await run_in_threadpool(commands.recent, request.app.state.office)
