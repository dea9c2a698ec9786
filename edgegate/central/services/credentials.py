"""People and credentials: every change is ops committed to the master as new version(s)
(``store.commit_ops``), one audit entry, then published through the office's hook.

The CLI, the console and the API all come through here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from edgegate.central import store
from edgegate.central.services import Actor, Office, audit
from edgegate.contract import messages as m
from edgegate.errors import EdgegateError
from edgegate.store.credentials import CredentialError, normalise_card


class ChangeRefused(EdgegateError, ValueError):
    """Nothing changed: unknown person or card, a card of someone else, bad input."""


@dataclass(frozen=True, slots=True)
class Change:
    versions: list[store.Version]
    published: bool | None  # None: the caller publishes (the CLI prints as it goes)

    @property
    def version(self) -> int:
        return self.versions[-1].version


def commit(
    office: Office, actor: Actor, ops: list[m.Op], action: str, target: str, **detail: Any
) -> list[store.Version]:
    """The ops and their audit entry in one master transaction (one write lock: the
    entry commits with the change or not at all). Raises ChangeRefused."""
    try:
        with office.master().begin() as conn:
            versions = store.commit_ops(conn, ops, max_ops=office.config.central.update_max_ops)
            audit.append(conn, actor, action, target, version=versions[-1].version, **detail)
    except store.CentralError as exc:
        raise ChangeRefused(str(exc)) from None
    return versions


def apply(
    office: Office, actor: Actor, ops: list[m.Op], action: str, target: str, **detail: Any
) -> Change:
    """``commit`` then publish at once through the office's hook (``central serve``'s
    connected client): nothing else waits between the commit and the publish, so a lost card
    is on its way to the doors as soon as it is in the master."""
    versions = commit(office, actor, ops, action, target, **detail)
    published = None
    if office.publish_versions is not None:
        published = office.publish_versions(office.master())
    return Change(versions, published)


def card_uid(text: str) -> str:
    try:
        return normalise_card(text)
    except CredentialError as exc:
        raise ChangeRefused(str(exc)) from None


def person_ops(
    master: Engine,
    person: str,
    *,
    name: str | None = None,
    groups: list[str] | None = None,
    valid_from: float | None = None,
    valid_until: float | None = None,
    cards: list[str] = (),  # type: ignore[assignment]
) -> tuple[list[m.Op], bool]:
    """Ops adding or updating a person (only what is given changes); (ops, existed)."""
    with store.reading(master) as conn:
        existing = store.get_person(conn, person)
    data: dict[str, Any] = existing.model_dump() if existing else {"id": person}
    if name is not None:
        data["name"] = name
    if groups is not None:
        data["attrs"] = {**data.get("attrs", {}), "groups": groups}
    if valid_from is not None:
        data["valid_from"] = valid_from
    if valid_until is not None:
        data["valid_until"] = valid_until
    try:
        ops: list[m.Op] = [m.PutPerson(op="put_person", person=m.PersonMsg(**data))]
        for uid in cards:
            cred = m.CredentialMsg(kind="card", value=card_uid(uid), person=person)
            ops.append(m.PutCredential(op="put_credential", credential=cred))
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise ChangeRefused(f"{person}: {exc}") from None
    return ops, existing is not None


def save_person(office: Office, actor: Actor, person: str, **fields: Any) -> Change:
    ops, existed = person_ops(office.master(), person, **fields)
    return apply(office, actor, ops, "person_updated" if existed else "person_added", person)


def set_person_enabled(office: Office, actor: Actor, person: str, enabled: bool) -> Change:
    op = m.SetPersonEnabled(op="set_person_enabled", id=person, enabled=enabled)
    return apply(office, actor, [op], "person_enabled" if enabled else "person_disabled", person)


def add_card(office: Office, actor: Actor, uid: str, person: str, label: str = "") -> Change:
    uid = card_uid(uid)
    try:
        cred = m.CredentialMsg(kind="card", value=uid, person=person, label=label)
    except ValueError as exc:
        raise ChangeRefused(str(exc)) from None
    op = m.PutCredential(op="put_credential", credential=cred)
    return apply(office, actor, [op], "card_added", uid, person=person)


def set_card_enabled(
    office: Office, actor: Actor, uid: str, enabled: bool, reason: str = ""
) -> Change:
    """Disable (a lost card, with the reason) or re-enable: one op, published at once."""
    uid = card_uid(uid)
    op = m.SetCredentialEnabled(
        op="set_credential_enabled", kind="card", value=uid, enabled=enabled
    )
    action = "card_enabled" if enabled else "card_disabled"
    return apply(office, actor, [op], action, uid, reason=reason[:500])


def replace_card(office: Office, actor: Actor, old: str, new: str, reason: str = "lost") -> Change:
    """One version: the old card disabled, the new one added to the same person, the label of
    each naming the other (so the link survives in the master and on the doors)."""
    old, new = card_uid(old), card_uid(new)
    with store.reading(office.master()) as conn:
        owner = store.credential_owner(conn, "card", old)
    if owner is None:
        raise ChangeRefused(f"no card {old}")
    stamp = time.strftime("%Y-%m-%d")
    ops: list[m.Op] = [
        m.SetCredentialEnabled(op="set_credential_enabled", kind="card", value=old, enabled=False),
        m.PutCredential(
            op="put_credential",
            credential=m.CredentialMsg(
                kind="card", value=new, person=owner, label=f"replaces {old} ({stamp})"
            ),
        ),
    ]
    return apply(
        office, actor, ops, "card_replaced", old, new=new, person=owner, reason=reason[:500]
    )


def card_reasons(office: Office) -> dict[str, str]:
    """Why each disabled card was disabled: the latest audit entry of each card."""
    from edgegate.central.services.audit import reasons_for

    return reasons_for(office.engine, ("card_disabled", "card_replaced"))


# --- reading and bulk import ------------------------------------------------------------


def search_people(office: Office, q: str = "", limit: int = 100) -> list[dict[str, Any]]:
    return store.search_people(office.master(), q.strip()[:100], limit)


def person_detail(office: Office, person: str) -> dict[str, Any] | None:
    conn = office.master()
    p = store.get_person(conn, person)
    if p is None:
        return None
    creds = store.list_credentials(conn, person)
    reasons = card_reasons(office)
    for c in creds:
        c.pop("data", None)  # templates and encodings never leave the office store here
        if c["kind"] == "card" and not c["enabled"]:
            c["reason"] = reasons.get(c["value"], "")
    return {"person": p.model_dump(), "credentials": creds}


@dataclass
class ImportJob:
    """A CSV import running on a worker thread; the page polls ``done``/``total``."""

    total: int = 0
    done: int = 0
    finished: bool = False
    ok: bool = False
    message: str = "checking"
    errors: list[str] | None = None


def run_import(office: Office, actor: Actor, name: str, text: str, job: ImportJob) -> None:
    """Check the whole file (nothing imported on any error), then commit and publish."""
    from edgegate.central import importer

    def counted(rows):  # type: ignore[no-untyped-def]
        rows = list(rows)
        job.total = len(rows)
        for item in rows:
            job.done += 1
            yield item

    try:
        master = office.master()
        with store.reading(master) as conn:
            plan = importer.plan_import(conn, text, counted)
        if plan.errors:
            job.errors = plan.errors[:50]
            job.message = f"{len(plan.errors)} problem(s), nothing imported: " + "; ".join(
                plan.errors[:5]
            )
            return
        summary = (
            f"{plan.rows} rows: {plan.people_new} new people, {plan.people_changed} changed, "
            f"{plan.cards_new} new cards"
        )
        if not plan.ops:
            job.ok, job.message = True, summary + " (nothing to change)"
            return
        job.message = "saving"
        with master.begin() as conn:
            versions = store.commit_ops(
                conn, plan.ops, max_ops=office.config.central.update_max_ops
            )
            audit.append(
                conn,
                actor,
                "people_imported",
                name[:200],
                rows=plan.rows,
                ops=len(plan.ops),
                version=versions[-1].version,
            )
        published = office.publish_versions(master) if office.publish_versions else None
        job.ok = True
        job.message = summary + (
            "; published" if published else "; saved, the doors get it when the broker is back"
        )
    except Exception as exc:  # shown in the page; the log has the details
        job.message = f"import failed: {exc}"
        raise
    finally:
        job.finished = True
