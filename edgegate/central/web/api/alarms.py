"""``/api/v1/alarms``, ``/api/v1/equipment``, ``/api/v1/maintenance``, ``/api/v1/handover``:
the same alarm desk as the console's pages and the CLI (docs/alarms.md)."""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from edgegate.central import handover
from edgegate.central.alarms import AlarmError
from edgegate.central.web.auth import Security
from edgegate.central.web.pages.alarms import desk_of, parse_local, visitors_of

router = APIRouter()


class Note(BaseModel):
    note: str = Field("", max_length=2000, description="What was found or done.")


class Release(BaseModel):
    person: str = Field(min_length=1, max_length=128, description="The person verified.")
    note: str = Field("", max_length=2000, description="How the identity was checked.")


class Inspection(BaseModel):
    door: str = Field(min_length=1, max_length=64)
    kind: Literal["inspection", "repair"]
    findings: str = Field("", max_length=4000)
    action: str = Field("", max_length=4000)
    reader: str | None = Field(None, max_length=64)


@router.get("/alarms")
async def list_alarms(
    request: Request, who: Security, all: bool = False, door: str | None = None
) -> list[dict[str, Any]]:
    desk = desk_of(request)
    return await run_in_threadpool(lambda: desk.alarms.find(open_only=not all, door=door))


@router.get("/alarms/report")
async def alarms_report(
    request: Request, who: Security, since: str | None = None, until: str | None = None
) -> dict[str, Any]:
    desk = desk_of(request)
    start = parse_local(since, time.time() - 7 * 86400)
    end = parse_local(until, time.time())
    return await run_in_threadpool(desk.alarms.timeliness, start, end)


@router.get("/alarms/{alarm_id}")
async def get_alarm(request: Request, who: Security, alarm_id: int) -> dict[str, Any]:
    desk = desk_of(request)
    try:
        alarm = await run_in_threadpool(desk.alarms.get, alarm_id)
    except AlarmError as exc:
        raise HTTPException(404, str(exc)) from None
    return {**alarm, "history": await run_in_threadpool(desk.alarms.history, alarm_id)}


async def _act(fn: Any, *args: Any) -> dict[str, Any]:
    try:
        return await run_in_threadpool(fn, *args)
    except AlarmError as exc:
        raise HTTPException(409, str(exc)) from None
    except Exception as exc:  # the command did not reach the broker
        raise HTTPException(503, f"not sent: {exc}") from None


@router.post("/alarms/{alarm_id}/acknowledge")
async def acknowledge(request: Request, who: Security, alarm_id: int, body: Note) -> dict:
    return await _act(desk_of(request).acknowledge, who.actor, alarm_id, body.note)


@router.post("/alarms/{alarm_id}/clear")
async def clear(request: Request, who: Security, alarm_id: int, body: Note) -> dict:
    return await _act(desk_of(request).clear, who.actor, alarm_id, body.note)


@router.post("/alarms/{alarm_id}/release")
async def release(request: Request, who: Security, alarm_id: int, body: Release) -> dict:
    return await _act(desk_of(request).release, who.actor, alarm_id, body.person, body.note)


@router.get("/equipment")
async def equipment(request: Request, who: Security) -> list[dict[str, Any]]:
    return await run_in_threadpool(desk_of(request).maintenance.register)


@router.get("/maintenance")
async def maintenance_log(request: Request, who: Security, door: str | None = None) -> list:
    m = desk_of(request).maintenance
    return await run_in_threadpool(lambda: m.log(door=door))


@router.post("/maintenance", status_code=201)
async def record(request: Request, who: Security, body: Inspection) -> dict[str, int]:
    m = desk_of(request).maintenance
    entry = await run_in_threadpool(
        lambda: m.record(
            body.door,
            body.kind,
            who.name,
            ts=time.time(),
            findings=body.findings,
            action=body.action,
            reader=body.reader,
        )
    )
    return {"id": entry}


@router.get("/maintenance/schedule")
async def schedule(request: Request, who: Security) -> list[dict[str, Any]]:
    return await run_in_threadpool(desk_of(request).maintenance.schedule, time.time())


@router.get("/maintenance/faults")
async def faults(
    request: Request, who: Security, since: str | None = None, until: str | None = None
) -> dict[str, Any]:
    m = desk_of(request).maintenance
    start = parse_local(since, 0.0) if since else None
    end = parse_local(until, time.time()) if until else None
    return await run_in_threadpool(lambda: m.fault_report(since=start, until=end, now=time.time()))


@router.get("/handover")
async def handover_report(
    request: Request, who: Security, since: str | None = None, until: str | None = None
) -> dict[str, Any]:
    desk = desk_of(request)
    end = parse_local(until, time.time())
    start = parse_local(since, end - 8 * 3600)
    return await run_in_threadpool(
        handover.report, desk.alarms, desk.maintenance, start, end, visitors_of(request)
    )
