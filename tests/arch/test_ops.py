"""One op semantics for office and door (edgegate/contract/ops.py): every op of the contract
has an effect, and the door's applier does what the effect says, including the rules where
office and door differ on purpose (a missing row: refused by the office, ignored by a door)."""

from __future__ import annotations

import sqlite3
import typing
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import delete, select

from edgegate.central import store as master
from edgegate.central.schema import master as master_schema
from edgegate.contract import messages as m
from edgegate.contract import ops
from edgegate.store import credentials as creds
from edgegate.store.db import open_db, transaction
from edgegate.sync.credentials_apply import _apply_op
from tests.strategies import card_ops, plain_person

OP_TYPES = typing.get_args(typing.get_args(m.Op)[0])
IDS = st.from_regex(r"[a-z]{1,8}", fullmatch=True)
CARDS = st.from_regex(r"(?:[0-9A-F]{2}){2,5}", fullmatch=True)


def test_every_contract_op_has_an_effect() -> None:
    assert set(OP_TYPES) == set(ops._EFFECTS)


OPS = card_ops(IDS, CARDS, plain_person(IDS))


@given(OPS)
def test_effect_names_the_row_and_its_texts(op: m.Op) -> None:
    e = ops.effect(op)
    assert set(e.key) <= set(e.texts)
    if e.target is ops.Target.PERSON:
        assert len(e.key) == 1
    else:
        assert e.key[0] == "card" and len(e.key) == 2
    assert (e.enabled is not None) == (e.action is ops.Action.SET_ENABLED)


def _rows(conn: sqlite3.Connection) -> tuple[list[tuple], list[tuple]]:
    people = conn.execute("SELECT id, enabled FROM people ORDER BY id").fetchall()
    cards = conn.execute(
        "SELECT value, person_id, enabled FROM credentials ORDER BY value"
    ).fetchall()
    return people, cards


@pytest.fixture
def door(tmp_path: Path) -> sqlite3.Connection:
    return open_db(tmp_path / "door.db", synchronous="NORMAL")


@pytest.fixture
def office(tmp_path: Path):
    engine = master.open_master(tmp_path / "central.db")
    with engine.connect() as conn:
        yield conn
    engine.dispose()


def test_door_ops_are_absolute_applying_twice_is_applying_once(tmp_path: Path) -> None:
    conn = open_db(tmp_path / "d.db", synchronous="NORMAL")

    @given(st.lists(OPS, max_size=12))
    def check(ops_: list[m.Op]) -> None:
        with transaction(conn):
            conn.execute("DELETE FROM credentials")
            conn.execute("DELETE FROM people")
        applied = []
        for op in ops_:
            try:
                with transaction(conn):
                    _apply_op(conn, op, None, 0.0)
                applied.append(op)
            except creds.CredentialError:
                pass  # a credential whose owner is not there: refused on both sides
        once = _rows(conn)
        with transaction(conn):
            for op in applied:
                _apply_op(conn, op, None, 0.0)
        assert _rows(conn) == once

    check()
    conn.close()


def test_missing_row_refused_by_the_office_ignored_by_a_door(door, office) -> None:
    missing = [
        m.RemovePerson(op="remove_person", id="ghost"),
        m.SetPersonEnabled(op="set_person_enabled", id="ghost", enabled=False),
        m.SetCredentialEnabled(
            op="set_credential_enabled", kind="card", value="AABB", enabled=False
        ),
        m.RemoveCredential(op="remove_credential", kind="card", value="AABB"),
    ]
    for op in missing:
        with transaction(door):
            _apply_op(door, op, None, 0.0)  # Missing.IGNORE: nothing to do, no error
        with pytest.raises(master.CentralError), office.begin():
            master.apply_ops(office, [op], 0.0)  # Missing.REFUSE
    assert _rows(door) == ([], [])


def test_an_erasure_of_someone_no_longer_held_is_accepted_on_both_sides(door, office) -> None:
    """Removed earlier, erased later: the removal with ``erase`` must still become a version
    (the doors' journals name them), so neither side refuses it; neither changes a row."""
    op = m.RemovePerson(op="remove_person", id="ghost", erase=True)
    assert not ops.needs_row(op)
    assert ops.needs_row(m.RemovePerson(op="remove_person", id="ghost"))
    with transaction(door):
        _apply_op(door, op, None, 0.0)
    with office.begin():
        master.apply_ops(office, [op], 0.0)
    assert _rows(door) == ([], [])
    assert office.execute(select(master_schema.people)).all() == []


def test_office_and_door_reach_the_same_set_from_the_same_ops(tmp_path: Path) -> None:
    """Every op the office accepts, applied on a door, leaves the door with the office's
    people and credentials: the two appliers follow one semantics."""
    door_conn = open_db(tmp_path / "door.db", synchronous="NORMAL")
    # The office master is an SQLAlchemy engine: each op in its own transaction, rolled back
    # when the office refuses it (as the office service does).
    office = master.open_master(tmp_path / "central.db")

    def office_rows() -> tuple[list[tuple], list[tuple]]:
        with office.connect() as conn:
            people = conn.execute(
                select(master_schema.people.c.id, master_schema.people.c.enabled).order_by(
                    master_schema.people.c.id
                )
            ).all()
            c = master_schema.credentials.c
            cards = conn.execute(select(c.value, c.person_id, c.enabled).order_by(c.value)).all()
        return [(i, int(e)) for i, e in people], [(v, p, int(e)) for v, p, e in cards]

    @given(st.lists(OPS, max_size=15))
    def check(ops_: list[m.Op]) -> None:
        with transaction(door_conn):
            door_conn.execute("DELETE FROM credentials")
            door_conn.execute("DELETE FROM people")
        with office.begin() as conn:
            conn.execute(delete(master_schema.credentials))
            conn.execute(delete(master_schema.people))
        for op in ops_:
            try:
                with office.begin() as conn:
                    master.apply_ops(conn, [op], 0.0)
            except master.CentralError:
                continue  # refused by the office: never becomes a version, never reaches a door
            with transaction(door_conn):
                _apply_op(door_conn, op, None, 0.0)
        assert _rows(door_conn) == office_rows()

    try:
        check()
    finally:
        door_conn.close()
        office.dispose()
