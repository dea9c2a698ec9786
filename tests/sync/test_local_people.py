"""A door joining an office keeps the people enrolled at it until the office says otherwise:
the office's empty first snapshot is refused (journaled, in telemetry and `central doors`),
the door offers its people, an operator reviews and imports them, and the door then takes the
office's set, which now holds them (docs/central.md, local people)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegate.central import inbound
from edgegate.central import store as master_store
from edgegate.central.local_people import IMPORTED, PENDING, LocalOffers
from edgegate.cli.central_local import plan_import
from edgegate.config import load as load_config
from edgegate.contract import messages as m
from edgegate.doctor.local import check_store
from edgegate.sim.broker import Broker
from edgegate.sim.rdm6300 import Rdm6300Simulator
from edgegate.store.db import open_db, transaction
from tests.conftest import enrol
from tests.sync.office import Office, door_config, start_door, wait_for

WHERE = inbound.Inbound("test", "d1", "credentials/local")


def offer(people: list[tuple[str, str]]) -> m.LocalPeople:
    return m.LocalPeople(
        type="local_people",
        site="test",
        door="d1",
        total=len(people),
        people=[m.PersonMsg(id=p, name=p.title()) for p, _ in people],
        credentials=[m.CredentialMsg(kind="card", value=c, person=p) for p, c in people],
    )


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.dictionaries(
            st.sampled_from(["type", "site", "door", "total", "people", "credentials", "x"]),
            st.one_of(st.none(), st.integers(), st.text(max_size=8), st.lists(st.integers())),
        ).map(lambda d: json.dumps(d).encode()),
    )
)
def test_a_bad_offer_is_a_bad_message_never_a_crash(payload: bytes):
    try:
        inbound.parse_local_people(payload, WHERE)
    except inbound.BadMessage as exc:
        assert exc.reason in ("malformed", "too_large", "wrong_door")


def test_an_offer_with_a_template_or_for_another_door_is_refused():
    good = offer([("ann", "0A0B0C0D0E")]).model_dump(mode="json")
    finger = {**good, "credentials": [{"kind": "finger", "value": "1", "person": "ann"}]}
    with pytest.raises(inbound.BadMessage, match="malformed"):
        inbound.parse_local_people(json.dumps(finger).encode(), WHERE)
    other = {**good, "door": "d2"}
    with pytest.raises(inbound.BadMessage, match="wrong_door"):
        inbound.parse_local_people(json.dumps(other).encode(), WHERE)


def test_review_never_overwrites_the_master(tmp_path: Path):
    conn = master_store.open_master(tmp_path / "c.db")
    bob = m.PersonMsg(id="bob", name="Bob of the office")
    carol = m.PersonMsg(id="carol", name="Carol")
    card = m.CredentialMsg(kind="card", value="0000000C01", person="carol")
    with transaction(conn):
        master_store.commit_ops(
            conn,
            [
                m.PutPerson(op="put_person", person=bob),
                m.PutPerson(op="put_person", person=carol),
                m.PutCredential(op="put_credential", credential=card),
            ],
        )
    offers = LocalOffers.open(tmp_path / "c.db")
    offers.record(offer([("ann", "0A0B0C0D0E"), ("bob", "0B0B0B0B0B"), ("dan", "0000000C01")]), 1)
    got = offers.get("test", "d1")
    assert got is not None and got.status == PENDING
    plan = plan_import(conn, got, None)
    assert [p.id for p in plan.people] == ["ann", "dan"]
    assert [c.value for c in plan.cards] == ["0A0B0C0D0E"]
    assert plan.skipped == [
        ("person bob", "already in the master"),
        ("card 0000000C01", "belongs to carol in the master"),
    ]
    assert [p.id for p in plan_import(conn, got, ["dan"]).people] == ["dan"]
    # Decided offers stay decided when the door offers again before its snapshot arrives.
    offers.decide("test", "d1", IMPORTED, "op")
    assert not offers.record(offer([("ann", "0A0B0C0D0E")]), 2)
    assert offers.replace_allowed("test", "d1") and not offers.replace_allowed("test", "d2")
    offers.close()


def door_figures(db: Path) -> tuple[int, int, list[str]]:
    """(people, credential version, event types) of the door's store."""
    conn = open_db(db, readonly=True, check=False)
    try:
        people = conn.execute("SELECT COUNT(*) FROM people").fetchone()[0]
        row = conn.execute("SELECT value FROM meta WHERE key = 'credentials_version'").fetchone()
        types = [r[0] for r in conn.execute("SELECT type FROM events ORDER BY seq")]
        return people, int(row[0]) if row else 0, types
    finally:
        conn.close()


@pytest.mark.broker
@pytest.mark.timeout(120)
def test_a_joining_door_keeps_its_people_until_an_operator_imports_them(
    tmp_path: Path, broker: Broker, subprocess_env, capsys
):
    office = Office(tmp_path, broker, subprocess_env)
    sim = Rdm6300Simulator()
    cfg = door_config(tmp_path, sim.port, broker, office.public_key)
    db = tmp_path / "door.db"
    enrol(db, "ann", "0A0B0C0D0E")
    enrol(db, "ben", "0B0C0D0E0F")
    office.start()
    office.wait_subscribed()
    door = start_door(cfg, subprocess_env)
    try:
        # The office's first snapshot (an empty master at version 0) is refused, once.
        wait_for(lambda: "credentials_snapshot_refused" in door_figures(db)[2], 40, "the refusal")
        offers = LocalOffers.open(office.db)
        wait_for(lambda: offers.get("test", "d1"), 20, "the offer at the office")

        def shown() -> dict | None:
            capsys.readouterr()
            assert office.cli("doors", "--json") == 0
            doors = json.loads(capsys.readouterr().out)["doors"]
            state = doors[0]["local_people"] if doors else None
            return state if state and state["held"] and state["offer"] == PENDING else None

        state = wait_for(shown, 20, "central doors showing the held people")
        assert state["people"] == 2 and state["held"]["version"] == 0
        assert office.cli("doors") == 0
        assert "d1: keeps 2 people enrolled at the door" in capsys.readouterr().out
        people, version, types = door_figures(db)
        assert (people, version) == (2, 0)
        said = [c for c in check_store(load_config(cfg)) if c.part == "local people"]
        assert said and "import-local" in said[0].message
        # Review, then import.
        assert office.cli("doors", "import-local", "d1") == 0
        review = capsys.readouterr().out
        assert "import ann" in review and "import ben" in review and "0A0B0C0D0E" in review
        assert office.cli("doors", "import-local", "d1", "--accept", "--by", "tech") == 0
        assert "imported 2 people from d1" in capsys.readouterr().out
        # The door asks (sync command), gets a snapshot with replace_local and takes it: its
        # people are now the office's, the same two.
        wait_for(
            lambda: "credentials_snapshot" in door_figures(db)[2], 40, "the office's set taken"
        )
        people, version, types = door_figures(db)
        assert people == 2 and version >= 1
        assert types.count("credentials_snapshot_refused") == 1
        assert {p["id"] for p in master_store.list_people(master_store.open_master(office.db))} == {
            "ann",
            "ben",
        }
        offer_now = offers.get("test", "d1")
        assert offer_now is not None and offer_now.status == IMPORTED
        offers.close()
        time.sleep(0.1)
    finally:
        door.terminate()
        door.wait(15)
        office.stop()
        sim.close()
