"""The visitors service (edgegate/central/services/visitors.py) on a real office store: booking, the
host's answer and one-time links, zone approval, passes, the register, leaving, privacy."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edgegate.central import archive, store
from edgegate.central.engine import make_engine
from edgegate.central.services.visitors import (
    ANONYMISED,
    NewVisit,
    VisitDesk,
    VisitError,
    VisitorsPolicy,
)
from edgegate.contract import messages as m
from edgegate.contract.visitor_pass import parse_pass
from edgegate.store.db import transaction
from tests.central.conftest import make_central

T0 = 1_900_000_000.0  # a fixed "now": every time below is relative to it
H = 3600.0


@pytest.fixture
def office(tmp_path: Path):
    office = make_central(tmp_path, 1)  # no broker: the service commits, the CLI publishes
    conn = office.db()
    with transaction(conn):
        store.commit_ops(conn, [m.PutPerson(op="put_person", person=m.PersonMsg(id="alice"))])
    return office


def desk_of(office, **policy) -> VisitDesk:
    return VisitDesk(
        make_engine(office.config.central.db),
        office.db(),
        office.signer,
        VisitorsPolicy(restricted_zones=frozenset({"workshop"}), **policy),
    )


def book(desk: VisitDesk, **kw) -> tuple[str, str]:
    visit = NewVisit(
        visitor_name=kw.pop("name", "Vera Visitor"),
        host="alice",
        expected_arrival=T0,
        expected_departure=T0 + 4 * H,
        zones=kw.pop("zones", ("lobby", "workshop")),
        company="Acme",
        contact="+33 6 00 00 00 00",
        reason="audit",
        **kw,
    )
    visit_id, out = desk.book(visit, "reception", now=T0 - H)
    assert out.link
    return visit_id, out.link


def door_event(office, visit_id: str, direction: str, granted: bool = True, ts: float = T0):
    ev = {
        "id": uuid.uuid4().hex,
        "seq": 1,
        "ts": datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z"),
        "type": "access_granted" if granted else "access_denied",
        "kind": "qr",
        "person": visit_id,
        "direction": direction,
    }
    conn = office.db()
    with transaction(conn):
        archive.archive_events(conn, "hq", "front", [ev], ts)


def test_no_pass_before_the_host_confirms_and_links_are_one_time(office):
    desk = desk_of(office)
    visit_id, link = book(desk)
    with pytest.raises(VisitError, match="confirm"):
        desk.issue_qr(visit_id, "reception", now=T0)
    with pytest.raises(VisitError, match="for decide"):
        desk.use_link(link, "sign_off", now=T0 - H)
    assert desk.use_link(link, "confirm", now=T0 - H)[0] == visit_id
    with pytest.raises(VisitError, match="used"):
        desk.use_link(link, "decline", now=T0 - H)
    visit = desk.get(visit_id)
    assert visit["status"] == "confirmed" and visit["decided_by"] == "host alice (link)"
    # A declined visit gets no pass; an expired link does nothing.
    other, other_link = book(desk)
    with pytest.raises(VisitError, match="expired"):
        desk.use_link(other_link, "confirm", now=T0 + 100 * H)
    desk.decide(other, False, "alice")
    with pytest.raises(VisitError, match="declined"):
        desk.issue_card(other, "reception")
    with pytest.raises(VisitError, match="not a person"):
        desk.book(NewVisit("X", "nobody", T0, T0 + H, ()), "reception")


def test_qr_pass_zones_need_approval_beyond_the_visit(office):
    desk = desk_of(office)
    visit_id, link = book(desk)
    desk.use_link(link, "confirm", now=T0 - H)
    out = desk.issue_qr(visit_id, "reception", single=True, now=T0 - H)
    token = parse_pass(out.token, [office.signer._key.public_key()])
    assert token.zones == ("lobby",)  # the workshop is restricted: not without approval
    assert (token.not_before, token.not_after, token.single) == (int(T0), int(T0 + 4 * H), True)
    assert token.visit_id == visit_id and token.pass_id == out.pass_id
    # The doors' person of the visit: no name, the window, zones, host, exit hold.
    person = store.get_person(office.db(), visit_id)
    assert person.name == ""
    assert person.attrs == {"groups": ["visitors"], "zones": ["lobby"], "host": "alice",
                            "settled": False}  # fmt: skip
    assert store.credential_owner(office.db(), "qr", out.pass_id) == visit_id

    with pytest.raises(VisitError, match="cannot approve"):
        desk.approve_zone(visit_id, "workshop", "rita", "reception")
    desk.approve_zone(visit_id, "workshop", "sam", "security", now=T0)
    approval = desk.get(visit_id)["approvals"][0]
    assert (approval["zone"], approval["approved_by"], approval["role"]) == (
        "workshop", "sam", "security")  # fmt: skip
    assert approval["approved_at"] == T0
    assert store.get_person(office.db(), visit_id).attrs["zones"] == ["lobby", "workshop"]
    again = desk.issue_qr(visit_id, "reception", now=T0)
    assert parse_pass(again.token, [office.signer._key.public_key()]).zones == (
        "lobby", "workshop")  # fmt: skip

    desk.revoke(out.pass_id, "reception")
    revoked = [c for c in store.list_credentials(office.db(), visit_id, "qr") if not c["enabled"]]
    assert [c["value"] for c in revoked] == [out.pass_id]


def test_cards_from_the_pool_register_arrival_and_leaving(office):
    desk = desk_of(office)
    for uid in ("0A00000001", "0A00000002"):
        desk.add_pool_card(uid, "desk")
    visit_id, link = book(desk)
    desk.use_link(link, "confirm", now=T0 - H)
    first = desk.issue_card(visit_id, "reception", now=T0 - H)
    cards = store.list_credentials(office.db(), visit_id, "card")
    assert [(c["value"], c["valid_from"], c["valid_until"]) for c in cards] == [
        ("0A00000001", T0, T0 + 4 * H)]  # fmt: skip
    assert [c["out"] for c in desk.pool()] == [True, False]

    # First entry: arrival, once, with a notice to the host. Then on site; overdue later.
    door_event(office, visit_id, "in", ts=T0 + 60)
    door_event(office, visit_id, "in", ts=T0 + 120)
    out = desk.ingest(now=T0 + 130)
    assert [n["kind"] for n in out.notices] == ["arrival"]
    assert out.notices[0]["host"] == "alice" and "Vera Visitor" in out.notices[0]["text"]
    assert desk.ingest(now=T0 + 131).notices == []  # nothing new, nothing twice
    on_site = desk.on_site(now=T0 + 200)
    assert [(v["id"], v["overdue"]) for v in on_site] == [(visit_id, False)]
    assert desk.on_site(now=T0 + 5 * H)[0]["overdue"]
    # Held on exit until the host signs off (the door says settlement_required).
    door_event(office, visit_id, "out", granted=False, ts=T0 + 3 * H)
    desk.sign_off(visit_id, "alice", now=T0 + 3 * H)
    assert store.get_person(office.db(), visit_id).attrs["settled"] is True
    door_event(office, visit_id, "out", ts=T0 + 3 * H + 60)
    desk.ingest(now=T0 + 3 * H + 61)
    assert desk.on_site(now=T0 + 3 * H + 61) == []
    reg = desk.register(visit_id)
    assert [(r["direction"], r["granted"]) for r in reg] == [
        ("in", True), ("in", True), ("out", False), ("out", True)]  # fmt: skip
    assert reg[2]["reason"] == ""  # no reason in the fake event; stored as given

    # The card is not handed back: listed, and disabled by the sweep after its window.
    assert desk.unreturned_cards(now=T0 + 3 * H) == []
    assert [p["id"] for p in desk.unreturned_cards(now=T0 + 5 * H)] == [first.pass_id]
    desk.sweep(now=T0 + 5 * H)
    assert not store.list_credentials(office.db(), visit_id, "card")[0]["enabled"]
    # Handed back late: off the doors, back in the pool, off the list.
    desk.returned(first.pass_id, "reception", now=T0 + 6 * H)
    assert store.list_credentials(office.db(), visit_id, "card") == []
    assert desk.unreturned_cards(now=T0 + 6 * H) == []
    assert [c["out"] for c in desk.pool()] == [False, False]


def test_retention_export_and_erase(office):
    desk = desk_of(office, retention_days=30)
    visit_id, link = book(desk)
    desk.use_link(link, "confirm", now=T0 - H)
    desk.issue_qr(visit_id, "reception", now=T0)
    data = desk.export(desk.find("vera visitor"))
    assert data["visits"][0]["visitor_name"] == "Vera Visitor"
    assert data["visits"][0]["contact"] == "+33 6 00 00 00 00"
    desk.sweep(now=T0 + 29 * 24 * H)
    assert desk.get(visit_id)["visitor_name"] == "Vera Visitor"
    desk.sweep(now=T0 + 31 * 24 * H)
    gone = desk.get(visit_id)
    assert (gone["visitor_name"], gone["company"], gone["contact"]) == (ANONYMISED, "", None)
    assert store.get_person(office.db(), visit_id) is None  # off the doors too
    # Erase on request, at once.
    other, _ = book(desk, name="Otto Other")
    desk.erase(desk.find("Otto Other"), "dpo")
    assert desk.get(other)["visitor_name"] == ANONYMISED
    assert desk.find("Otto Other") == [] and desk.notices("alice")
    assert all(n["visit_id"] != other for n in desk.notices())


def test_notices_go_to_the_outbox_and_the_office_forgets_the_link(office):
    from sqlalchemy import select

    from edgegate.central.schema.console import outbox as outbox_rows
    from edgegate.central.schema.visitors import visit_notices
    from edgegate.central.services import Actor, outbox

    desk = desk_of(office)
    hook_id, _secret = outbox.add_webhook(
        desk.engine, Actor("admin", "cli"), "http://127.0.0.1:9/hook", ["visit_arrival"]
    )
    every, _ = outbox.add_webhook(
        desk.engine, Actor("admin", "cli"), "http://127.0.0.1:9/all", ["*"]
    )
    desk.set_host_email("alice", "alice@example.com")
    visit_id, link = book(desk)
    assert desk.deliver(smtp_configured=True, now=T0) == 1
    assert desk.deliver(smtp_configured=True, now=T0) == 0  # handed over once
    with desk.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(outbox_rows)).mappings()]
        assert conn.execute(select(visit_notices.c.link)).scalar() is None
    # The booking: to the webhook that wants everything, and by e-mail to the host.
    assert sorted((r["channel"], r["target"], r["kind"]) for r in rows) == [
        ("email", "alice@example.com", "visit_confirm_request"),
        ("webhook", str(every), "visit_confirm_request"),
    ]
    assert all(link in r["body"] for r in rows)
    # The arrival also goes to the webhook that asked for arrivals only.
    door_event(office, visit_id, "in", ts=T0 + 60)
    desk.ingest(now=T0 + 61)
    desk.deliver(smtp_configured=False, now=T0 + 62)
    with desk.engine.connect() as conn:
        kinds = [
            (r["channel"], r["target"])
            for r in conn.execute(
                select(outbox_rows).where(outbox_rows.c.kind == "visit_arrival")
            ).mappings()
        ]
    assert sorted(kinds) == sorted([("webhook", str(hook_id)), ("webhook", str(every))])


def test_the_cli_audits_its_visit_changes(office, capsys):
    from edgegate.central.services import audit

    assert office.run("visits", "book", "--visitor", "Cli Visitor", "--host", "alice",
                      "--arrive", "2030-01-01T09:00", "--depart", "2030-01-01T10:00",
                      "--zone", "lobby", "--json") == 0  # fmt: skip
    visit = json.JSONDecoder().raw_decode(capsys.readouterr().out)[0]["visit"]
    assert office.run("visits", "confirm", visit, "--by", "alice") == 0
    assert office.run("visits", "approve-zone", visit, "lab", "--by", "sam") == 0
    entries = audit.recent(desk_of(office).engine, limit=10)
    mine = [(e["action"], e["target"]) for e in entries if e["actor"].startswith("cli:")]
    assert ("visit_booked", visit) in mine and ("visit_confirmed", visit) in mine
    assert ("visit_zone_approved", visit) in mine
    # The office CLI publishes what it changed; without a broker it says so (exit 3).
    assert office.run("visits", "issue", visit, "--qr") == 3
    assert "not published" in capsys.readouterr().err
