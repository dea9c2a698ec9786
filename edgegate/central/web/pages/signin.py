"""Sign in and out. The sign-in form has no session yet, so its CSRF check is a double-submit
cookie (``eg_pre``: the form must echo it); after that the session's own token is used."""

from __future__ import annotations

import asyncio
import hmac
import secrets

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from edgegate.central.services import operators
from edgegate.central.web.auth import SESSION_COOKIE, Viewer
from edgegate.central.web.render import page

router = APIRouter()
PRE_COOKIE = "eg_pre"


def _secure(request: Request) -> bool:
    # https directly (TLS configured) or through a trusted proxy (uvicorn's proxy headers).
    return request.url.scheme == "https"


def _safe_next(target: str) -> str:
    # Only a path on this office: never an absolute URL (open redirect).
    return target if target.startswith("/") and not target.startswith("//") else "/"


def _form(request: Request, error: str = "", status: int = 200, nxt: str = "/") -> Response:
    pre = secrets.token_urlsafe(24)
    resp = page(request, "signin.html", status, pre=pre, error=error, next=_safe_next(nxt))
    resp.set_cookie(
        PRE_COOKIE, pre, httponly=True, samesite="strict", secure=_secure(request), max_age=3600
    )
    return resp


@router.get("/signin", response_class=HTMLResponse)
async def signin_form(request: Request, next: str = "/") -> Response:
    return _form(request, nxt=next)


@router.post("/signin")
async def signin(
    request: Request,
    username: str = Form(..., max_length=200),
    password: str = Form(..., max_length=1000),
    csrf: str = Form(""),
    next: str = Form("/"),
) -> Response:
    pre = request.cookies.get(PRE_COOKIE, "")
    if not pre or not hmac.compare_digest(pre, csrf):
        return _form(request, "The form expired; please try again.", 403, next)
    office = request.app.state.office
    result = await run_in_threadpool(operators.authenticate, office.engine, username, password)
    if not result.ok:
        # Slower with every failure of the account (throttling); locked after LOCK_AFTER.
        await asyncio.sleep(operators.delay(result.failures))
        msg = (
            "Too many failed sign-ins: this account is locked for a while."
            if result.locked_until
            else "Wrong user name or password."
        )
        return _form(request, msg, 401, next)
    token, _csrf = await run_in_threadpool(
        lambda: operators.start_session(
            office.engine, result.operator, seconds=request.app.state.session_seconds
        )
    )
    resp = RedirectResponse(_safe_next(next), status_code=303)
    resp.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        max_age=int(request.app.state.session_seconds),
    )
    resp.delete_cookie(PRE_COOKIE)
    return resp


@router.post("/signout")
async def signout(request: Request, who: Viewer) -> Response:
    office = request.app.state.office
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await run_in_threadpool(operators.end_session, office.engine, token)
    resp = RedirectResponse("/signin", status_code=303)
    resp.delete_cookie(SESSION_COOKIE)
    return resp
