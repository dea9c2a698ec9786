"""Commands to one door or all, with a confirmation for the dangerous ones (emergency,
lockdown, every door) and each command's acknowledgement from the door(s), live: the recent
commands re-render when a command is issued or sent (by any instance's console, the API or
the CLI: services/commands.py announces it) and when a door's ``command_ack`` is archived
(central/live_feed.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from edgegate.central.services import commands, doors
from edgegate.central.web.auth import ALL, Security, Viewer
from edgegate.central.web.hub import renders
from edgegate.central.web.registry import Page, register_page
from edgegate.central.web.render import page, templates
from edgegate.central.web.sse import sse_frame, sse_response

router = APIRouter()
register_page(Page("/commands", "Commands", ALL, order=40))
# The safety net only (as the alarms page's): a CLI's command on SQLite announces nothing to
# serve, yet shows with its door's acknowledgement (an archived event) or after this.
REFRESH_SECONDS = 30.0
MIN_GAP_SECONDS = 0.25  # "all doors": one acknowledgement per door, one render for the lot


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


@router.get("/live/commands")
async def live_commands(request: Request, who: Viewer) -> StreamingResponse:
    """The recent commands' rows, at once and again on every change (the module docstring)."""
    office, hub = request.app.state.office, request.app.state.hub
    rows = templates.get_template("_commands_rows.html")

    async def stream() -> AsyncIterator[str]:
        async with aclosing(renders(hub, "commands", REFRESH_SECONDS, MIN_GAP_SECONDS)) as wakes:
            async for _ in wakes:
                recent = await run_in_threadpool(commands.recent, office)
                yield sse_frame("commands", rows.render(request=request, recent=recent))

    return sse_response(stream())


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
