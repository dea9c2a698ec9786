"""Erasing a person from the console (a confirm step) and the REST API: the same office
service as `central people erase`; admin and security only (reception and viewers refused)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from edgegate.central import archive, store
from edgegate.central.services import Office, audit, tokens
from tests.console.conftest import ADMIN, page_csrf
from tests.console.test_console_pages import add_people, archive_some


def test_console_erase_has_a_confirm_step_for_security_only(office: Office, client_as) -> None:  # type: ignore[no-untyped-def]
    add_people(office)
    archive_some(office, 5)
    for role in ("reception", "viewer"):
        c = client_as(role)
        assert c.get("/people/alice/erase").status_code == 403
        token = page_csrf(c, "/doors")
        r = c.post("/people/alice/erase", data={"csrf": token, "reason": "x", "confirm": "yes"})
        assert r.status_code == 403
    assert 'id="erase"' not in client_as("reception").get("/people/alice").text

    guard = client_as("security")
    assert 'id="erase"' in guard.get("/people/alice").text
    html = guard.get("/people/alice/erase").text
    assert "archived events naming them: 5" in html and "credentials: 1 card" in html
    token = page_csrf(guard, "/people/alice/erase")
    r = guard.post("/people/alice/erase", data={"csrf": token, "reason": "GDPR request 7"})
    assert r.status_code == 400 and store.get_person(office.master(), "alice") is not None
    r = guard.post(
        "/people/alice/erase", data={"csrf": token, "reason": "GDPR request 7", "confirm": "yes"}
    )
    assert r.status_code == 200 and "was erased" in r.text
    assert store.get_person(office.master(), "alice") is None
    people = {e["person"] for e in archive.query_events(office.master())}
    assert len(people) == 1 and people.pop().startswith("erased-")
    entry = audit.recent(office.engine, limit=1)[0]
    assert entry["action"] == "person_erased" and entry["via"] == "console"
    assert entry["actor"] == "security" and "alice" not in entry["detail"]


def test_api_erase_needs_confirm_and_the_role(office: Office, client_as) -> None:  # type: ignore[no-untyped-def]
    add_people(office)
    api = TestClient(client_as("admin").app)
    desk = {"Authorization": f"Bearer {tokens.create(office.engine, ADMIN, 'hr', 'reception')}"}
    sec = {"Authorization": f"Bearer {tokens.create(office.engine, ADMIN, 'soc', 'security')}"}
    body = {"reason": "request 9", "confirm": True}
    assert api.get("/api/v1/people/mallory/erasure", headers=desk).status_code == 403
    assert api.post("/api/v1/people/mallory/erase", json=body, headers=desk).status_code == 403
    plan = api.get("/api/v1/people/mallory/erasure", headers=sec).json()
    assert plan["in_master"] and plan["credentials"] == {"card": 1}
    r = api.post("/api/v1/people/mallory/erase", json={**body, "confirm": False}, headers=sec)
    assert r.status_code == 409 and store.get_person(office.master(), "mallory") is not None
    r = api.post("/api/v1/people/mallory/erase", json={"confirm": True}, headers=sec)
    assert r.status_code == 422  # no reason
    r = api.post("/api/v1/people/mallory/erase", json=body, headers=sec)
    assert r.status_code == 200, r.text
    assert r.json()["pseudonym"].startswith("erased-") and r.json()["version"] >= 1
    assert store.get_person(office.master(), "mallory") is None
    assert api.get("/api/v1/people/mallory/erasure", headers=sec).status_code == 404
    assert audit.recent(office.engine, limit=1)[0]["via"] == "api"
