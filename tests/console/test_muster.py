"""The muster list (issue 20): who is inside each area, from the archive, through the office
service, the console page (every role, printable, escaped) and the CLI."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgegate.central import archive, store
from edgegate.central.services import Office
from edgegate.central.services.muster import muster
from edgegate.cli.main import main
from edgegate.core.areas import Passage, newer
from edgegate.store.journal import rfc3339

NOW = time.time()


def _event(door: str, seq: int, ts: float, type_: str = "access_granted", **kw: Any) -> dict:
    return {
        "id": uuid.uuid4().hex,
        "seq": seq,
        "ts": rfc3339(ts),
        "site": "hq",
        "door": door,
        "type": type_,
        **kw,
    }


def _archive(office: Office, events: list[dict]) -> None:
    conn = office.master()
    with conn:
        for ev in events:
            archive.archive_events(conn, "hq", ev["door"], [ev], NOW)


def _people(office: Office) -> None:
    from edgegate.contract import messages as m

    conn = office.master()
    ops = [
        m.PutPerson(op="put_person", person=m.PersonMsg(id=pid, name=name))
        for pid, name in (("alice", "Alice Martin"), ("bob", "<script>alert(1)</script>"))
    ]
    store.commit_ops(conn, ops, now=NOW)


def test_muster_page_cli_and_reset(office: Office, client_as, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _people(office)
    _archive(
        office,
        [
            _event("a", 1, NOW - 600, person="alice", direction="in", area="hall"),
            _event("b", 1, NOW - 500, person="bob", direction="in", area="hall"),
            _event("a", 2, NOW - 400, person="carol", direction="in", area="hall"),
            _event("b", 2, NOW - 300, person="carol", direction="out", area="hall"),
            _event("c", 1, NOW - 200, person="dave", direction="in", area="lab"),
            # Too old for the 24 h window: not inside any more.
            _event("a", 0, NOW - 90_000, person="erin", direction="in", area="hall"),
            # A denial is no passage.
            _event("a", 3, NOW - 100, "access_denied", person="frank", direction="in"),
        ],
    )
    data = muster(office.engine, now=NOW)
    hall = {a["area"]: a for a in data["areas"]}["hall"]
    assert [p["person"] for p in hall["people"]] == ["alice", "bob"]
    assert hall["people"][0]["name"] == "Alice Martin" and hall["people"][0]["door"] == "a"
    assert data["total"] == 3
    assert muster(office.engine, area="lab", now=NOW)["total"] == 1

    viewer = client_as("viewer")
    html = viewer.get("/muster").text
    assert "Alice Martin" in html and "2 inside" in html
    # A name is text, never markup.
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert "Muster" in viewer.get("/doors").text  # in every role's menu
    assert "dave" in viewer.get("/muster/list?area=lab").text
    api = viewer.get("/api/v1/muster?area=hall").json()
    assert api["total"] == 2 and api["areas"][0]["people"][1]["person"] == "bob"

    config = str(tmp_path / "central.toml")
    capsys.readouterr()
    assert main(["central", "muster", "--json", "--config", config]) == 0
    text = capsys.readouterr().out  # log lines may surround the JSON document
    out, _ = json.JSONDecoder().raw_decode(text[text.index("{\n") :])
    assert out["total"] == 3

    # After the evacuation the hall's presence is reset at a door: nobody is inside there.
    _archive(office, [_event("a", 4, NOW - 50, "presence_reset", area="hall", people=2)])
    after = muster(office.engine, now=NOW)
    assert [a["area"] for a in after["areas"] if a["occupancy"]] == ["lab"]
    assert main(["central", "muster", "--area", "hall", "--config", config]) == 0
    assert "hall: 0 inside" in capsys.readouterr().out


passages = st.lists(
    st.tuples(
        st.sampled_from(["p1", "p2"]),
        st.sampled_from(["in", "out"]),
        st.integers(0, 3),
        st.sampled_from(["a", "b"]),
    ),
    max_size=12,
)


# The office is reused across examples on purpose: each example empties the archive first.
@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(passages)
def test_office_list_agrees_with_the_doors_merge_order(office: Office, steps) -> None:  # type: ignore[no-untyped-def]
    """Whatever order the archive received them in, the office counts who is inside exactly
    as every door of the area does (edgegate/core/areas.py)."""
    conn = office.master()
    with conn:
        conn.execute("DELETE FROM events")
    seqs: dict[str, int] = {}
    events, known = [], {}
    for person, direction, minute, door in steps:
        seqs[door] = seqs.get(door, 0) + 1
        ts = NOW - 3600 + minute * 60
        events.append(_event(door, seqs[door], ts, person=person, direction=direction, area="hall"))
        p = Passage(person, "hall", direction, float(rfc3339_ts(ts)), door, seqs[door])
        if newer(p, known.get(person)):
            known[person] = p
    _archive(office, list(reversed(events)))
    inside = {p for p, v in known.items() if v.state == "in"}
    got = muster(office.engine, now=NOW)
    assert {p["person"] for a in got["areas"] for p in a["people"]} == inside


def rfc3339_ts(ts: float) -> float:
    from edgegate.store.journal import parse_rfc3339

    return parse_rfc3339(rfc3339(ts))


def test_doors_board_shows_the_posture(office: Office, client_as) -> None:  # type: ignore[no-untyped-def]
    conn = office.master()
    with conn:
        archive.set_json(conn, "hq", "lobby", "state", {"mode": "normal", "posture": "free"}, NOW)
        archive.set_json(conn, "hq", "back", "state", {"mode": "normal", "posture": "card"}, NOW)
    html = client_as("viewer").get("/doors").text
    assert "normal · free" in html and "normal · card" not in html
