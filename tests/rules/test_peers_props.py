"""Property tests of what a door accepts from its peers over the broker (sync/peers.py): no
payload crashes it, and only a well-formed grant of an area peer in this door's area ever
reaches the presence merge."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from edgegate.config import parse
from edgegate.contract.topics import DoorTopics
from edgegate.core.areas import Passage
from edgegate.sync.peers import Peers


class Rules:
    """Records what the peers told the site rules (the port the daemon implements)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def office_changed(self, online: bool) -> None:
        self.calls.append(("office", online))

    def peer_state(self, state: dict[str, Any]) -> None:
        self.calls.append(("state", state))

    def peer_availability(self, online: bool) -> None:
        self.calls.append(("availability", online))

    def link_changed(self, up: bool) -> None:
        self.calls.append(("link", up))


def make_peers() -> tuple[Peers, Rules, list[Passage]]:
    cfg = parse(
        {
            "door": {"site": "s", "id": "a", "area": "hall"},
            "area": {"peers": ["b"]},
            "interlock": {"peer": "c"},
            "offline": {"after_minutes": 5},
        },
        "t.toml",
    )
    merged: list[Passage] = []

    async def merge(p: Passage) -> bool:
        merged.append(p)
        return True

    def spawn(work: Any) -> None:
        asyncio.run(work)

    rules = Rules()
    return Peers(cfg, rules, merge, spawn), rules, merged


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
events = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["access_granted", "access_denied", "door_forced"]),
        "person": st.one_of(st.none(), st.integers(), st.text(max_size=5)),
        "direction": st.sampled_from(["in", "out", "sideways", 3]),
        "area": st.sampled_from(["hall", "lab", None]),
        "ts": st.sampled_from(["2026-12-02T10:00:00Z", "yesterday", 5, "2026-12-02T10:00:00"]),
        "seq": st.one_of(st.integers(), st.text(max_size=3), st.none()),
        "door": st.sampled_from(["a", "b", "z"]),
    },
)


@given(st.one_of(st.binary(max_size=64), events.map(lambda e: json.dumps(e).encode())))
def test_no_peer_event_crashes_and_only_valid_grants_merge(payload: bytes) -> None:
    peers, _rules, merged = make_peers()
    topic = DoorTopics("s", "b").events
    handler = peers.handler_for(topic)
    assert handler is not None
    handler(topic, payload)
    if merged:
        event = json.loads(payload)
        assert event["type"] == "access_granted" and event["area"] == "hall"
        assert event["door"] == "b" and event["direction"] in ("in", "out")
        assert merged[0] == Passage(
            event["person"], "hall", event["direction"], merged[0].ts, "b", int(event["seq"])
        )


@given(st.binary(max_size=64) | json_values.map(lambda v: json.dumps(v).encode()))
def test_no_peer_state_crashes(payload: bytes) -> None:
    peers, rules, _ = make_peers()
    topic = DoorTopics("s", "c").state
    handler = peers.handler_for(topic)
    assert handler is not None
    handler(topic, payload)
    if rules.calls:
        assert isinstance(json.loads(payload), dict)
    else:
        assert peers.counters["rejected_malformed"] == 1


def test_unknown_topics_have_no_handler_and_the_office_is_any_instance() -> None:
    peers, rules, _ = make_peers()
    assert peers.handler_for(DoorTopics("s", "z").events) is None
    assert peers.handler_for("edgegate/s/office/x/state") is None
    office = peers.handler_for("edgegate/s/office/h1/availability")
    assert office is not None
    office("edgegate/s/office/h1/availability", b"online")
    office("edgegate/s/office/h2/availability", b"")
    assert rules.calls[-1] == ("office", True)
    office("edgegate/s/office/h1/availability", b"")
    assert rules.calls[-1] == ("office", False)
