"""Admin: webhooks (URL and event types; the signing secret shown once) and the delivery log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from edgegate.central.services import outbox
from edgegate.central.web.auth import ADMIN, Admin
from edgegate.central.web.registry import Page, register_page
from edgegate.central.web.render import page

router = APIRouter()
register_page(Page("/webhooks", "Webhooks", ADMIN, order=90))


async def _page(request: Request, status: int = 200, **ctx: object) -> HTMLResponse:
    engine = request.app.state.office.engine
    hooks = await run_in_threadpool(outbox.list_webhooks, engine)
    log = await run_in_threadpool(lambda: outbox.delivery_log(engine, limit=100))
    return page(request, "webhooks.html", status, title="Webhooks", hooks=hooks, log=log, **ctx)


@router.get("/webhooks", response_class=HTMLResponse)
async def webhooks_page(request: Request, who: Admin) -> HTMLResponse:
    return await _page(request)


@router.post("/webhooks")
async def add(
    request: Request,
    who: Admin,
    url: Annotated[str, Form(max_length=2048)],
    types: Annotated[str, Form(max_length=2000)] = "*",
) -> Response:
    engine = request.app.state.office.engine
    try:
        hook_id, secret = await run_in_threadpool(
            outbox.add_webhook, engine, who.actor, url.strip(), types.replace(",", " ").split()
        )
    except ValueError as exc:
        return await _page(request, 400, flash=str(exc), flash_kind="error")
    return await _page(request, new_secret=secret, new_id=hook_id)


@router.post("/webhooks/{hook_id}/remove")
async def remove(request: Request, hook_id: int, who: Admin) -> Response:
    try:
        await run_in_threadpool(
            outbox.remove_webhook, request.app.state.office.engine, who.actor, hook_id
        )
    except ValueError as exc:
        return await _page(request, 404, flash=str(exc), flash_kind="error")
    return await _page(request, flash=f"webhook {hook_id} removed")
