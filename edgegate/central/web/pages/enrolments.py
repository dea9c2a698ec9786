"""Finger enrolment at a door, from the person's page: start it, then follow the door's steps
live (server-sent events: place the finger, lift, again, done or failed)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from edgegate.central.services import biometrics
from edgegate.central.services.biometrics import FingerSessions
from edgegate.central.web.auth import Security
from edgegate.central.web.render import page, templates
from edgegate.central.web.sse import sse_frame, sse_response

router = APIRouter()
# The page also re-renders this often without a step, so an abandoned session ends visibly.
TICK_SECONDS = 2.0


def _sessions(request: Request) -> FingerSessions:
    return request.app.state.fingers


@router.post("/people/{person}/fingers")
async def start(
    request: Request,
    person: str,
    who: Security,
    door: Annotated[str, Form(max_length=64)],
    timeout: Annotated[float, Form(ge=5, le=300)] = 60.0,
) -> Response:
    try:
        session = await run_in_threadpool(
            biometrics.start_finger,
            request.app.state.office,
            who.actor,
            _sessions(request),
            person,
            door,
            timeout,
        )
    except biometrics.ChangeRefused as exc:
        flash = quote(f"finger not enrolled: {exc}")
        return RedirectResponse(
            f"/people/{quote(person, safe='')}?flash={flash}&kind=error", status_code=303
        )
    return RedirectResponse(f"/enrolments/{session.id}", status_code=303)


@router.get("/enrolments/{sid}", response_class=HTMLResponse)
async def session_page(request: Request, sid: str, who: Security) -> HTMLResponse:
    session = _sessions(request).get(sid)
    if session is None:
        return page(request, "message.html", 404, title="Not found", text="No such enrolment.")
    return page(request, "enrolment.html", title="Finger enrolment", s=session.as_dict())


@router.get("/live/enrolments/{sid}")
async def live(request: Request, sid: str, who: Security) -> StreamingResponse:
    sessions, hub = _sessions(request), request.app.state.hub

    async def stream() -> AsyncIterator[str]:
        sub = hub.subscribe("enrol")
        try:
            while True:
                for ended in sessions.expire():
                    hub.publish("enrol", ended.id)
                session = sessions.get(sid)
                if session is None:
                    return
                html = templates.get_template("_enrol_steps.html").render(s=session.as_dict())
                yield sse_frame("progress", html)
                if session.finished:
                    # Kept open (idle) rather than closed: a closed stream makes the browser
                    # reconnect and fetch the same final state again and again.
                    while True:
                        await asyncio.sleep(60)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(sub.queue.get(), TICK_SECONDS)
        finally:
            hub.unsubscribe(sub)

    return sse_response(stream())
