"""Erasing a person reaches every other place the office keeps their data
(edgegate/central/services/erasure_sweep.py), on SQLite and PostgreSQL: free text naming
them (an alarm note, a lost card's reason, a visit's reason, maintenance notes, a door's
responsible), a door's offer of its local people, queued notifications and the audit log
(redacted, the chain still verifies because the erasure's entry lists the redacted entries).
The preview counts each before anything changes; rows that do not name them stay as they
were."""

from __future__ import annotations

import json
import re
import time

import pytest
from sqlalchemy import insert, select

from edgegate.central.schema.alarms import alarm_history, alarms, equipment, maintenance_log
from edgegate.central.schema.console import audit_log, outbox
from edgegate.central.schema.local_people import local_offers
from edgegate.central.schema.master import commands
from edgegate.central.schema.visitors import visits
from edgegate.central.services import Actor, audit, credentials, erasure, open_office, visitors
from edgegate.central.services import outbox as outbox_service
from edgegate.central.services.visitors import NewVisit
from tests.central.conftest import Central

pytestmark = pytest.mark.broker

CARD, CARL_CARD = "0F00BC614E", "00AA11BB22"
NAME = "Alice Martin"
ME = Actor("cli:test", "cli")


def _names_her(text: str) -> bool:
    return re.search(r"(?<!\w)(alice|martin|0F00BC614E)(?!\w)", text, re.IGNORECASE) is not None


def test_erasure_covers_free_text_offers_notifications_and_the_audit_log(
    central: Central,
) -> None:
    assert central.run("people", "add", "alice", "--name", NAME, "--card", CARD) == 0
    assert central.run("people", "add", "carl", "--name", "Carl Kept", "--card", CARL_CARD) == 0
    office = open_office(central.config)
    credentials.set_card_enabled(office, ME, CARD, False, "Alice lost it at the gym")
    credentials.set_card_enabled(office, ME, CARL_CARD, False, "Carl left it in a taxi")
    now = time.time()
    desk = visitors.desk_of_office(office)
    hosted, _ = desk.book(
        NewVisit("Vera Visitor", "alice", now, now + 3600, ("lobby",), reason="budget with Alice"),
        "desk",
    )
    other, _ = desk.book(
        NewVisit("Otto", "carl", now, now + 3600, ("lobby",), reason="Annual audit"), "desk"
    )
    kept_body = json.dumps({"type": "access_granted", "person": "carl"})
    outbox_service.enqueue(office.engine, "webhook", "1", "access_granted", kept_body)
    outbox_service.enqueue(
        office.engine, "webhook", "1", "access_granted",
        json.dumps({"type": "access_granted", "person": "alice", "credential": CARD}),
    )  # fmt: skip
    with central.db().begin() as conn:
        for i, who in enumerate(("alice", "carl")):
            conn.execute(
                insert(alarms).values(id=10 + i, site="hq", door="front", type="assist",
                                      priority="high", state="new", raised=now,
                                      event_id=f"e{i}", person=who, detail={})
            )  # fmt: skip
        conn.execute(
            insert(alarm_history),
            [
                {"alarm_id": 10, "ts": now, "action": "note", "operator": "desk",
                 "note": "she says the reader beeped twice; Alice called back"},
                {"alarm_id": 11, "ts": now, "action": "note", "operator": "desk",
                 "note": "Alicea from facilities checked it"},
            ],
        )  # fmt: skip
        conn.execute(
            insert(maintenance_log),
            [
                {"site": "hq", "door": "front", "kind": "repair", "ts": now, "operator": "t",
                 "findings": "reader loose, reported by Alice Martin", "action": "tightened"},
                {"site": "hq", "door": "front", "kind": "inspection", "ts": now,
                 "operator": "t", "findings": "fine", "action": ""},
            ],
        )  # fmt: skip
        conn.execute(
            insert(equipment).values(site="hq", door="front", name="Front", location="",
                                     reader_models=[], responsible="alice martin", updated=now)
        )  # fmt: skip
        conn.execute(
            insert(local_offers).values(
                site="hq", door="lab", received=now, total=3, status="pending",
                people=json.dumps([{"id": "l1", "name": NAME}, {"id": "l2", "name": "Lou"}]),
                credentials=json.dumps([
                    {"kind": "card", "value": "11", "person": "l1"},
                    {"kind": "card", "value": "22", "person": "l2"},
                ]),
            )
        )  # fmt: skip
    with central.db().begin() as conn:
        conn.execute(
            insert(commands).values(id="c1", door="front", cmd="unlock", issued=now,
                                    message=json.dumps({"args": {"note": "for ALICE MARTIN"}}))
        )  # fmt: skip
        # Her id as a whole string and her name in a note: one command, rewritten once.
        conn.execute(
            insert(commands).values(
                id="c2", door="front", cmd="staff_release", issued=now,
                message=json.dumps({"args": {"person": "alice", "note": "Alice Martin waits"}}),
            )
        )  # fmt: skip
    with central.db().connect() as conn:
        before_audit = {r.seq: r for r in conn.execute(select(audit_log))}
    assert audit.verify(office.engine).ok

    plan = erasure.plan(office, "alice")
    assert plan.elsewhere == {
        "alarm notes": 1,
        "visit texts": 1,
        "maintenance notes": 1,
        "doors' responsible": 1,
        "offers of local people": 1,
        "notifications": 1,
        # every entry naming her, by target or inside its detail
        "audit entries": sum(1 for r in before_audit.values() if _names_her(r.target + r.detail)),
    }
    assert plan.elsewhere["audit entries"] >= 2  # person_added alice, card_disabled CARD
    assert "alarm notes naming them: 1" in plan.lines()
    assert plan.commands == 2  # each command once, whether by id, by name or both

    done = erasure.erase(office, ME, "alice", "asked by Alice Martin in writing")
    p = done.pseudonym
    # The preview counted exactly what the erasure changed (one survey, in its transaction).
    assert done.plan == plan
    with central.db().connect() as conn:
        entry = conn.execute(select(audit_log.c.detail).order_by(audit_log.c.seq.desc())).first()
    counts = json.loads(entry.detail)
    expected = {"events": plan.events, "alarms": plan.alarms, "commands": plan.commands,
                "hosted_visits": plan.hosted_visits,
                **{re.sub(r"\W+", "_", k).strip("_"): n for k, n in plan.elsewhere.items()
                   if k != "audit entries"}}  # fmt: skip
    assert {k: counts[k] for k in expected} == expected
    assert len(counts["redacted"]) == plan.elsewhere["audit entries"]
    with central.db().connect() as conn:
        notes = dict(conn.execute(select(alarm_history.c.alarm_id, alarm_history.c.note)).all())
        assert notes == {
            10: f"she says the reader beeped twice; {p} called back",
            11: "Alicea from facilities checked it",  # another word: untouched
        }
        texts = dict(conn.execute(select(visits.c.id, visits.c.reason)).all())
        assert texts == {hosted: f"budget with {p}", other: "Annual audit"}
        findings = sorted(conn.execute(select(maintenance_log.c.findings)).scalars())
        assert findings == ["fine", f"reader loose, reported by {p}"]
        assert conn.execute(select(equipment.c.responsible)).scalar_one() == p
        messages = dict(conn.execute(select(commands.c.id, commands.c.message)).all())
        assert json.loads(messages["c1"]) == {"args": {"note": f"for {p}"}}
        assert json.loads(messages["c2"]) == {"args": {"person": p, "note": f"{p} waits"}}
        offer = conn.execute(select(local_offers)).one()
        assert json.loads(offer.people) == [{"id": "l2", "name": "Lou"}]
        assert json.loads(offer.credentials) == [{"kind": "card", "value": "22", "person": "l2"}]
        assert offer.total == 2
        bodies = sorted(conn.execute(select(outbox.c.body)).scalars())
        assert kept_body in bodies
        assert not [b for b in bodies if _names_her(b)]
        after_audit = {r.seq: r for r in conn.execute(select(audit_log))}
    # The audit log: no entry names her; only those that did changed; the links did not.
    assert not [r for r in after_audit.values() if _names_her(r.target + r.detail)]
    redacted = {s for s, r in before_audit.items() if _names_her(r.target + r.detail)}
    for seq, row in before_audit.items():
        now_row = after_audit[seq]
        assert (now_row.hash, now_row.prev_hash) == (row.hash, row.prev_hash)
        if seq not in redacted:
            assert now_row == row
    assert next(r for r in after_audit.values() if r.target == CARL_CARD).detail == (
        json.dumps({"reason": "Carl left it in a taxi", "version": 4}, separators=(",", ":"))
    )
    entry = max(after_audit.values(), key=lambda r: r.seq)
    detail = json.loads(entry.detail)
    assert sorted(detail["redacted"]) == sorted(redacted)
    assert detail["reason"] == f"asked by {p} in writing"
    verdict = audit.verify(office.engine)
    assert verdict.ok and verdict.redacted == len(redacted)

    # Tampering stays visible: an entry changed without an erasure listing it breaks the chain.
    with central.db().begin() as conn:
        first = min(s for s in after_audit if s not in redacted)
        conn.execute(audit_log.update().where(audit_log.c.seq == first).values(target="x"))
    assert not audit.verify(office.engine).ok
    office.close()
