"""Alarms in the console and the REST API, on the real app and a real office store: the
security role sees and acts, reception does not; an acknowledgement and a release are in the
alarm's history and the office's audit log; a release the broker does not take changes
nothing at the door and says so; the handover page is the printable report."""

from __future__ import annotations

import json

from sqlalchemy import select

from edgegate.central import archive
from edgegate.central.schema.console import audit_log
from edgegate.central.services import Actor, tokens
from edgegate.store.db import transaction
from edgegate.store.journal import rfc3339
from tests.console.conftest import (  # noqa: F401 (fixtures)
    _operators_db,
    app,
    client_as,
    csrf_of,
    office,
)


def archive_event(office, door: str, type_: str, ts: float, **fields) -> None:  # noqa: F811
    conn = office.master()
    n = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    ev = {"id": f"{door}-{n}", "seq": n + 1, "ts": rfc3339(ts), "type": type_, **fields}
    with transaction(conn):
        archive.archive_events(conn, "hq", door, [ev], ts)


def test_alarm_pages_and_api(office, client_as):  # noqa: F811
    import time

    now = time.time()
    archive_event(office, "front", "door_forced", now - 60)
    archive_event(
        office,
        "front",
        "assist_requested",
        now - 30,
        kind="face",
        failures=3,
        reader="camera",
        last_reason="no match",
    )
    archive_event(office, "front", "reader_fault", now - 20, reader="entry", error="EIO")
    from edgegate.central.services.alarm_desk import AlarmDesk

    AlarmDesk(office).refresh()  # what `central serve` does every few seconds

    security = client_as("security")
    page = security.get("/alarms")
    assert page.status_code == 200
    assert "door_forced" in page.text and "face tries failed: 3" in page.text
    assert client_as("reception").get("/alarms").status_code == 403
    assert client_as("reception").get("/api/v1/alarms").status_code == 403

    alarms = {a["type"]: a for a in security.get("/api/v1/alarms").json()}
    forced, assist = alarms["door_forced"], alarms["assist_requested"]
    csrf = csrf_of(page.text)
    r = security.post(
        f"/alarms/{forced['id']}/ack",
        data={"note": "on my way", "csrf": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303
    detail = security.get(f"/api/v1/alarms/{forced['id']}").json()
    assert detail["state"] == "acknowledged" and detail["acknowledged_by"] == "security"
    actions = [h["action"] for h in detail["history"]]
    # This app has no broker hook: the silence is recorded as not sent, the ack stands.
    assert actions == ["raised", "acknowledged", "silence_not_sent"]
    # Acknowledged twice: refused.
    r = security.post(f"/alarms/{forced['id']}/ack", data={"csrf": csrf})
    assert r.status_code == 409

    # The assist page shows what failed; a release the broker cannot take is refused.
    page = security.get(f"/alarms/{assist['id']}")
    assert "What failed: face tries 3" in page.text
    r = security.post(
        f"/alarms/{assist['id']}/release", data={"person": "alice", "note": "ID", "csrf": csrf}
    )
    assert r.status_code == 503
    detail = security.get(f"/api/v1/alarms/{assist['id']}").json()
    assert detail["state"] == "new" and detail["history"][-1]["action"] == "release_not_sent"

    # The API with a token: clear, then the timeliness report.
    token = tokens.create(office.engine, Actor("test", "cli"), "ops-bot", "security")
    api = client_as(None)
    api.headers["Authorization"] = f"Bearer {token}"
    r = api.post(f"/api/v1/alarms/{forced['id']}/clear", json={"note": "door shut"})
    assert r.status_code == 200 and r.json()["state"] == "cleared"
    rep = api.get("/api/v1/alarms/report").json()
    row = next(a for a in rep["alarms"] if a["id"] == forced["id"])
    assert row["to_acknowledge"] >= 59 and row["to_clear"] >= row["to_acknowledge"]
    assert api.post(f"/api/v1/alarms/{forced['id']}/clear", json={}).status_code == 409

    # The audit log names who did what.
    with office.engine.connect() as conn:
        audit = [(r.actor, r.action, r.target) for r in conn.execute(select(audit_log))]
    assert ("security", "alarm_acknowledged", str(forced["id"])) in audit
    assert ("ops-bot", "alarm_cleared", str(forced["id"])) in audit

    # Maintenance: record through the API, see it on the page with the fault.
    r = api.post(
        "/api/v1/maintenance",
        json={
            "door": "front",
            "kind": "repair",
            "findings": "reader dead",
            "action": "replaced",
            "reader": "entry",
        },
    )
    assert r.status_code == 201
    page = security.get("/maintenance").text
    assert "reader dead" in page and "entry" in page
    faults = api.get("/api/v1/maintenance/faults").json()
    assert faults["readers"][0]["reader"] == "entry" and faults["readers"][0]["open"] == 1

    # The handover: printable page and JSON.
    html = security.get("/handover?since=2000-01-01").text
    assert "@media print" in html and "Repairs and inspections (1)" in html
    rep = api.get("/api/v1/handover", params={"since": "2000-01-01"}).json()
    assert {a["id"] for a in rep["open_alarms"]} == {assist["id"], alarms["reader_fault"]["id"]}
    assert json.dumps(rep)  # JSON all the way
