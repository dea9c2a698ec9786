"""Reception's pages and /api/v1/visits on the real app and office store (docs/visitors.md):
book, the host's one-time link page (no account), zone approval by role (audited), passes."""

from __future__ import annotations

import time

from sqlalchemy import select

from edgegate.central import store
from edgegate.central.schema.visitors import visit_notices
from edgegate.central.services import audit
from edgegate.contract import messages as m
from edgegate.contract.signing import generate, load_private, private_pem
from edgegate.contract.visitor_pass import parse_pass
from edgegate.store.db import transaction
from tests.console.conftest import page_csrf


def test_reception_books_host_confirms_by_link_pass_issued(office, client_as):
    key_file = office.config.central.key_file
    key_file.write_bytes(private_pem(generate()))
    conn = office.master()
    with transaction(conn):
        store.commit_ops(conn, [m.PutPerson(op="put_person", person=m.PersonMsg(id="alice"))])
    reception = client_as("reception")
    csrf = page_csrf(reception, "/visitors")
    now = time.time()
    body = {"visitor_name": "Vera Visitor", "host": "alice", "expected_arrival": now - 60,
            "expected_departure": now + 3600, "zones": ["lobby", "workshop"]}  # fmt: skip
    r = reception.post("/api/v1/visits", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text
    visit = r.json()["visit"]
    # No pass before the host confirms.
    r = reception.post(
        f"/api/v1/visits/{visit}/passes", json={"kind": "qr"}, headers={"X-CSRF-Token": csrf}
    )
    assert r.status_code == 409 and "confirm" in r.json()["detail"]

    # The host opens the one-time link without an account; opening it changes nothing.
    with office.engine.connect() as c:
        token = c.execute(select(visit_notices.c.link)).scalar()
    anonymous = client_as(None)
    page = anonymous.get(f"/visit-link/{token}")
    assert page.status_code == 200 and "I will receive the visitor" in page.text
    assert reception.get(f"/api/v1/visits/{visit}").json()["status"] == "booked"
    done = anonymous.post(f"/visit-link/{token}", data={"action": "confirm"})
    assert done.status_code == 200 and "confirmed" in done.text
    again = anonymous.post(f"/visit-link/{token}", data={"action": "confirm"})
    assert again.status_code == 409

    # A zone beyond the visit's: reception may not approve it, security may (audited).
    r = reception.post(
        f"/api/v1/visits/{visit}/zones", json={"zone": "workshop"}, headers={"X-CSRF-Token": csrf}
    )
    assert r.status_code == 403
    security = client_as("security")
    s_csrf = page_csrf(security, "/visitors")
    r = security.post(
        f"/api/v1/visits/{visit}/zones", json={"zone": "workshop"},
        headers={"X-CSRF-Token": s_csrf},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    approvals = reception.get(f"/api/v1/visits/{visit}").json()["approvals"]
    assert [(a["zone"], a["approved_by"], a["role"]) for a in approvals] == [
        ("workshop", "security", "security")]  # fmt: skip
    actions = [e["action"] for e in audit.recent(office.engine, limit=20)]
    assert "visit_zone_approved" in actions and "visit_booked" in actions

    # The pass, from the reception page: an image of the QR code; and by the API: its token.
    r = reception.post(f"/visitors/{visit}/pass-qr", data={"csrf": csrf})
    assert r.status_code == 200 and 'src="data:image/png;base64,' in r.text
    r = reception.post(
        f"/api/v1/visits/{visit}/passes", json={"kind": "qr", "single": True},
        headers={"X-CSRF-Token": csrf},
    )  # fmt: skip
    token = parse_pass(r.json()["token"], [load_private(key_file).public_key()])
    assert token.zones == ("lobby", "workshop") and token.single and token.visit_id == visit
    listing = reception.get("/visitors")
    assert listing.status_code == 200 and "Vera Visitor" in listing.text
    # The hosts' notices are listed for reception, without the one-time link.
    assert "is booked to see you; confirm or decline: (one-time link)" in listing.text
    # Viewers do not see visitors (personal data): the page and the API refuse them.
    viewer = client_as("viewer")
    assert viewer.get("/visitors", follow_redirects=False).status_code == 403
    assert viewer.get("/api/v1/visits").status_code == 403
