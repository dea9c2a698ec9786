"""Finger enrolment at a door through the API: start it, then poll the session."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from edgegate.central.services import biometrics
from edgegate.central.web.api.models import FingerIn
from edgegate.central.web.auth import Security

router = APIRouter(tags=["people and cards"])

STATUS = {"unknown_person": 404, "wrong_door": 422, "door_offline": 409, "bad_input": 422}


@router.post(
    "/people/{person}/fingers",
    summary="Enrol a finger on a door's fingerprint sensor (the person goes to that door)",
)
async def start(request: Request, person: str, body: FingerIn, who: Security) -> dict[str, Any]:
    """Sends the door the signed ``enrol_finger`` command; follow the session with
    ``GET /enrolments/{session}`` until ``state`` is ``done`` or ``failed``."""
    try:
        session = await run_in_threadpool(
            biometrics.start_finger,
            request.app.state.office,
            who.actor,
            request.app.state.fingers,
            person,
            body.door,
            body.timeout,
        )
    except biometrics.EnrolRefused as exc:
        raise HTTPException(STATUS.get(exc.reason, 503), str(exc)) from None
    return session.as_dict()


@router.get("/enrolments/{sid}", summary="A finger enrolment: state, the door's steps, result")
async def get(request: Request, sid: str, who: Security) -> dict[str, Any]:
    for ended in request.app.state.fingers.expire():
        request.app.state.hub.publish("enrol", ended.id)
    session = request.app.state.fingers.get(sid)
    if session is None:
        raise HTTPException(404, "no such enrolment")
    return session.as_dict()
