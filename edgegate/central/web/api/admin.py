from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from edgegate.central.services import audit, operators, outbox, tokens
from edgegate.central.web.api.models import TokenIn, WebhookIn
from edgegate.central.web.auth import Admin

router = APIRouter(tags=["admin"])


@router.get("/operators", summary="Operators (no password hashes)")
async def list_operators(request: Request, who: Admin) -> list[dict[str, Any]]:
    return await run_in_threadpool(operators.list_all, request.app.state.office.engine)


@router.get("/tokens", summary="API tokens (never the token itself)")
async def list_tokens(request: Request, who: Admin) -> list[dict[str, Any]]:
    return await run_in_threadpool(tokens.list_all, request.app.state.office.engine)


@router.post("/tokens", summary="Create a token; the answer is the only time it is shown")
async def create_token(request: Request, body: TokenIn, who: Admin) -> dict[str, str]:
    try:
        token = await run_in_threadpool(
            tokens.create, request.app.state.office.engine, who.actor, body.name, body.role
        )
    except operators.OperatorError as exc:
        raise HTTPException(409, str(exc)) from None
    return {"name": body.name, "token": token}


@router.delete("/tokens/{name}", summary="Revoke a token")
async def revoke_token(request: Request, name: str, who: Admin) -> dict[str, str]:
    try:
        await run_in_threadpool(tokens.revoke, request.app.state.office.engine, who.actor, name)
    except operators.OperatorError as exc:
        raise HTTPException(404, str(exc)) from None
    return {"revoked": name}


@router.get("/webhooks", summary="Webhooks (never the secret)")
async def list_webhooks(request: Request, who: Admin) -> list[dict[str, Any]]:
    return await run_in_threadpool(outbox.list_webhooks, request.app.state.office.engine)


@router.post("/webhooks", summary="Register a webhook; the answer holds its secret, once")
async def add_webhook(request: Request, body: WebhookIn, who: Admin) -> dict[str, Any]:
    try:
        hook_id, secret = await run_in_threadpool(
            outbox.add_webhook,
            request.app.state.office.engine,
            who.actor,
            body.url,
            body.event_types,
        )
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    return {"id": hook_id, "secret": secret}


@router.delete("/webhooks/{hook_id}", summary="Remove a webhook")
async def remove_webhook(request: Request, hook_id: int, who: Admin) -> dict[str, int]:
    try:
        await run_in_threadpool(
            outbox.remove_webhook, request.app.state.office.engine, who.actor, hook_id
        )
    except ValueError as exc:
        raise HTTPException(404, str(exc)) from None
    return {"removed": hook_id}


@router.get("/webhooks/deliveries", summary="The delivery log, newest first")
async def deliveries(
    request: Request, who: Admin, failed_only: bool = False
) -> list[dict[str, Any]]:
    engine = request.app.state.office.engine
    return await run_in_threadpool(lambda: outbox.delivery_log(engine, failed_only=failed_only))


@router.get("/audit", summary="The audit log, newest first")
async def audit_log(
    request: Request, who: Admin, before: int | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    engine = request.app.state.office.engine
    return await run_in_threadpool(
        lambda: audit.recent(engine, limit=max(1, min(limit, 1000)), before=before)
    )


@router.get("/audit/verify", summary="Check the audit log's hash chain")
async def verify(request: Request, who: Admin) -> dict[str, Any]:
    v = await run_in_threadpool(audit.verify, request.app.state.office.engine)
    return {"ok": v.ok, "entries": v.entries, "bad_seq": v.bad_seq, "reason": v.reason}
