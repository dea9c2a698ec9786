"""People and credentials: search, add and edit people, cards (lost: disabled with a reason,
re-enabled, replaced in one step), biometric credentials, bulk CSV import with progress."""

from __future__ import annotations

import secrets
import threading
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from edgegate.central.services import biometrics, credentials, doors, erasure
from edgegate.central.services.credentials import ChangeRefused, ImportJob
from edgegate.central.web.auth import PEOPLE_READ, LostCardDesk, PeopleReader, Security
from edgegate.central.web.registry import Page, register_page
from edgegate.central.web.render import page
from edgegate.central.web.uploads import read_photos

router = APIRouter()
register_page(Page("/people", "People", PEOPLE_READ, order=30))
JOBS: dict[str, ImportJob] = {}
MAX_CSV = 50 * 1024 * 1024


def _back(person: str, flash: str, kind: str = "ok") -> RedirectResponse:
    return RedirectResponse(
        f"/people/{quote(person, safe='')}?flash={quote(flash)}&kind={kind}", status_code=303
    )


def _published(change: credentials.Change) -> str:
    if change.published is False:
        return " (saved; the doors get it when the broker is back)"
    return f" (version {change.version})"


@router.get("/people", response_class=HTMLResponse)
async def people(request: Request, who: PeopleReader, q: str = "") -> HTMLResponse:
    rows = await run_in_threadpool(credentials.search_people, request.app.state.office, q)
    return page(request, "people.html", title="People", rows=rows, q=q)


@router.get("/people/{person}", response_class=HTMLResponse)
async def person_page(request: Request, person: str, who: PeopleReader) -> Response:
    office = request.app.state.office
    detail = await run_in_threadpool(credentials.person_detail, office, person)
    if detail is None:
        return page(request, "message.html", 404, title="Not found", text=f"No person {person!r}.")
    board = await run_in_threadpool(doors.board, office)
    return page(
        request,
        "person.html",
        title=person,
        board=board,
        flash=request.query_params.get("flash"),
        flash_kind="error" if request.query_params.get("kind") == "error" else "ok",
        **detail,
    )


@router.post("/people")
async def save_person(
    request: Request,
    who: Security,
    person: Annotated[str, Form(max_length=128)],
    name: Annotated[str, Form(max_length=200)] = "",
    groups: Annotated[str, Form(max_length=1000)] = "",
    card: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    office = request.app.state.office
    group_list = [g for g in groups.replace(";", ",").replace(" ", ",").split(",") if g]
    try:
        change = await run_in_threadpool(
            lambda: credentials.save_person(
                office,
                who.actor,
                person.strip(),
                name=name.strip() or None,
                groups=group_list or None,
                cards=[card] if card.strip() else [],
            )
        )
    except ChangeRefused as exc:
        return _back(person, str(exc), "error")
    return _back(person, "saved" + _published(change))


@router.post("/people/{person}/cards")
async def add_card(
    request: Request,
    person: str,
    who: Security,
    card: Annotated[str, Form(max_length=64)],
    label: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    try:
        change = await run_in_threadpool(
            credentials.add_card, request.app.state.office, who.actor, card, person, label
        )
    except ChangeRefused as exc:
        return _back(person, str(exc), "error")
    return _back(person, f"card {card} added" + _published(change))


@router.post("/people/{person}/faces")
async def enrol_face(
    request: Request, person: str, who: Security, photo: Annotated[list[UploadFile], File()]
) -> Response:
    """Photos uploaded or taken with the browser's camera: encoded here, sealed, sent."""
    photos = await read_photos(photo)
    try:
        change, value = await run_in_threadpool(
            biometrics.enrol_face, request.app.state.office, who.actor, person, photos
        )
    except ChangeRefused as exc:
        return _back(person, f"face not enrolled: {exc}", "error")
    return _back(person, f"face {value} enrolled" + _published(change))


@router.post("/cards/{uid}/disable")
async def disable_card(
    request: Request,
    uid: str,
    who: LostCardDesk,
    person: Annotated[str, Form(max_length=128)],
    reason: Annotated[str, Form(max_length=500)] = "lost",
) -> Response:
    try:
        change = await run_in_threadpool(
            credentials.set_card_enabled,
            request.app.state.office,
            who.actor,
            uid,
            False,
            reason or "lost",
        )
    except ChangeRefused as exc:
        return _back(person, str(exc), "error")
    return _back(person, f"card {uid} disabled" + _published(change))


@router.post("/cards/{uid}/enable")
async def enable_card(
    request: Request, uid: str, who: Security, person: Annotated[str, Form(max_length=128)]
) -> Response:
    try:
        change = await run_in_threadpool(
            credentials.set_card_enabled, request.app.state.office, who.actor, uid, True
        )
    except ChangeRefused as exc:
        return _back(person, str(exc), "error")
    return _back(person, f"card {uid} enabled again" + _published(change))


@router.post("/cards/{uid}/replace")
async def replace_card(
    request: Request,
    uid: str,
    who: LostCardDesk,
    person: Annotated[str, Form(max_length=128)],
    new: Annotated[str, Form(max_length=64)],
    reason: Annotated[str, Form(max_length=500)] = "lost",
) -> Response:
    try:
        change = await run_in_threadpool(
            credentials.replace_card,
            request.app.state.office,
            who.actor,
            uid,
            new,
            reason or "lost",
        )
    except ChangeRefused as exc:
        return _back(person, str(exc), "error")
    return _back(person, f"card {uid} replaced by {new}" + _published(change))


@router.get("/people/{person}/erase", response_class=HTMLResponse)
async def erase_confirm(request: Request, person: str, who: Security) -> Response:
    """The confirm step: what the office holds about the person, a reason, a checkbox."""
    try:
        plan = await run_in_threadpool(erasure.plan, request.app.state.office, person)
    except ChangeRefused as exc:
        return page(request, "message.html", 404, title="Not found", text=str(exc))
    return page(request, "erase.html", title=f"Erase {plan.person}", plan=plan)


@router.post("/people/{person}/erase")
async def erase(
    request: Request,
    person: str,
    who: Security,
    reason: Annotated[str, Form(max_length=500)] = "",
    confirm: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    office = request.app.state.office
    if confirm != "yes" or not reason.strip():
        text = "Not erased: tick the confirmation and give the reason."
        return page(request, "message.html", 400, title="Erase", text=text)
    try:
        done = await run_in_threadpool(erasure.erase, office, who.actor, person, reason)
    except ChangeRefused as exc:
        return page(request, "message.html", 409, title="Erase", text=str(exc))
    sent = "" if done.published is not False else " The doors get it when the broker is back."
    text = (
        f"{done.plan.person} was erased: removed from every door, named {done.pseudonym} in "
        f"the archive ({done.plan.events} events), audited.{sent}"
    )
    return page(request, "message.html", title="Erased", text=text)


@router.post("/people/import")
async def import_csv(
    request: Request, who: Security, file: Annotated[UploadFile, File()]
) -> Response:
    data = await file.read(MAX_CSV + 1)
    if len(data) > MAX_CSV:
        return page(request, "message.html", 413, title="Too big", text="At most 50 MB.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return page(request, "message.html", 400, title="Import", text="Not UTF-8 text.")
    job_id = secrets.token_urlsafe(12)
    job = JOBS[job_id] = ImportJob()
    office = request.app.state.office
    threading.Thread(
        target=credentials.run_import,
        args=(office, who.actor, file.filename or "upload.csv", text, job),
        name="import",
        daemon=True,
    ).start()
    return page(request, "import.html", title="Import", job=job_id)


@router.get("/people/import/{job_id}")
async def import_progress(request: Request, job_id: str, who: Security) -> Response:
    job = JOBS.get(job_id)
    if job is None:
        return JSONResponse({"detail": "no such import"}, 404)
    return JSONResponse(
        {
            "total": job.total,
            "done": job.done,
            "finished": job.finished,
            "ok": job.ok,
            "message": job.message,
            "errors": job.errors or [],
        }
    )
