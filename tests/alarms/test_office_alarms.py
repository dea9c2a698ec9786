"""Alarms at the office with a real `central serve`, a real broker and door messages in the
contract's shapes: raised from events, escalated to a webhook receiver and a local SMTP server
(aiosmtpd) after the configured delay, acknowledged (the door is told to silence its siren,
never for a duress) and cleared by operators, measured, and reported at shift handover."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from edgegate.central.alarms import AlarmService
from edgegate.central.engine import make_engine
from edgegate.central.schema.console import outbox as outbox_t
from edgegate.central.services import Actor, ensure_schema, outbox
from edgegate.contract.topics import DoorTopics
from edgegate.sim.broker import Broker
from edgegate.store.journal import rfc3339
from tests.alarms.conftest import alarm_office
from tests.alarms.receivers import MailReceiver, WebhookReceiver
from tests.central.conftest import SITE, FakeDoor, ServerThread, wait_until

pytestmark = pytest.mark.broker


def by_type(svc: AlarmService) -> dict[str, dict]:
    return {a["type"]: a for a in svc.find(open_only=False)}


def test_alarms_escalate_acknowledge_clear_and_report(
    tmp_path: Path,
    broker: Broker,
    webhook: WebhookReceiver,
    mail: MailReceiver,
    subscriber,
    capsys,
    office_db: str,
):
    central = alarm_office(
        tmp_path,
        broker,
        webhook,
        mail,
        office_db,
        door_priorities={"back": {"tailgating": "critical"}},
    )
    svc = AlarmService(make_engine(central.config.central.db), central.config.alarms, SITE)
    # A webhook registered in the console wanting escalations: queued in its outbox.
    ensure_schema(svc.engine)
    outbox.add_webhook(
        svc.engine, Actor("test", "cli"), "http://127.0.0.1:9/hook", ["alarm_escalated"]
    )
    cmds = subscriber(DoorTopics(SITE, "front").cmd)
    server = ServerThread(central)
    front, back = FakeDoor(broker, "front"), FakeDoor(broker, "back")
    try:
        front.online()
        back.online()
        now = time.time()
        ts = rfc3339(now)
        forced = front.event("door_forced", ts=ts)
        duress = front.event("duress", ts=ts, person="alice", reader="entry")
        assist = front.event(
            "assist_requested",
            ts=ts,
            kind="finger",
            reader="finger",
            failures=3,
            last_reason="no match",
        )
        fault = front.event("reader_fault", ts=rfc3339(now - 30), reader="entry", error="EIO")
        back_ok = front.event("reader_recovered", ts=rfc3339(now - 10), reader="entry")
        tail = back.event("tailgating", ts=ts)
        held = back.event("door_held_open", ts=ts)
        for door, ev in (
            (front, forced),
            (front, duress),
            (front, assist),
            (front, fault),
            (front, back_ok),
            (back, tail),
            (back, held),
        ):
            door.publish_event(ev)
        front.publish_event(forced)  # a redelivered copy raises nothing new
        alarms = wait_until(
            lambda: len(svc.find(open_only=False)) == 6 and by_type(svc), what="six alarms"
        )
        assert {t: a["priority"] for t, a in alarms.items()} == {
            "door_forced": "high",
            "duress": "critical",
            "assist_requested": "medium",
            "reader_fault": "low",
            "tailgating": "critical",  # per door: back's tailgating is critical
            "door_held_open": "medium",
        }
        assert alarms["assist_requested"]["detail"]["failures"] == 3
        assert alarms["duress"]["person"] == "alice"
        # The fault and its recovery: one fault of 20 s, and a note on the alarm.
        faults = (
            svc.engine.connect()
            .exec_driver_sql("SELECT reader, ended - started FROM reader_faults")
            .all()
        )
        assert faults == [("entry", pytest.approx(20.0, abs=0.01))]
        fault_id = alarms["reader_fault"]["id"]
        assert [h["action"] for h in svc.history(fault_id)] == ["raised", "recovered"]

        # Escalation after 0.02 min (1.2 s): high and critical ones, not medium or low. The
        # SMTP server is down at first: the webhooks go, the e-mail is retried, nothing twice.
        escalating = {alarms[t]["id"] for t in ("door_forced", "duress", "tailgating")}
        wait_until(
            lambda: {b["alarm"]["id"] for b in webhook.bodies} == escalating, what="webhooks"
        )
        wait_until(
            lambda: any(h["action"] == "escalation_failed" for h in svc.history(min(escalating))),
            what="a failed e-mail",
        )
        assert all(a["escalated"] is None for a in svc.find() if a["id"] in escalating)
        mail.start()
        wait_until(lambda: len(mail.messages) == 3, what="three e-mails")
        wait_until(lambda: all(svc.get(i)["escalated"] for i in escalating), what="escalated")
        time.sleep(0.5)  # more checks run: nothing is sent twice
        assert len(webhook.bodies) == 3 and len(mail.messages) == 3
        subjects = sorted(m["Subject"] for m in mail.messages)
        assert any("critical alarm: duress at front" in s for s in subjects)
        assert all(r == ["guard@example.org"] for r in mail.rcpt)
        # Signed: the receiver checked each POST against the configured secret.
        assert webhook.refused == []
        assert {h["X-Edgegate-Event"] for h in webhook.headers} == {"alarm_escalated"}
        body = next(b for b in webhook.bodies if b["alarm"]["type"] == "door_forced")
        assert body["type"] == "alarm_escalated" and body["minutes_unacknowledged"] >= 0.02
        assert {a["id"] for a in svc.find() if a["escalated"]} == escalating
        with svc.engine.connect() as conn:
            queued = (
                conn.execute(select(outbox_t.c.body).where(outbox_t.c.kind == "alarm_escalated"))
                .scalars()
                .all()
            )
        assert sorted(json.loads(b)["event"]["alarm"]["id"] for b in queued) == sorted(escalating)

        # Operators: acknowledge the forced door (the door is told to silence its siren) ...
        forced_id, duress_id = alarms["door_forced"]["id"], alarms["duress"]["id"]
        assert (
            central.run("alarms", "ack", str(forced_id), "--by", "op-anna", "--note", "guard sent")
            == 0
        )
        _topic, payload = cmds.get()
        signed = central.verifier.verify(payload)
        assert (signed["cmd"], signed["by"], signed["door"]) == ("silence", "op-anna", "front")
        # ... a duress is acknowledged without a word to the door.
        assert central.run("alarms", "ack", str(duress_id), "--by", "op-anna") == 0
        assert cmds.none_within(0.5)
        assert central.run("alarms", "ack", str(duress_id), "--by", "op-bob") == 1  # not new
        assert (
            central.run(
                "alarms", "clear", str(forced_id), "--by", "op-bob", "--note", "door repaired"
            )
            == 0
        )
        history = svc.history(forced_id)
        assert [(h["action"], h["operator"]) for h in history][:1] == [("raised", "")]
        assert ("acknowledged", "op-anna", "guard sent") in [
            (h["action"], h["operator"], h["note"]) for h in history
        ]
        assert ("cleared", "op-bob") in [(h["action"], h["operator"]) for h in history]
        forced_row = svc.get(forced_id)
        assert forced_row["state"] == "cleared" and forced_row["cleared_by"] == "op-bob"

        # Timeliness: per alarm and per door, as the operators did it.
        capsys.readouterr()
        assert central.run("alarms", "report", "--json") == 0
        rep = json.loads(capsys.readouterr().out)
        row = next(a for a in rep["alarms"] if a["id"] == forced_id)
        assert row["to_acknowledge"] == pytest.approx(
            forced_row["acknowledged"] - forced_row["raised"], abs=0.01
        )
        assert row["to_clear"] >= row["to_acknowledge"] > 1.0
        assert rep["per_door"]["front"]["alarms"] == 4
        assert rep["per_door"]["front"]["cleared"] == 1
        assert rep["per_door"]["back"]["escalated"] == 1

        # A door gone offline (its last will) is an alarm too.
        back.close()
        back.send = front.send  # the retained offline, as the broker's will would
        front.send(DoorTopics(SITE, "back").availability, b"offline", retain=True)
        wait_until(lambda: "door_offline" in by_type(svc), what="door_offline")

        # Handover: on screen and printable.
        page = tmp_path / "handover.html"
        capsys.readouterr()
        assert central.run("handover", "--since", "2000-01-01", "--html", str(page)) == 0
        out = capsys.readouterr().out
        assert "Open alarms (6)" in out  # forced was cleared; offline is new
        assert "Reader faults (1)" in out and "Doors offline (1)" in out
        html = page.read_text()
        assert "<h2>Assists (1)</h2>" in html and "finger tries failed: 3" in html
        assert "@media print" in html
    finally:
        server.stop()
        front.close()
