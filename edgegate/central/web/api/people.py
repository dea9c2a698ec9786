from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, File, HTTPException, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from edgegate.central.services import biometrics, credentials, erasure
from edgegate.central.services.credentials import Change, ChangeRefused
from edgegate.central.web.api.models import CardIn, DisableIn, EraseIn, PersonIn, ReplaceIn
from edgegate.central.web.auth import LostCardDesk, PeopleReader, Security
from edgegate.central.web.uploads import read_photos

router = APIRouter(tags=["people and cards"])


def _result(change: Change) -> dict[str, Any]:
    return {"version": change.version, "published": change.published}


async def _do(fn, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    try:
        return _result(await run_in_threadpool(lambda: fn(*args, **kwargs)))
    except ChangeRefused as exc:
        raise HTTPException(409, str(exc)) from None


@router.get("/people", summary="Search people by id, name or credential")
async def search(
    request: Request, who: PeopleReader, q: str = "", limit: int = 100
) -> list[dict[str, Any]]:
    return await run_in_threadpool(
        credentials.search_people, request.app.state.office, q, max(1, min(limit, 1000))
    )


@router.get("/people/{person}", summary="A person and their credentials")
async def get_person(request: Request, person: str, who: PeopleReader) -> dict[str, Any]:
    detail = await run_in_threadpool(credentials.person_detail, request.app.state.office, person)
    if detail is None:
        raise HTTPException(404, f"no person {person!r}")
    return detail


@router.post("/people", summary="Add or update a person (only the fields given change)")
async def save(request: Request, body: PersonIn, who: Security) -> dict[str, Any]:
    return await _do(
        credentials.save_person,
        request.app.state.office,
        who.actor,
        body.id,
        name=body.name,
        groups=body.groups,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        cards=body.cards,
    )


@router.post("/people/{person}/cards", summary="Add a card to a person")
async def add_card(request: Request, person: str, body: CardIn, who: Security) -> dict[str, Any]:
    return await _do(
        credentials.add_card, request.app.state.office, who.actor, body.card, person, body.label
    )


@router.post("/cards/{uid}/disable", summary="Disable a (lost) card, with the reason")
async def disable(request: Request, uid: str, body: DisableIn, who: LostCardDesk) -> dict[str, Any]:
    return await _do(
        credentials.set_card_enabled, request.app.state.office, who.actor, uid, False, body.reason
    )


@router.post("/cards/{uid}/enable", summary="Enable a card again")
async def enable(request: Request, uid: str, who: Security) -> dict[str, Any]:
    return await _do(credentials.set_card_enabled, request.app.state.office, who.actor, uid, True)


@router.post("/cards/{uid}/replace", summary="Replace a card: old disabled, new added, linked")
async def replace(request: Request, uid: str, body: ReplaceIn, who: LostCardDesk) -> dict[str, Any]:
    return await _do(
        credentials.replace_card, request.app.state.office, who.actor, uid, body.new, body.reason
    )


@router.post(
    "/people/{person}/faces",
    summary="Enrol a face from photos (multipart field 'photo', one face per photo)",
)
async def enrol_face(
    request: Request, person: str, who: Security, photo: Annotated[list[UploadFile], File()]
) -> dict[str, Any]:
    """Encoded at the office, sealed, sent to every door in the next version; the photos
    are not kept. 422 with the reason when a photo is not an image, is too big, or holds no
    face or several; 404 for an unknown person."""
    photos = await read_photos(photo)
    try:
        change, value = await run_in_threadpool(
            biometrics.enrol_face, request.app.state.office, who.actor, person, photos
        )
    except biometrics.EnrolRefused as exc:
        status = (
            404 if exc.reason == "unknown_person" else 413 if exc.reason == "too_large" else 422
        )
        raise HTTPException(status, str(exc)) from None
    except ChangeRefused as exc:
        raise HTTPException(409, str(exc)) from None
    return {**_result(change), "value": value}


@router.get("/people/{person}/erasure", summary="What erasing the person would change")
async def erasure_plan(request: Request, person: str, who: Security) -> dict[str, Any]:
    try:
        plan = await run_in_threadpool(erasure.plan, request.app.state.office, person)
    except ChangeRefused as exc:
        raise HTTPException(404, str(exc)) from None
    return {**asdict(plan), "summary": plan.lines()}


@router.post(
    "/people/{person}/erase",
    summary="Erase a person's personal data (removed from the doors, anonymised everywhere)",
)
async def erase(request: Request, person: str, body: EraseIn, who: Security) -> dict[str, Any]:
    if not body.confirm:
        raise HTTPException(409, "not erased: confirm must be true")
    office = request.app.state.office
    try:
        done = await run_in_threadpool(erasure.erase, office, who.actor, person, body.reason)
    except ChangeRefused as exc:
        raise HTTPException(409, str(exc)) from None
    return {
        "pseudonym": done.pseudonym,
        "version": done.version,
        "published": done.published,
        "erased": asdict(done.plan),
    }
