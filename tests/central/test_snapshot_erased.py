"""Property tests of a snapshot's ``erased`` (docs/mqtt.md, snapshot): the door's parser
takes a list of person ids of at most ``ERASED_PER_CHUNK`` and refuses anything else; the
office spreads any list over the chunks so that the door's union is that list, and leaves the
key out of a chunk without any (a door older than the field refuses only such snapshots)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from edgegate.central.snapshot import Chunk, MasterSet, snapshot_messages
from edgegate.contract import messages as m

ID_RE = re.compile(r"^[A-Za-z0-9_.@:-]{1,128}$")
ids = st.from_regex(ID_RE, fullmatch=True)


def _chunk(**over: Any) -> dict[str, Any]:
    return {"type": "snapshot", "site": "hq", "door": "front", "snapshot": "s1", "version": 3,
            "chunk": 0, "chunks": 1, "issued": "2026-12-02T22:00:00Z", "people": [],
            "credentials": [], **over}  # fmt: skip


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=140),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(value=json_values | st.lists(ids, max_size=20) | st.lists(st.text(max_size=140)))
def test_erased_is_a_list_of_ids_or_the_chunk_is_refused(value: Any) -> None:
    try:
        chunk = m.SnapshotChunk.model_validate(_chunk(erased=value))
    except ValidationError:
        ok = (
            isinstance(value, list)
            and len(value) <= m.ERASED_PER_CHUNK
            and all(isinstance(v, str) and ID_RE.match(v) and "\n" not in v for v in value)
        )
        assert not ok, f"refused a valid list {value!r}"
        return
    assert isinstance(value, list) and chunk.erased == value
    assert all(ID_RE.fullmatch(v) for v in chunk.erased)


def test_erased_defaults_to_none_and_is_bounded() -> None:
    assert m.SnapshotChunk.model_validate(_chunk()).erased == []
    many = [f"p{i}" for i in range(m.ERASED_PER_CHUNK + 1)]
    with pytest.raises(ValidationError):
        m.SnapshotChunk.model_validate(_chunk(erased=many))


def _master(n_chunks: int) -> MasterSet:
    return MasterSet(7, [Chunk([{"id": f"p{i}", "name": ""}], []) for i in range(n_chunks)])


@settings(max_examples=100, deadline=None)
@given(erased=st.lists(ids, unique=True, max_size=30), n_chunks=st.integers(1, 4))
def test_the_office_spreads_any_erasures_over_the_chunks(erased: list[str], n_chunks: int) -> None:
    messages = snapshot_messages(_master(n_chunks), "hq", "front", erased=sorted(erased))
    parsed = [m.SnapshotChunk.model_validate(msg) for msg in messages]
    assert len(parsed) == n_chunks  # a short list never adds a chunk
    assert [c.erased for c in parsed if c.erased] == ([sorted(erased)] if erased else [])
    assert all(("erased" in msg) == bool(msg.get("erased")) for msg in messages)
    assert {c.snapshot for c in parsed} == {parsed[0].snapshot}


def test_more_erasures_than_one_chunk_holds_add_chunks() -> None:
    per = m.ERASED_PER_CHUNK
    erased = [f"p{i:06d}" for i in range(2 * per + 1)]
    messages = snapshot_messages(_master(1), "hq", "front", erased=erased)
    parsed = [m.SnapshotChunk.model_validate(msg) for msg in messages]
    assert [len(c.erased) for c in parsed] == [per, per, 1]
    assert [c.chunks for c in parsed] == [3, 3, 3] and [c.chunk for c in parsed] == [0, 1, 2]
    assert [c.erased for c in parsed] == [erased[:per], erased[per : 2 * per], erased[-1:]]
    assert [len(c.people) for c in parsed] == [1, 0, 0]
