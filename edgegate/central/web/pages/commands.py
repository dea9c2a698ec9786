"""Commands to one door or all, with a confirmation for the dangerous ones (emergency,
lockdown, every door) and each command's acknowledgement from the door(s)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from edgegate.central.services import commands, doors
from edgegate.central.web.auth import ALL, Security, Viewer
from edgegate.central.web.registry import Page, register_page
from edgegate.central.web.render import page

router = APIRouter()
register_page(Page("/commands", "Commands", ALL, order=40))


async def _page(request: Request, status: int = 200, **ctx: object) -> HTMLResponse:
    office = request.app.state.office
    board = await run_in_threadpool(doors.board, office)
    recent = await run_in_threadpool(commands.recent, office)
    return page(
        request,
        "commands.html",
        status,
        title="Commands",
        doors=board["doors"],
        recent=recent,
        names=commands.COMMANDS,
        dangerous=sorted(commands.DANGEROUS),
        **ctx,
    )


@router.get("/commands", response_class=HTMLResponse)
async def commands_page(request: Request, who: Viewer) -> HTMLResponse:
    return await _page(request)


@router.get("/commands/recent", response_class=HTMLResponse)
async def recent_rows(request: Request, who: Viewer) -> HTMLResponse:
    recent = await run_in_threadpool(commands.recent, request.app.state.office)
    return page(request, "_commands_rows.html", recent=recent)


@router.post("/commands")
async def send(
    request: Request,
    who: Security,
    door: Annotated[str, Form(max_length=64)],
    cmd: Annotated[str, Form(max_length=32)],
    confirm: Annotated[str, Form(max_length=8)] = "",
    seconds: Annotated[float | None, Form()] = None,
    person: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    if commands.needs_confirmation(door, cmd) and confirm != "yes":
        return await _page(
            request, 409, flash=f"'{cmd}' to {door} needs a confirmation.", flash_kind="error"
        )
    try:
        message = await run_in_threadpool(
            lambda: commands.send(
                request.app.state.office,
                who.actor,
                door,
                cmd,
                seconds=seconds,
                person=person or None,
            )
        )
    except Exception as exc:  # refused, or the broker did not take it
        return await _page(request, 400, flash=f"not sent: {exc}", flash_kind="error")
    return await _page(request, flash=f"sent {cmd} to {door} (id {message['id'][:8]})")
