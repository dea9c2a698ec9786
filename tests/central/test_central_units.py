"""Pure parts of the central office: inbound parsers (property tests), the master store's
versions and ops, the CSV importer, snapshot chunking. No broker."""

from __future__ import annotations

import itertools
import json
import os
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from edgegate.central import importer, inbound, store
from edgegate.central.snapshot import read_master, snapshot_messages
from edgegate.contract import messages as m
from tests.conftest import OFFICE_ENGINES

WHERE = inbound.Inbound("hq", "front", "events")
KEY = os.urandom(32)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_inbound_parsers_raise_only_bad_message(payload: bytes):
    for parse in (
        lambda p: inbound.parse_event(p, WHERE),
        lambda p: inbound.parse_snapshot_request(p, WHERE),
        inbound.parse_availability,
        inbound.json_object,
    ):
        try:
            parse(payload)
        except inbound.BadMessage as exc:
            assert exc.reason in {"malformed", "too_large", "wrong_door"}


# No NUL: PostgreSQL text cannot hold it, so the office refuses it on both engines.
no_nul = st.characters(blacklist_characters="\x00")
event_fields = st.fixed_dictionaries(
    {
        "id": st.text(no_nul, min_size=1, max_size=128),
        "seq": st.integers(0, 2**62),
        "ts": st.text(no_nul, min_size=1, max_size=64),
        "type": st.text(no_nul, min_size=1, max_size=64),
    },
    optional={"site": st.sampled_from(["hq", "other"]), "door": st.sampled_from(["front", "x"])},
)


@settings(max_examples=200, deadline=None)
@given(event_fields, st.dictionaries(st.text(max_size=10), json_values, max_size=3))
def test_a_well_formed_event_parses_back_to_itself(required: dict, extra: dict):
    ev = {**extra, **required}
    payload = json.dumps(ev).encode()
    if ev.get("site", "hq") != "hq" or ev.get("door", "front") != "front":
        with pytest.raises(inbound.BadMessage) as info:
            inbound.parse_event(payload, WHERE)
        assert info.value.reason == "wrong_door"
    else:
        assert inbound.parse_event(payload, WHERE) == ev


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["id", "ts", "type"]), st.text(max_size=10), st.text(max_size=10))
def test_an_event_field_with_nul_is_malformed(key: str, before: str, after: str):
    ev = {"id": "e1", "seq": 1, "ts": "2026-01-01T00:00:00Z", "type": "x"}
    ev[key] = before + "\x00" + after
    with pytest.raises(inbound.BadMessage) as info:
        inbound.parse_event(json.dumps(ev).encode(), WHERE)
    assert info.value.reason == "malformed"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_classify_takes_only_this_sites_door_topics(topic: str):
    try:
        where = inbound.classify(topic, "hq")
    except inbound.BadMessage as exc:
        assert exc.reason == "bad_topic"
    else:
        assert topic == f"edgegate/hq/{where.door}/{where.kind}" and where.door != "all"


def test_classify_examples():
    assert inbound.classify("edgegate/hq/front/credentials/request", "hq").kind == (
        "credentials/request"
    )
    for bad in ("edgegate/other/front/events", "edgegate/hq/front/cmd", "edgegate/hq/all/events"):
        with pytest.raises(inbound.BadMessage):
            inbound.classify(bad, "hq")


def test_telemetry_version():
    assert inbound.telemetry_version({"credential_version": 7}) == 7
    assert inbound.telemetry_version({"credential_version": True}) is None
    assert inbound.telemetry_version({"cpu": 3}) is None


# --- master store ------------------------------------------------------------------------


@pytest.fixture
def engine(office_db: str, tmp_path: Path):
    e = store.open_master(office_db, key=KEY)
    yield e
    e.dispose()


@pytest.fixture
def conn(engine):
    with engine.connect() as c:
        yield c


@contextmanager
def tx(c):
    """One transaction on a test's connection (ending what a read there began)."""
    if c.in_transaction():
        c.commit()
    with c.begin():
        yield c


@pytest.fixture(scope="module", params=OFFICE_ENGINES)
def shared_engine(request, tmp_path_factory):
    """One migrated store per engine for the property tests (migrating per example would
    be most of their time); each example runs in a transaction that is rolled back."""
    if request.param == "sqlite":
        db = str(tmp_path_factory.mktemp("units") / "central.db")
    else:
        db = request.getfixturevalue("postgres_cluster").database()
    e = store.open_master(db, key=KEY)
    yield e
    e.dispose()


def person(pid: str, **kw) -> m.PutPerson:
    return m.PutPerson(op="put_person", person=m.PersonMsg(id=pid, **kw))


def card(uid: str, pid: str, **kw) -> m.PutCredential:
    return m.PutCredential(
        op="put_credential", credential=m.CredentialMsg(kind="card", value=uid, person=pid, **kw)
    )


def test_versions_split_by_count_and_size_and_chain(conn):
    ops = [person(f"p{i}") for i in range(25)]
    with tx(conn):
        versions = store.commit_ops(conn, ops, max_ops=10)
    assert [(v.version, v.base) for v in versions] == [(1, 0), (2, 1), (3, 2)]
    msgs = [m.CredentialUpdate.model_validate(v.message("hq")) for v in versions]
    assert [len(x.ops) for x in msgs] == [10, 10, 5]
    assert [op.person.id for x in msgs for op in x.ops] == [f"p{i}" for i in range(25)]
    big = [person(f"b{i}", name="x" * 150) for i in range(20)]
    with tx(conn):
        versions = store.commit_ops(conn, big, max_ops=1000, max_bytes=1000)
    assert all(len(v.ops_json) <= 1000 + 200 for v in versions) and len(versions) >= 4
    assert versions[0].base == 3


def test_a_refused_op_rolls_back_the_whole_change(conn):
    with tx(conn):
        store.commit_ops(conn, [person("a"), card("0A", "a")])
    for bad in (
        [person("b"), card("0A", "b")],  # someone else's card
        [card("0B", "ghost")],  # no such person
        [person("c"), m.RemovePerson(op="remove_person", id="zz")],
        [
            m.SetCredentialEnabled(
                op="set_credential_enabled", kind="card", value="FF", enabled=False
            )
        ],
    ):
        with pytest.raises(store.CentralError), tx(conn):
            store.commit_ops(conn, bad)
    assert store.current_version(conn) == 1
    assert [p["id"] for p in store.list_people(conn)] == ["a"]


def test_removing_a_person_removes_their_credentials(conn):
    with tx(conn):
        store.commit_ops(conn, [person("a"), card("0A", "a"), card("0B", "a")])
        store.commit_ops(conn, [m.RemovePerson(op="remove_person", id="a")])
    assert store.list_credentials(conn) == []


def test_snapshot_chunks_keep_people_with_their_credentials(engine, conn):
    ops: list[m.Op] = []
    for i in range(50):
        ops += [person(f"p{i:02d}", name="n" * 10), card(f"{i:04X}", f"p{i:02d}")]
        ops += [card(f"{i + 1000:04X}", f"p{i:02d}", data="A" * 4000)] if i % 10 == 0 else []
    with tx(conn):
        store.commit_ops(conn, ops)
    master = read_master(engine, chunk_people=8, chunk_bytes=6000)
    msgs = [m.SnapshotChunk.model_validate(x) for x in snapshot_messages(master, "hq", "d")]
    assert all(len(x.people) <= 8 for x in msgs) and len(msgs) >= 7
    for x in msgs:
        assert {c.person for c in x.credentials} <= {p.id for p in x.people}
        assert sum(len(c.data or "") for c in x.credentials) <= 4000  # one template per chunk
    assert [p.id for x in msgs for p in x.people] == [f"p{i:02d}" for i in range(50)]
    assert len({x.snapshot for x in msgs}) == 1 and {x.chunks for x in msgs} == {len(msgs)}


def test_an_empty_master_is_one_empty_chunk(engine):
    (only,) = snapshot_messages(read_master(engine), "hq", "d")
    chunk = m.SnapshotChunk.model_validate(only)
    assert (chunk.chunks, chunk.version, chunk.people, chunk.credentials) == (1, 0, [], [])


# --- importer ----------------------------------------------------------------------------


def test_import_merges_rows_of_one_person_and_keeps_their_other_attributes(conn):
    with tx(conn):
        store.commit_ops(conn, [person("a", name="A", attrs={"host": "b", "groups": ["x"]})])
    plan = importer.plan_import(
        conn, "person,name,card,groups\na,,0A0A,staff\na,Alice,0B0B,\nn,New,,\n"
    )
    assert not plan.errors
    puts = {op.person.id: op.person for op in plan.ops if isinstance(op, m.PutPerson)}
    assert puts["a"].name == "Alice" and puts["a"].attrs == {"host": "b", "groups": ["staff"]}
    assert [op.credential.value for op in plan.ops if isinstance(op, m.PutCredential)] == [
        "0A0A",
        "0B0B",
    ]
    assert (plan.people_new, plan.people_changed, plan.cards_new) == (1, 1, 2)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_import_never_raises_on_any_text(shared_engine, text: str):
    with shared_engine.connect() as c:
        plan = importer.plan_import(c, "person,name,card,groups,valid_from,valid_until\n" + text)
    assert plan.errors or all(isinstance(op, m.PutPerson | m.PutCredential) for op in plan.ops)


def test_import_reports_impossible_dates_by_line(conn):
    plan = importer.plan_import(
        conn, "person,valid_from\na,9999-12-31T23:59:59-23:00\nb,soon\nc,2026-01-01\n"
    )
    assert [e.split(":")[0] for e in plan.errors] == ["line 2", "line 3"]


pids = st.sampled_from(["a", "b", "c"])
uids = st.sampled_from(["0A", "0B", "0C", "0D"])
ops_strategy = st.lists(
    st.one_of(
        st.builds(lambda p, n: person(p, name=n), pids, st.text(max_size=5)),
        st.builds(lambda u, p: card(u, p), uids, pids),
        st.builds(lambda p: m.RemovePerson(op="remove_person", id=p), pids),
        st.builds(
            lambda p, e: m.SetPersonEnabled(op="set_person_enabled", id=p, enabled=e),
            pids,
            st.booleans(),
        ),
        st.builds(
            lambda u, e: m.SetCredentialEnabled(
                op="set_credential_enabled", kind="card", value=u, enabled=e
            ),
            uids,
            st.booleans(),
        ),
        st.builds(lambda u: m.RemoveCredential(op="remove_credential", kind="card", value=u), uids),
    ),
    min_size=1,
    max_size=12,
)


def _tables(c) -> tuple:
    return (store.list_people(c), store.list_credentials(c), store.current_version(c))


@settings(max_examples=120, deadline=None)
@given(st.lists(ops_strategy, min_size=1, max_size=4), st.integers(1, 5))
# Found on PostgreSQL: one card twice in a change (CardinalityViolation, not a refusal).
@example([[person("b", name=""), card("0A", "b"), card("0A", "b")]], 5)
@example([[person("a"), person("b"), card("0A", "a"), card("0A", "b")]], 5)
def test_every_change_is_all_or_nothing_and_its_versions_carry_exactly_its_ops(
    shared_engine, changes, max_ops
):
    with shared_engine.connect() as c, c.begin() as outer:
        for ops in changes:
            before = _tables(c)
            try:
                with c.begin_nested():
                    versions = store.commit_ops(c, ops, max_ops=max_ops)
            except store.CentralError:
                assert _tables(c) == before  # refused: nothing applied, no version used
                continue
            msgs = [m.CredentialUpdate.model_validate(v.message("hq")) for v in versions]
            assert msgs[0].base == before[2]
            assert [(x.base + 1) for x in msgs] == [x.version for x in msgs]
            assert all(a.version == b.base for a, b in itertools.pairwise(msgs))
            assert [op for x in msgs for op in x.ops] == ops
            assert all(len(x.ops) <= max_ops for x in msgs)
        outer.rollback()


def test_committed_central_config_reference_matches_the_models():
    from edgegate.central.config import CentralConfig
    from edgegate.central.config_docs import DOC, generate
    from edgegate.config.docs import models_in

    text = generate()
    assert DOC.read_text() == text, "run: python -m edgegate.central.config_docs"
    for name, field in CentralConfig.model_fields.items():
        for model in models_in(field.annotation):
            assert f"## [{name}]" in text
            for key, sub in model.model_fields.items():
                assert sub.description, f"{model.__name__}.{key} has no description"
                assert f"| `{key}` |" in text
