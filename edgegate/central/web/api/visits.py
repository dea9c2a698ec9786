"""``/api/v1/visits...``: the visitors service (edgegate/central/services/visitors.py) over
REST, the same operations as the reception pages and ``edgegate central visits``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from edgegate.central.services.visitors import (
    CATEGORIES,
    NewVisit,
    Outcome,
    VisitDesk,
    VisitError,
    audited,
    change_as,
    desk_of_office,
)
from edgegate.central.web.auth import PEOPLE_READ, SECURITY, Principal, guard

router = APIRouter(tags=["visitors"])
Reception = guard(*PEOPLE_READ)  # admin, security, reception
Approver = guard(*SECURITY)


class VisitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    visitor_name: str = Field(min_length=1, max_length=200)
    host: str = Field(min_length=1, max_length=128)
    expected_arrival: float = Field(description="UNIX seconds")
    expected_departure: float = Field(description="UNIX seconds")
    zones: list[str] = Field(default_factory=list, max_length=16)
    category: str = Field("ordinary", description=f"one of {', '.join(CATEGORIES)}")
    company: str = Field("", max_length=200)
    reason: str = Field("", max_length=2000)
    department: str = Field("", max_length=200)
    contact: str | None = Field(None, max_length=200)


class IssueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(description="qr or card")
    single: bool = Field(False, description="qr: single entry")
    card: str | None = Field(None, description="card: this pool card; none: the first free")


class ZoneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    zone: str = Field(min_length=1, max_length=40)


async def _call(request: Request, fn: Callable[[VisitDesk], Any]) -> Any:
    office = request.app.state.office

    def run() -> Any:
        desk = desk_of_office(office)
        return fn(desk)

    try:
        return await run_in_threadpool(run)
    except VisitError as exc:
        raise HTTPException(409, str(exc)) from None


async def _change(
    request: Request, who: Principal, action: str, target: str, fn: Callable[[VisitDesk], Outcome]
) -> dict[str, Any]:
    office = request.app.state.office
    try:
        out = await run_in_threadpool(change_as, office, who.actor, action, target, fn)
    except VisitError as exc:
        raise HTTPException(409, str(exc)) from None
    return {"versions": out.versions, "pass": out.pass_id, "token": out.token}


@router.get("/visits", summary="Visits of a day (default today) and those on site")
async def day(request: Request, who: Principal = Reception, date: str = "") -> list[dict]:
    start = datetime.fromisoformat(date) if date else datetime.now()
    start = start.replace(hour=0, minute=0, second=0, microsecond=0)
    end = start + timedelta(days=1)
    return await _call(request, lambda d: d.day(start.timestamp(), end.timestamp()))


@router.post("/visits", summary="Book or register a visit; the host is sent a one-time link")
async def book(request: Request, body: VisitIn, who: Principal = Reception) -> dict[str, Any]:
    office = request.app.state.office
    visit = NewVisit(**{**body.model_dump(), "zones": tuple(body.zones)})

    def run() -> str:
        visit_id, out = desk_of_office(office).book(visit, who.name)
        audited(office, who.actor, "visit_booked", visit_id, out, host=visit.host)
        return visit_id

    try:
        return {"visit": await run_in_threadpool(run)}
    except VisitError as exc:
        raise HTTPException(409, str(exc)) from None


@router.get("/visits/on-site", summary="Visitors on site now (overdue flagged)")
async def on_site(request: Request, who: Principal = Reception) -> list[dict]:
    return await _call(request, lambda d: d.on_site())


@router.get("/visits/unreturned", summary="Cards not returned after their visit's window")
async def unreturned(request: Request, who: Principal = Reception) -> list[dict]:
    return await _call(request, lambda d: d.unreturned_cards())


@router.get("/visits/{visit}", summary="A visit, its approvals, passes and register")
async def get_visit(request: Request, visit: str, who: Principal = Reception) -> dict:
    return await _call(request, lambda d: {**d.get(visit), "register": d.register(visit)})


@router.post("/visits/{visit}/confirm", summary="Confirm for the host")
async def confirm(request: Request, visit: str, who: Principal = Reception) -> dict[str, Any]:
    def fn(d: VisitDesk) -> Outcome:
        d.decide(visit, True, who.name)
        return Outcome()

    return await _change(request, who, "visit_confirmed", visit, fn)


@router.post("/visits/{visit}/decline", summary="Decline for the host")
async def decline(request: Request, visit: str, who: Principal = Reception) -> dict[str, Any]:
    def fn(d: VisitDesk) -> Outcome:
        d.decide(visit, False, who.name)
        return Outcome()

    return await _change(request, who, "visit_declined", visit, fn)


@router.post("/visits/{visit}/zones", summary="Approve a zone beyond the visit's")
async def approve(
    request: Request, visit: str, body: ZoneIn, who: Principal = Approver
) -> dict[str, Any]:
    # The role is the signed-in operator's, checked here and again by the service.
    return await _change(
        request,
        who,
        "visit_zone_approved",
        visit,
        lambda d: d.approve_zone(visit, body.zone, who.name, who.role),
    )


@router.post("/visits/{visit}/passes", summary="Issue a QR pass or a pool card")
async def issue(
    request: Request, visit: str, body: IssueIn, who: Principal = Reception
) -> dict[str, Any]:
    if body.kind not in ("qr", "card"):
        raise HTTPException(422, "kind is qr or card")

    def fn(d: VisitDesk) -> Outcome:
        if body.kind == "qr":
            return d.issue_qr(visit, who.name, single=body.single)
        return d.issue_card(visit, who.name, body.card)

    return await _change(request, who, "visit_pass_issued", visit, fn)


@router.post("/visits/{visit}/sign-off", summary="Sign the visit off (releases the exit hold)")
async def sign_off(request: Request, visit: str, who: Principal = Reception) -> dict[str, Any]:
    return await _change(
        request, who, "visit_signed_off", visit, lambda d: d.sign_off(visit, who.name)
    )


@router.post("/passes/{pass_id}/revoke", summary="Revoke a pass at every door")
async def revoke(request: Request, pass_id: str, who: Principal = Reception) -> dict[str, Any]:
    return await _change(
        request, who, "visit_pass_revoked", pass_id, lambda d: d.revoke(pass_id, who.name)
    )


@router.post("/passes/{pass_id}/returned", summary="Reception has the pass back")
async def returned(request: Request, pass_id: str, who: Principal = Reception) -> dict[str, Any]:
    return await _change(
        request, who, "visit_pass_returned", pass_id, lambda d: d.returned(pass_id, who.name)
    )
