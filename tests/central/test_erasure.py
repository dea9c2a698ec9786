"""Erasing a person on request (docs/central.md, "Erasing a person"), on SQLite and
PostgreSQL: `central people erase` removes them from the master and from the version log,
anonymises the archive, alarms, commands and visits, and writes one audit entry naming only a
pseudonym. The doors' side (they forget the person) is tests/integration/test_erase_door.py."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import insert, select

from edgegate.central import archive, erasure_ledger, store
from edgegate.central.schema.alarms import alarms
from edgegate.central.schema.archive import events
from edgegate.central.schema.console import audit_log
from edgegate.central.schema.master import commands, versions
from edgegate.central.schema.visitors import host_contacts, visits
from edgegate.central.services import Actor, audit, erasure, open_office, visitors
from edgegate.central.services.visitors import NewVisit
from edgegate.central.snapshot import erased_since
from edgegate.contract import messages as m
from edgegate.contract.topics import DoorTopics
from edgegate.sim.broker import Broker
from tests.central.conftest import SITE, Central, FakeDoor, ServerThread, Subscriber
from tests.central.test_central_serve import request_snapshot

pytestmark = pytest.mark.broker

CARD, BOB_CARD = "0F00BC614E", "00AA11BB22"
NAME = "Alice Erasable"


def _event(seq: int, type_: str, **fields: object) -> dict:
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(1_780_000_000 + seq)) + "Z"
    return {"id": f"front-{seq}", "seq": seq, "ts": ts, "site": "hq", "door": "front",
            "type": type_, **fields}  # fmt: skip


def test_erase_removes_and_anonymises_everywhere(central: Central, capsys) -> None:
    assert central.run("people", "add", "alice", "--name", NAME, "--card", CARD) == 0
    assert central.run("people", "add", "bob", "--name", "Bob Kept", "--card", BOB_CARD) == 0
    assert central.run("cards", "disable", CARD) == 0  # an op on her card alone
    assert central.run("cards", "enable", CARD) == 0
    office = open_office(central.config)
    desk = visitors.desk_of_office(office)
    now = time.time()
    hosted, _ = desk.book(NewVisit("Vera Visitor", "alice", now, now + 3600, ("lobby",)), "desk")
    desk.decide(hosted, True, by="host alice (link)")
    desk.issue_qr(hosted, "desk")  # the visit's door person names alice as its host
    desk.set_host_email("alice", "alice@example.org")
    made, _ = desk.book(NewVisit(NAME.upper(), "bob", now, now + 3600, ("lobby",)), "desk")
    evs = [
        _event(1, "access_granted", kind="card", credential=CARD, person="alice"),
        _event(2, "access_denied", kind="card", credential=CARD, person=None, reason="unknown"),
        _event(3, "access_granted", kind="card", credential=BOB_CARD, person="bob"),
        _event(4, "staff_release", staff="alice", person="bob", source="console"),
    ]
    with central.db().begin() as conn:
        archive.archive_events(conn, "hq", "front", evs, now)
        conn.execute(
            insert(alarms).values(site="hq", door="front", type="duress", priority="critical",
                                  state="new", raised=now, event_id="front-1", person="alice",
                                  detail=evs[0])
        )  # fmt: skip
        # Raised on the denial of her card (naming nobody): it is hers too, and counted so.
        conn.execute(
            insert(alarms).values(site="hq", door="front", type="lost_card_used",
                                  priority="high", state="new", raised=now,
                                  event_id="front-2", person=None, detail=evs[1])
        )  # fmt: skip
        conn.execute(
            insert(commands).values(id="c1", door="front", cmd="staff_release", issued=now,
                                    message=json.dumps({"args": {"person": "alice"}}))
        )  # fmt: skip

    # Without --yes: what the office holds, and nothing changes.
    capsys.readouterr()
    assert central.run("people", "erase", NAME.lower()) == 1
    out = capsys.readouterr().out
    assert "person alice: in the master" in out and "credentials: 1 card" in out
    assert "archived events naming them: 3" in out and f"visits they made: 1 ({made})" in out
    assert "alarms naming them: 2" in out
    assert central.q(store.get_person, "alice") is not None
    assert central.run("people", "erase", "alice", "--yes") == 2  # no reason

    assert central.run("people", "erase", "alice", "--yes", "--reason", "request 2026-12") == 0
    out = capsys.readouterr().out
    pseudonym = out.split("now ")[1].split(" ")[0]
    assert pseudonym.startswith("erased-") and "alice" not in pseudonym

    # The master and the version log: nothing of her but the removal itself.
    assert central.q(store.get_person, "alice") is None
    with central.db().connect() as conn:
        log = conn.execute(select(versions.c.version, versions.c.ops, versions.c.n_ops)).all()
    removal = max(v for v, _ops, _n in log)
    for version, ops_text, n_ops in log:
        assert NAME not in ops_text and CARD not in ops_text
        assert len(json.loads(ops_text)) == n_ops
        if version != removal:
            assert '"alice"' not in ops_text
    assert {"op": "remove_person", "id": "alice", "erase": True} in json.loads(
        next(t for v, t, _n in log if v == removal)
    )
    assert "Bob Kept" in "".join(t for _v, t, _n in log)  # others' history stays
    assert central.q(store.unpublished_count) == 0  # published to the broker

    # The archive: every event stays (door, time, type, result); she is the pseudonym.
    kept = {e["id"]: e for e in central.q(archive.query_events)}
    assert set(kept) == {e["id"] for e in evs}
    for before in evs:
        after = kept[before["id"]]
        assert {k: after[k] for k in ("door", "ts", "type", "seq")} == {
            k: before[k] for k in ("door", "ts", "type", "seq")
        }
    assert kept["front-1"]["person"] == pseudonym and kept["front-1"]["credential"] == "erased"
    assert kept["front-2"]["credential"] == "erased" and kept["front-2"]["reason"] == "unknown"
    assert {k: v for k, v in kept["front-3"].items() if k != "n"} == evs[2]  # bob: untouched
    assert kept["front-4"]["staff"] == pseudonym and kept["front-4"]["person"] == "bob"
    with central.db().connect() as conn:
        cols = conn.execute(select(events.c.person, events.c.credential)).all()
        assert ("alice", CARD) not in cols and all(c != CARD for _p, c in cols)
        alarm, denial = conn.execute(
            select(alarms.c.person, alarms.c.detail).order_by(alarms.c.id)
        ).all()
        assert alarm.person == pseudonym and alarm.detail["credential"] == "erased"
        assert denial.person is None and denial.detail["credential"] == "erased"
        message = conn.execute(select(commands.c.message)).scalar_one()
        assert json.loads(message)["args"]["person"] == pseudonym
        rows = {r.id: r for r in conn.execute(select(visits))}
        assert rows[hosted].host == pseudonym
        assert rows[hosted].decided_by == f"host {pseudonym} (link)"
        assert rows[hosted].visitor_name == "Vera Visitor"  # the visitor's own data is theirs
        assert rows[made].visitor_name == visitors.ANONYMISED
        assert conn.execute(select(host_contacts)).all() == []
        entry = conn.execute(select(audit_log).order_by(audit_log.c.seq.desc())).first()
    # The hosted visitor's door person names the pseudonym as host.
    assert central.q(store.get_person, hosted).attrs["host"] == pseudonym

    # One audit entry: who, when, why, by pseudonym only; the chain is intact.
    assert entry.action == "person_erased" and entry.target == pseudonym
    assert entry.actor.startswith("cli:") and abs(entry.ts - time.time()) < 60
    detail = json.loads(entry.detail)
    assert detail["reason"] == "request 2026-12" and detail["events"] == 3
    assert "alice" not in entry.detail and NAME not in entry.detail
    assert audit.verify(office.engine).ok

    # Erasing again: she is unknown now (nothing names her id any more).
    assert central.run("people", "erase", "alice", "--yes", "--reason", "again") == 1
    office.close()


def test_a_snapshot_names_the_people_erased_since_the_doors_version(
    central: Central, broker: Broker, serving: ServerThread, subscriber
) -> None:
    """A door that missed the erasure's delta and catches up by snapshot is told whom to
    erase from its journal: the erasures after the version it asked with."""
    assert central.run("people", "add", "alice", "--name", NAME, "--card", CARD) == 0
    assert central.run("people", "add", "bob", "--card", BOB_CARD) == 0
    assert central.run("people", "add", "carol") == 0
    assert central.run("people", "erase", "alice", "--yes", "--reason", "request 7") == 0
    erased_at = central.q(store.current_version)
    assert central.run("people", "remove", "carol") == 0  # a removal, not an erasure
    assert central.run("people", "add", "dave") == 0
    latest = central.q(store.current_version)
    assert central.q(erased_since, 0, latest) == ["alice"]
    assert central.q(erased_since, erased_at - 1, latest) == ["alice"]
    assert central.q(erased_since, erased_at, latest) == []
    assert central.q(erased_since, 0, erased_at - 1) == []

    snaps: Subscriber = subscriber(DoorTopics(SITE, "front").snapshot)
    front = FakeDoor(broker, "front")
    request_snapshot(front, have=0)  # a new door: every erasure of the log
    chunk = m.parse_signed(central.verifier, snaps.get(10)[1], m.SnapshotChunk)
    assert (chunk.version, chunk.erased) == (latest, ["alice"])
    assert sorted(p.id for p in chunk.people) == ["bob", "dave"]
    front.close()


def test_erasing_a_person_removed_earlier_still_tells_the_doors(central: Central, capsys) -> None:
    """Removed with `people remove` (the doors dropped her credentials, their journals still
    name her), erased later: the master has nobody to remove, yet a signed version with her
    removal and ``erase`` goes out, for doors catching up by delta and (``erased_since``) by
    snapshot. Before, nothing went out, and the scrubbed log even hid the old removal from a
    door that had missed it."""
    assert central.run("people", "add", "carol", "--name", "Carol Gone", "--card", CARD) == 0
    door_had_her = central.q(store.current_version)
    assert central.run("people", "add", "bob", "--card", BOB_CARD) == 0
    assert central.run("people", "remove", "carol") == 0
    removed_at = central.q(store.current_version)
    assert central.q(store.get_person, "carol") is None

    capsys.readouterr()
    assert central.run("people", "erase", "carol") == 1  # the preview: found by the log
    out = capsys.readouterr().out
    assert "person carol: not in the master (removed earlier)" in out
    assert "rewrites them out of every door's journal" in out
    assert central.q(store.current_version) == removed_at  # the preview changed nothing

    assert central.run("people", "erase", "Carol", "--yes", "--reason", "request 9") == 1
    assert central.run("people", "erase", "carol", "--yes", "--reason", "request 9") == 0
    out = capsys.readouterr().out
    pseudonym = out.split("now ")[1].split(" ")[0]
    erased_at = central.q(store.current_version)
    assert erased_at == removed_at + 1 and f"(version {erased_at})" in out
    assert central.q(store.unpublished_count) == 0  # signed and published as every version

    # A door that had her and missed the removal catches up by delta: the erasure is there
    # (the scrub dropped her put and her plain removal from the older versions).
    missed = central.q(store.versions_after, door_had_her)
    ops = [op for v in missed for op in json.loads(v.ops_json)]
    assert ops[-1] == {"op": "remove_person", "id": "carol", "erase": True}
    assert [op for op in ops[:-1] if "carol" in json.dumps(op)] == []
    # ... or by snapshot: the erasure is named, for a door at any version before it.
    assert central.q(erased_since, door_had_her, erased_at) == ["carol"]
    assert central.q(erased_since, removed_at, erased_at) == ["carol"]

    with central.db().connect() as conn:
        entry = conn.execute(select(audit_log).order_by(audit_log.c.seq.desc())).first()
        log_text = "".join(conn.execute(select(versions.c.ops)).scalars())
    assert entry.action == "person_erased" and entry.target == pseudonym
    assert json.loads(entry.detail)["version"] == erased_at
    assert "Carol Gone" not in log_text and CARD not in log_text
    c = central.config.central
    assert pseudonym in erasure_ledger.path_for(c.db, c.erasure_ledger).read_text()
    office = open_office(central.config)
    try:
        assert audit.verify(office.engine).ok
    finally:
        office.close()
    # Only the erasure names her now: erasing again is refused, and sends nothing.
    assert central.run("people", "erase", "carol", "--yes", "--reason", "again") == 1
    assert central.q(store.current_version) == erased_at


def test_an_erasure_tells_the_live_views_of_the_alarms_and_commands_it_rewrote(
    central: Central,
) -> None:
    """The consoles' alarm and command views are told at the erasure's commit (their rows
    now name the pseudonym); an erasure that rewrote neither tells them nothing."""
    assert central.run("people", "add", "alice", "--name", NAME, "--card", CARD) == 0
    assert central.run("people", "add", "bob", "--name", "Bob Kept", "--card", BOB_CARD) == 0
    now = time.time()
    with central.db().begin() as conn:
        conn.execute(
            insert(alarms).values(site="hq", door="front", type="duress", priority="critical",
                                  state="new", raised=now, event_id="front-1", person="alice",
                                  detail={"person": "alice"})
        )  # fmt: skip
        conn.execute(
            insert(commands).values(id="c1", door="front", cmd="staff_release", issued=now,
                                    message=json.dumps({"args": {"person": "alice"}}))
        )  # fmt: skip
    office = open_office(central.config)
    told: list[str] = []
    office.changed = told.append
    try:
        erasure.erase(office, Actor("cli:test", "cli"), "alice", "her request")
        assert sorted(told) == ["alarms", "commands"]
        told.clear()
        erasure.erase(office, Actor("cli:test", "cli"), "bob", "his request")
        assert told == []
    finally:
        office.close()
