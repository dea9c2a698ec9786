"""Admin: operators (accounts, roles, password resets, disabling), API tokens (shown once),
and the audit log with its chain check."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from edgegate.central.services import ROLES, audit, operators, tokens
from edgegate.central.services.operators import OperatorError
from edgegate.central.web.auth import ADMIN, Admin
from edgegate.central.web.registry import Page, register_page
from edgegate.central.web.render import page

router = APIRouter()
register_page(Page("/operators", "Operators", ADMIN, order=80))
register_page(Page("/audit", "Audit log", ADMIN, order=85))


async def _operators(request: Request, status: int = 200, **ctx: object) -> HTMLResponse:
    engine = request.app.state.office.engine
    ops = await run_in_threadpool(operators.list_all, engine)
    toks = await run_in_threadpool(tokens.list_all, engine)
    return page(
        request,
        "operators.html",
        status,
        title="Operators",
        operators=ops,
        tokens=toks,
        roles=ROLES,
        **ctx,
    )


@router.get("/operators", response_class=HTMLResponse)
async def operators_page(request: Request, who: Admin) -> HTMLResponse:
    return await _operators(request)


@router.post("/operators")
async def operator_change(
    request: Request,
    who: Admin,
    action: Annotated[str, Form(max_length=16)],
    name: Annotated[str, Form(max_length=64)],
    role: Annotated[str, Form(max_length=16)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    engine = request.app.state.office.engine
    actor = who.actor
    calls = {
        "add": lambda: operators.add(engine, actor, name, role, password),
        "role": lambda: operators.set_role(engine, actor, name, role),
        "password": lambda: operators.set_password(engine, actor, name, password),
        "disable": lambda: operators.set_enabled(engine, actor, name, False),
        "enable": lambda: operators.set_enabled(engine, actor, name, True),
        "unlock": lambda: operators.unlock(engine, actor, name),
    }
    call = calls.get(action)
    if call is None:
        return await _operators(request, 400, flash=f"unknown action {action}", flash_kind="error")
    if action in ("disable", "role") and name == who.name:
        return await _operators(
            request, 400, flash="you cannot lock yourself out", flash_kind="error"
        )
    try:
        await run_in_threadpool(call)
    except OperatorError as exc:
        return await _operators(request, 400, flash=str(exc), flash_kind="error")
    return await _operators(request, flash=f"{name}: {action} done")


@router.post("/tokens")
async def token_change(
    request: Request,
    who: Admin,
    action: Annotated[str, Form(max_length=16)],
    name: Annotated[str, Form(max_length=64)],
    role: Annotated[str, Form(max_length=16)] = "viewer",
) -> Response:
    engine = request.app.state.office.engine
    try:
        if action == "create":
            token = await run_in_threadpool(tokens.create, engine, who.actor, name, role)
            return await _operators(request, new_token=token, new_token_name=name)
        await run_in_threadpool(tokens.revoke, engine, who.actor, name)
    except OperatorError as exc:
        return await _operators(request, 400, flash=str(exc), flash_kind="error")
    return await _operators(request, flash=f"token {name} revoked")


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(
    request: Request, who: Admin, before: int | None = None, actor: str = ""
) -> HTMLResponse:
    engine = request.app.state.office.engine
    rows = await run_in_threadpool(
        lambda: audit.recent(engine, limit=100, before=before, actor=actor or None)
    )
    verdict = await run_in_threadpool(audit.verify, engine)
    return page(
        request,
        "audit.html",
        title="Audit log",
        rows=rows,
        verdict=verdict,
        actor=actor,
        older=rows[-1]["seq"] if len(rows) == 100 else None,
    )
