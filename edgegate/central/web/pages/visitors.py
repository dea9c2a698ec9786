"""Reception's pages (docs/visitors.md): today's visitors, booking, the host's answer, passes,
who is on site, unreturned cards; and the host's one-time link page, which needs no account
(the link's token is the credential, used once)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
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
from edgegate.central.web.registry import Page, register_page
from edgegate.central.web.render import page

router = APIRouter()
register_page(Page("/visitors", "Visitors", PEOPLE_READ, order=25))
Reception = guard(*PEOPLE_READ)
Approver = guard(*SECURITY)


def _back(flash: str, kind: str = "ok") -> RedirectResponse:
    return RedirectResponse(f"/visitors?flash={quote(flash)}&kind={kind}", status_code=303)


async def _change(
    request: Request, who: Principal, action: str, target: str, fn: Any
) -> Outcome | str:
    office = request.app.state.office
    try:
        return await run_in_threadpool(change_as, office, who.actor, action, target, fn)
    except VisitError as exc:
        return str(exc)


@router.get("/visitors", response_class=HTMLResponse)
async def visitors(request: Request, who: Principal = Reception) -> HTMLResponse:
    start = datetime.now().replace(hour=0, minute=0, second=0, microsecond=0)
    end = start + timedelta(days=1)

    def read(desk: VisitDesk) -> dict[str, Any]:
        return {
            "today": desk.day(start.timestamp(), end.timestamp()),
            "on_site": desk.on_site(),
            "unreturned": desk.unreturned_cards(),
            "notices": desk.notices(limit=20),
        }

    data = await run_in_threadpool(lambda: read(desk_of_office(request.app.state.office)))
    return page(
        request,
        "visitors.html",
        title="Visitors",
        categories=CATEGORIES,
        flash=request.query_params.get("flash"),
        flash_kind="error" if request.query_params.get("kind") == "error" else "ok",
        **data,
    )


@router.post("/visitors")
async def book(
    request: Request,
    who: Principal = Reception,
    visitor: str = Form(..., max_length=200),
    company: str = Form("", max_length=200),
    category: str = Form("ordinary"),
    reason: str = Form("", max_length=2000),
    host: str = Form(..., max_length=128),
    department: str = Form("", max_length=200),
    contact: str = Form("", max_length=200),
    arrive: str = Form(...),
    depart: str = Form(...),
    zones: str = Form(""),
) -> Response:
    try:
        visit = NewVisit(
            visitor_name=visitor,
            host=host,
            expected_arrival=datetime.fromisoformat(arrive).timestamp(),
            expected_departure=datetime.fromisoformat(depart).timestamp(),
            zones=tuple(z.strip() for z in zones.split(",") if z.strip()),
            category=category,
            company=company,
            reason=reason,
            department=department,
            contact=contact or None,
        )
    except ValueError:
        return _back("arrival and departure are dates and times", "error")
    office = request.app.state.office

    def run() -> str:
        visit_id, out = desk_of_office(office).book(visit, who.name)
        audited(office, who.actor, "visit_booked", visit_id, out, host=host)
        return visit_id

    try:
        visit_id = await run_in_threadpool(run)
    except VisitError as exc:
        return _back(str(exc), "error")
    return _back(f"booked {visit_id}; the host was sent a link")


@router.post("/visitors/{visit}/zones")
async def approve(
    request: Request, visit: str, who: Principal = Approver, zone: str = Form(..., max_length=40)
) -> Response:
    out = await _change(
        request,
        who,
        "visit_zone_approved",
        visit,
        lambda d: d.approve_zone(visit, zone, who.name, who.role),
    )
    return _back(
        out if isinstance(out, str) else f"{zone} approved",
        "error" if isinstance(out, str) else "ok",
    )


@router.post("/visitors/{visit}/{action}")
async def act(request: Request, visit: str, action: str, who: Principal = Reception) -> Response:
    """confirm, decline, sign-off, pass-qr, pass-card (reception's buttons)."""
    actions = {
        "confirm": ("visit_confirmed", lambda d: (d.decide(visit, True, who.name), Outcome())[1]),
        "decline": ("visit_declined", lambda d: (d.decide(visit, False, who.name), Outcome())[1]),
        "sign-off": ("visit_signed_off", lambda d: d.sign_off(visit, who.name)),
        "pass-qr": ("visit_pass_issued", lambda d: d.issue_qr(visit, who.name)),
        "pass-card": ("visit_pass_issued", lambda d: d.issue_card(visit, who.name)),
    }
    if action not in actions:
        return _back(f"unknown action {action}", "error")
    name, fn = actions[action]
    out = await _change(request, who, name, visit, fn)
    if isinstance(out, str):
        return _back(out, "error")
    if out.token is not None:
        import segno

        image = segno.make(out.token, error="m", micro=False).png_data_uri(scale=5)
        return page(request, "visit_pass.html", title="QR pass", pass_id=out.pass_id, image=image)
    return _back(f"{action}: {visit}")


@router.post("/passes/{pass_id}/returned")
async def returned(request: Request, pass_id: str, who: Principal = Reception) -> Response:
    out = await _change(
        request, who, "visit_pass_returned", pass_id, lambda d: d.returned(pass_id, who.name)
    )
    return _back(
        out if isinstance(out, str) else f"{pass_id} returned",
        "error" if isinstance(out, str) else "ok",
    )


# --- the host's one-time link (no account) ------------------------------------------------


@router.get("/visit-link/{token}", response_class=HTMLResponse)
async def link_page(request: Request, token: str) -> HTMLResponse:
    # The page only offers the buttons; nothing changes until the host presses one (a mail
    # scanner that opens the link must not confirm the visit).
    return page(request, "visit_link.html", title="Your visitor", token=token)


@router.post("/visit-link/{token}")
async def link_use(request: Request, token: str, action: str = Form(...)) -> HTMLResponse:
    office = request.app.state.office

    def run() -> str:
        desk = desk_of_office(office)
        visit_id, out = desk.use_link(token, action)
        from edgegate.central.services import Actor

        audited(office, Actor("host link", "console", "viewer"), f"visit_link_{action}",
                visit_id, out)  # fmt: skip
        return visit_id

    try:
        visit_id = await run_in_threadpool(run)
    except VisitError as exc:
        return page(request, "message.html", 409, title="Link not valid", text=str(exc))
    done = {"confirm": "confirmed", "decline": "declined", "sign_off": "signed off"}
    return page(
        request,
        "message.html",
        title="Thank you",
        text=f"Visit {visit_id} {done.get(action, action)}.",
    )
