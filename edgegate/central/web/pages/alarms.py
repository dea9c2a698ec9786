"""Alarms, maintenance and the shift handover in the console. Every action calls the alarm
desk (``edgegate/central/services/alarm_desk.py``), as the REST API and the CLI do; alarms are
raised and escalated by ``central serve`` itself, these pages only show and act."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from datetime import datetime

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from edgegate.central import handover
from edgegate.central.alarms import AlarmError
from edgegate.central.services.alarm_desk import AlarmDesk
from edgegate.central.services.visitors import VisitDesk, VisitorsPolicy
from edgegate.central.web.auth import SECURITY, Security
from edgegate.central.web.hub import renders
from edgegate.central.web.registry import Page, register_page
from edgegate.central.web.render import page, templates
from edgegate.central.web.sse import sse_frame, sse_response

router = APIRouter()
# Alarms carry duress and who was let in: security staff and admins only.
register_page(Page("/alarms", "Alarms", SECURITY, order=15))
register_page(Page("/maintenance", "Maintenance", SECURITY, order=60))
register_page(Page("/handover", "Handover", SECURITY, order=65))
REFRESH_SECONDS = 30.0


def desk_of(request: Request) -> AlarmDesk:
    desk = getattr(request.app.state, "alarm_desk", None)
    if desk is None:
        desk = request.app.state.alarm_desk = AlarmDesk(request.app.state.office)
    return desk


def parse_local(text: str | None, default: float) -> float:
    if not text:
        return default
    try:
        return datetime.fromisoformat(text).astimezone().timestamp()
    except ValueError:
        raise HTTPException(422, f"not an ISO 8601 date or time: {text!r}") from None


@router.get("/alarms", response_class=HTMLResponse)
async def alarms_page(request: Request, who: Security, all: bool = False) -> HTMLResponse:
    desk = desk_of(request)
    rows = await run_in_threadpool(desk.alarms.find, open_only=not all, limit=500)
    since = time.time() - 7 * 86400
    report = await run_in_threadpool(desk.alarms.timeliness, since, None)
    return page(request, "alarms.html", title="Alarms", alarms=rows, show_all=all, report=report)


@router.get("/live/alarms")
async def live_alarms(request: Request, who: Security, all: bool = False) -> StreamingResponse:
    """The alarm rows again whenever an alarm was raised or escalated, by whichever instance
    holds the duties (central/live_feed.py), and every few seconds for the ages."""
    desk, hub = desk_of(request), request.app.state.hub
    rows = templates.get_template("_alarm_rows.html")

    async def stream() -> AsyncIterator[str]:
        async with aclosing(renders(hub, "alarms", REFRESH_SECONDS)) as wakes:
            async for _ in wakes:
                found = await run_in_threadpool(desk.alarms.find, open_only=not all, limit=500)
                yield sse_frame("alarms", rows.render(request=request, who=who, alarms=found))

    return sse_response(stream())


@router.get("/alarms/{alarm_id}", response_class=HTMLResponse)
async def alarm_page(request: Request, who: Security, alarm_id: int) -> HTMLResponse:
    desk = desk_of(request)
    try:
        alarm = await run_in_threadpool(desk.alarms.get, alarm_id)
    except AlarmError as exc:
        raise HTTPException(404, str(exc)) from None
    history = await run_in_threadpool(desk.alarms.history, alarm_id)
    return page(request, "alarm.html", title=f"Alarm {alarm_id}", alarm=alarm, history=history)


@router.post("/alarms/{alarm_id}/{action}")
async def alarm_action(
    request: Request,
    who: Security,
    alarm_id: int,
    action: str,
    note: str = Form("", max_length=2000),
    person: str = Form("", max_length=128),
) -> Response:
    desk = desk_of(request)
    actor = who.actor
    try:
        if action == "ack":
            await run_in_threadpool(desk.acknowledge, actor, alarm_id, note)
        elif action == "clear":
            await run_in_threadpool(desk.clear, actor, alarm_id, note)
        elif action == "release":
            await run_in_threadpool(desk.release, actor, alarm_id, person, note)
        else:
            raise HTTPException(404, f"no action {action!r}")
    except AlarmError as exc:
        raise HTTPException(409, str(exc)) from None
    except HTTPException:
        raise
    except Exception as exc:  # the broker did not take the release: say it, change nothing
        raise HTTPException(503, f"not sent: {exc}") from None
    return RedirectResponse(f"/alarms/{alarm_id}", status_code=303)


@router.get("/maintenance", response_class=HTMLResponse)
async def maintenance_page(request: Request, who: Security) -> HTMLResponse:
    m = desk_of(request).maintenance
    now = time.time()
    register = await run_in_threadpool(m.register)
    schedule = await run_in_threadpool(m.schedule, now)
    faults = await run_in_threadpool(lambda: m.fault_report(since=None, until=None, now=now))
    log = await run_in_threadpool(lambda: m.log(since=now - 90 * 86400))
    return page(
        request,
        "maintenance.html",
        title="Maintenance",
        register=register,
        schedule=schedule,
        faults=faults,
        log=list(reversed(log)),
    )


@router.post("/maintenance")
async def maintenance_add(
    request: Request,
    who: Security,
    door: str = Form(..., max_length=64),
    kind: str = Form(...),
    findings: str = Form("", max_length=4000),
    action: str = Form("", max_length=4000),
    reader: str = Form("", max_length=64),
) -> Response:
    m = desk_of(request).maintenance
    try:
        await run_in_threadpool(
            lambda: m.record(
                door,
                kind,
                who.name,
                ts=time.time(),
                findings=findings,
                action=action,
                reader=reader or None,
            )
        )
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return RedirectResponse("/maintenance", status_code=303)


@router.get("/handover", response_class=HTMLResponse)
async def handover_page(
    request: Request, who: Security, since: str | None = None, until: str | None = None
) -> HTMLResponse:
    """The printable handover page itself (print it, or save it as PDF)."""
    desk = desk_of(request)
    end = parse_local(until, time.time())
    start = parse_local(since, end - 8 * 3600)
    rep = await run_in_threadpool(
        handover.report, desk.alarms, desk.maintenance, start, end, visitors_of(request)
    )
    return HTMLResponse(handover.html(rep, request.app.state.office.config.central.site))


def visitors_of(request: Request) -> handover.OnSite:
    """Who is on site, from the visitors' register. ``on_site`` reads only the register's
    tables, so the desk's policy and key (for booking and passes) do not matter here."""
    desk = getattr(request.app.state, "visit_desk_for_handover", None)
    if desk is None:
        office = request.app.state.office
        desk = VisitDesk(office.engine, office.master(), None, VisitorsPolicy())
        request.app.state.visit_desk_for_handover = desk
    return desk.on_site
