"""The erasure's rewriting rules (edgegate/central/forget.py), property-based: scrubbing a
person from the version log changes no door (the door's own applier ends in the same state
from the scrubbed log and the removal as from the original log and the removal) and leaves
nothing of them; JSON rewriting replaces whole strings only."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter
from sqlalchemy import delete

from edgegate.central import forget
from edgegate.central import store as master
from edgegate.central.schema import master as master_schema
from edgegate.contract import messages as m
from edgegate.store.db import open_db, transaction
from edgegate.sync.credentials_apply import _apply_op
from tests.strategies import card_ops

WHO = "ann"
PEOPLE = st.sampled_from([WHO, "bob", "cy"])
CARDS = st.sampled_from(["AA01", "AA02", "AA03"])
OP = TypeAdapter(m.Op)


def _person(i: str) -> st.SearchStrategy[m.PersonMsg]:
    """Named after the id when named at all, so the person's name can be looked for later."""
    return st.builds(
        lambda named, host: m.PersonMsg(
            id=i, name=f"{i.title()} Secret" if named else "", attrs={"host": host} if host else {}
        ),
        st.booleans(),
        st.one_of(st.none(), PEOPLE),
    )


OPS = card_ops(PEOPLE, CARDS, _person)


def _door_rows(conn: sqlite3.Connection, history: list[list[dict[str, Any]]]) -> tuple:
    with transaction(conn):
        conn.execute("DELETE FROM credentials")
        conn.execute("DELETE FROM people")
    with transaction(conn):
        for ops_ in history:
            for raw in ops_:
                _apply_op(conn, OP.validate_python(raw), None, 0.0)
        _apply_op(conn, m.RemovePerson(op="remove_person", id=WHO), None, 0.0)
    people = conn.execute("SELECT id, enabled FROM people ORDER BY id").fetchall()
    cards = conn.execute(
        "SELECT value, person_id, enabled FROM credentials ORDER BY value"
    ).fetchall()
    return people, cards


def test_scrubbing_the_log_changes_no_door_and_leaves_nothing_of_the_person(
    tmp_path: Path,
) -> None:
    door = open_db(tmp_path / "door.db", synchronous="NORMAL")
    office = master.open_master(tmp_path / "central.db")

    @settings(max_examples=80, deadline=None)
    @given(st.lists(OPS, max_size=20))
    def check(ops_: list[m.Op]) -> None:
        with office.begin() as conn:
            conn.execute(delete(master_schema.credentials))
            conn.execute(delete(master_schema.people))
        accepted: list[m.Op] = []
        for op in ops_:  # only what the office accepts ever becomes a version
            try:
                with office.begin() as conn:
                    master.apply_ops(conn, [op], 0.0)
            except master.CentralError:
                continue
            accepted.append(op)
        history = [
            (v, [json.loads(op.model_dump_json(exclude_defaults=True, by_alias=True))])
            for v, op in enumerate(accepted, 1)
        ]
        changed, held = forget.scrub_history(history, WHO, "erased-0")
        # The version log's texts: versions not naming her are skipped, the result is the same.
        texts = [(v, json.dumps(raw)) for v, raw in history]
        assert forget.scrub_history(texts, WHO, "erased-0") == (changed, held)
        scrubbed = [changed.get(v, raw) for v, raw in history]
        assert _door_rows(door, scrubbed) == _door_rows(door, [raw for _v, raw in history])
        text = json.dumps(scrubbed)
        assert f'"{WHO}"' not in text and "Ann Secret" not in text
        ever = {
            ("card", op.credential.value)
            for op in accepted
            if isinstance(op, m.PutCredential) and op.credential.person == WHO
        }
        assert held == ever
        # Versions nobody changed are not rewritten.
        assert all(changed[v] != raw for v, raw in history if v in changed)

    try:
        check()
    finally:
        door.close()
        office.dispose()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=4), kids, max_size=4)
    ),
    max_leaves=20,
)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


@given(JSON, st.sets(st.text(max_size=6), max_size=4))
def test_replace_strings_replaces_whole_strings_only(value: Any, gone: set[str]) -> None:
    mapping = {s: "\x00erased" for s in gone}
    out = forget.replace_strings(value, mapping)
    before, after = _strings(value), _strings(out)
    assert len(before) == len(after)
    for b, a in zip(before, after, strict=True):
        assert a == ("\x00erased" if b in gone else b)
    assert json.dumps(forget.replace_strings(value, {})) == json.dumps(value)


@given(st.one_of(st.none(), PEOPLE), st.sets(CARDS, max_size=3))
def test_credentials_are_erased_only_in_events_of_the_person_or_nobody(
    person: str | None, held: set[str]
) -> None:
    mapping = forget.event_mapping(WHO, "erased-0", held, person)
    assert mapping[WHO] == "erased-0"
    if person in (WHO, None):
        assert all(mapping[c] == forget.ERASED for c in held)
    else:
        assert set(mapping) == {WHO}


def test_pseudonyms_are_random_not_derived() -> None:
    assert len({forget.new_pseudonym() for _ in range(50)}) == 50
