"""``central serve`` against a real broker: snapshots, the event archive, doors, bad input."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from edgegate.central import archive, store
from edgegate.central.schema import master as schema
from edgegate.contract import messages as m
from edgegate.contract.topics import DoorTopics
from edgegate.sim.broker import Broker
from tests.central.conftest import SITE, Central, FakeDoor, ServerThread, wait_until
from tests.conftest import EDGEGATE, REPO

pytestmark = pytest.mark.broker


def fill_master(central: Central, n: int) -> None:
    """n people (every 7th disabled), a card each (every 5th disabled), every 10th a face
    template too. Written as plain inserts: the ops path is tested elsewhere, and building
    200,000 op models here would take most of this test's time."""
    now = time.time()
    people = [
        {
            "id": f"p{i:06d}",
            "name": f"Person {i}",
            "enabled": i % 7 != 0,
            "attrs": '{"groups":["staff"]}',
            "updated_at": now,
        }
        for i in range(n)
    ]

    def cred(conn, kind: str, value: str, i: int, enabled: bool, label: str, data) -> dict:
        return {
            "kind": kind,
            "value": value,
            "person_id": f"p{i:06d}",
            "enabled": enabled,
            "label": label,
            "data": store.seal_data(conn, kind, value, data),
            "updated_at": now,
        }

    with central.db().begin() as conn:
        conn.execute(schema.people.insert(), people)
        creds = [
            cred(conn, "card", f"{0x2000000000 + i:010X}", i, i % 5 != 0, "", None)
            for i in range(n)
        ]
        creds += [
            cred(conn, "face", f"face-{i}", i, True, "dlib", "QUJD" * 200) for i in range(0, n, 10)
        ]
        conn.execute(schema.credentials.insert(), creds)
        conn.execute(
            schema.versions.insert().values(
                version=7, base=6, issued="2026-01-01T00:00:00Z", n_ops=0, ops="[]"
            )
        )


def request_snapshot(door: FakeDoor, have: int = 0) -> None:
    req = {
        "type": "snapshot_request",
        "v": 1,
        "site": SITE,
        "door": door.door,
        "have": have,
        "reason": "new",
    }
    door.send(door.topics.snapshot_request, json.dumps(req))


def test_snapshot_is_complete_signed_chunked_and_equals_the_master(
    central: Central, broker: Broker, subscriber, serving: ServerThread
):
    # 100,000 on the embedded default; the PostgreSQL variant checks the same with fewer.
    n = 100_000 if central.q(lambda c: c.dialect.name) == "sqlite" else 20_000
    fill_master(central, n)
    door = FakeDoor(broker, "front")
    sub = subscriber(DoorTopics(SITE, "front").snapshot)
    request_snapshot(door, have=3)
    first = m.parse_signed(central.verifier, sub.get(30)[1], m.SnapshotChunk)
    chunks = [first] + [
        m.parse_signed(central.verifier, p, m.SnapshotChunk)
        for _, p in sub.take(first.chunks - 1, 60)
    ]
    assert first.chunks == n // central.config.central.snapshot_chunk_people
    assert sorted(c.chunk for c in chunks) == list(range(first.chunks))
    assert {(c.snapshot, c.version, c.site, c.door) for c in chunks} == {
        (first.snapshot, central.q(store.current_version), SITE, "front")
    }
    people = [p for c in chunks for p in c.people]
    creds = [cr for c in chunks for cr in c.credentials]
    master_people = central.q(store.list_people)
    assert [p.id for p in people] == [p["id"] for p in master_people]
    assert [p.enabled for p in people] == [p["enabled"] for p in master_people]
    master_creds = {(c["kind"], c["value"]): c for c in central.q(store.list_credentials)}
    assert {(c.kind, c.value) for c in creds} == set(master_creds) and len(creds) == len(
        master_creds
    )
    for c in creds:
        want = master_creds[(c.kind, c.value)]
        assert (c.person, c.enabled, c.data) == (want["person"], want["enabled"], want.get("data"))
    # Owners travel with their credentials: every chunk is self-contained.
    for c in chunks:
        assert {cr.person for cr in c.credentials} <= {p.id for p in c.people}
    assert central.q(archive.list_doors)[0]["credential_version"] == 3  # the request's "have"
    door.close()


def test_events_of_two_doors_are_archived_once(
    central: Central, broker: Broker, serving: ServerThread, capsys
):
    front, back = FakeDoor(broker, "front"), FakeDoor(broker, "back")
    sent = {
        "front": [front.event("access_granted", kind="card", person="alice") for _ in range(150)],
        "back": [back.event("access_denied", kind="card", reason="revoked") for _ in range(100)],
    }
    # A drain after a reconnect re-sends what had no PUBACK: the same ids again.
    for ev in sent["front"]:
        front.publish_event(ev)
    for ev in sent["back"] + sent["back"][:40]:
        back.publish_event(ev)
    for ev in sent["front"][100:]:
        front.publish_event(ev)
    wait_until(
        lambda: central.q(archive.counters).get("duplicate_events", 0) >= 90,
        20,
        "duplicates counted",
    )
    counts = central.q(archive.counters)
    assert counts["events_archived"] == 250 and counts["duplicate_events"] == 90
    rows = central.q(archive.query_events)
    assert sorted(r["id"] for r in rows) == sorted(e["id"] for d in sent.values() for e in d)
    capsys.readouterr()
    assert central.run("events", "--door", "back", "--json", "--limit", "1000") == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["id"] for x in lines] == [e["id"] for e in sent["back"]]
    assert lines[0] == sent["back"][0]
    assert central.run("events", "--type", "access_granted", "--limit", "3") == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and all("access_granted" in x and "front" in x for x in out)
    assert (
        central.run("events", "--since", "2026-11-23T12:02:00+00:00", "--json", "--limit", "1000")
        == 0
    )
    late = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert late and all(x["ts"] >= "2026-11-23T12:02:00" for x in late)
    assert len(late) == sum(e["ts"] >= "2026-11-23T12:02:00" for d in sent.values() for e in d)
    front.close()
    back.close()


def test_malformed_door_messages_are_counted_and_serving_goes_on(
    central: Central, broker: Broker, serving: ServerThread
):
    door = FakeDoor(broker, "front")
    t = door.topics
    bad = [
        (t.events, b"\xff\xfe not json"),
        (t.events, b"[1, 2]"),
        (t.events, json.dumps({"id": "x", "ts": "t", "type": "a"}).encode()),  # no seq
        (t.events, json.dumps({**door.event(), "door": "back"}).encode()),  # another door's
        (t.events, b"{" * 100_000),
        (t.availability, b"maybe"),
        (t.state, b"null"),
        (t.telemetry, b"x" * 300_000),
        (
            t.snapshot_request,
            json.dumps(
                {"type": "snapshot_request", "site": SITE, "door": "front", "have": -1}
            ).encode(),
        ),
        (
            t.snapshot_request,
            json.dumps(
                {"type": "snapshot_request", "site": SITE, "door": "back", "have": 0}
            ).encode(),
        ),
    ]
    for topic, payload in bad:
        door.send(topic, payload)
    good = door.event("door_opened")
    door.publish_event(good)
    door.send(t.state, json.dumps({"lock": "locked", "mode": "normal"}))
    wait_until(lambda: central.q(archive.query_events), 10, "the good event")
    wait_until(lambda: central.q(archive.list_doors)[0]["state"], 10, "the state")
    counts = central.q(archive.counters)
    assert counts == {
        "events_archived": 1,
        "rejected_malformed": 7,
        "rejected_too_large": 1,
        "rejected_wrong_door": 2,
    }
    assert [e["id"] for e in central.q(archive.query_events)] == [good["id"]]
    assert central.q(archive.list_doors)[0]["state"] == {"lock": "locked", "mode": "normal"}
    door.close()


DOOR_SCRIPT = """
import sys, time, paho.mqtt.client as mqtt
port, door = int(sys.argv[1]), sys.argv[2]
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="door-" + door)
av = "edgegate/hq/" + door + "/availability"
c.will_set(av, b"offline", qos=1, retain=True)
c.connect("127.0.0.1", port, keepalive=5)
c.loop_start()
c.publish(av, b"online", qos=1, retain=True).wait_for_publish(5)
print("up", flush=True)
for _ in range(120):  # telemetry every half second, as a door does (not retained)
    c.publish("edgegate/hq/" + door + "/telemetry",
              b'{"credential_version": 4, "journal_depth": 17}', qos=0)
    time.sleep(0.5)
"""


def test_doors_online_offline_and_last_will(
    central: Central, broker: Broker, capsys, subprocess_env
):
    """`central serve` as systemd runs it, and two doors; one dies without a goodbye."""
    serve = subprocess.Popen(
        [*EDGEGATE, "central", "serve", "--config", str(central.path)],
        cwd=REPO,
        env=subprocess_env,
        stderr=subprocess.PIPE,
        text=True,
    )
    doors = {}
    try:
        for name in ("front", "back"):
            doors[name] = subprocess.Popen(
                [sys.executable, "-c", DOOR_SCRIPT, str(broker.port), name],
                stdout=subprocess.PIPE,
                text=True,
                cwd=REPO,
                env=subprocess_env,
            )
            assert doors[name].stdout.readline().strip() == "up"

        def status() -> dict[str, str]:
            return {d["door"]: d["availability"] for d in central.q(archive.list_doors)}

        wait_until(lambda: status() == {"front": "online", "back": "online"}, 20, "online")
        wait_until(
            lambda: all(d["telemetry"] for d in central.q(archive.list_doors)), 10, "telemetry"
        )
        doors["back"].kill()  # no DISCONNECT: the broker publishes the last will
        doors["back"].wait()
        wait_until(lambda: status()["back"] == "offline", 10, "the last will")
        capsys.readouterr()
        assert central.run("doors") == 0
        out = capsys.readouterr().out
        assert "1/2 online" in out
        lines = {line.split()[0]: line.split() for line in out.splitlines()[1:-1]}
        assert lines["back"][1] == "offline" and lines["front"][1] == "online"
        # journal depth 17, unarchived "-": this door's telemetry predates receipts
        assert "4/0" in lines["front"] and lines["front"][-2:] == ["17", "-"]
        assert central.run("doors", "--json") == 0
        data = json.loads(capsys.readouterr().out)
        front = next(d for d in data["doors"] if d["door"] == "front")
        assert front["credential_version"] == 4 and front["journal_depth"] == 17
    finally:
        for p in doors.values():
            p.kill()
            p.wait()
        serve.send_signal(signal.SIGTERM)
        _, err = serve.communicate(timeout=15)
    assert serve.returncode == 0, err
    assert "door_offline" in err and "central_stopped" in err


def test_events_sent_while_the_office_is_down_arrive_after_it_restarts(
    central: Central, broker: Broker
):
    """The persistent session: the broker keeps QoS 1 events for the office while it is away."""
    first = ServerThread(central)
    first.stop()
    door = FakeDoor(broker, "front")
    evs = [door.event() for _ in range(20)]
    for ev in evs:
        door.publish_event(ev)
    again = ServerThread(central)
    try:
        wait_until(lambda: len(central.q(archive.query_events)) == 20, 10, "queued events")
    finally:
        again.stop()
        door.close()
    assert [e["id"] for e in central.q(archive.query_events)] == [e["id"] for e in evs]


def test_events_follow_prints_new_events_as_serve_archives_them(
    central: Central, broker: Broker, serving: ServerThread, subprocess_env
):
    door = FakeDoor(broker, "front")
    old = door.event("door_opened")
    door.publish_event(old)
    wait_until(lambda: central.q(archive.query_events), 10, "the first event")
    tail = subprocess.Popen(
        [*EDGEGATE, "central", "events", "--follow", "--json", "--config", str(central.path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=subprocess_env,
    )
    try:
        assert json.loads(tail.stdout.readline())["id"] == old["id"]  # the history first
        new = [door.event("access_denied", reason="unknown") for _ in range(3)]
        for ev in [*new, new[0]]:  # and a duplicate, which must not show twice
            door.publish_event(ev)
        got = [json.loads(tail.stdout.readline()) for _ in range(3)]
        assert got == new
    finally:
        tail.kill()
        tail.wait()
        door.close()
    wait_until(lambda: central.q(archive.counters).get("duplicate_events") == 1, 10, "the copy")
    assert len(central.q(archive.query_events)) == 4


def test_a_locked_master_delays_events_but_loses_none(
    central: Central, broker: Broker, serving: ServerThread
):
    """A long import holds the master's write lock past serve's busy timeout (5 s): the batch
    waits and is retried, nothing is acknowledged early, nothing is lost or reordered.
    (PostgreSQL: a lock on the archive held past serve's lock timeout.)"""
    door = FakeDoor(broker, "front")
    blocker = central.db().connect()
    tx = blocker.begin()  # SQLite: BEGIN IMMEDIATE, what `central import` holds while it commits
    if blocker.dialect.name == "postgresql":
        blocker.exec_driver_sql("LOCK TABLE counters IN EXCLUSIVE MODE")
    evs = [door.event() for _ in range(30)]
    try:
        for ev in evs:
            door.publish_event(ev)
        wait_until(lambda: serving.server.counters["archive_failed"] >= 1, 25, "a failed try")
    finally:
        tx.rollback()
        blocker.close()
    wait_until(lambda: len(central.q(archive.query_events)) == 30, 15, "the held events")
    assert [e["id"] for e in central.q(archive.query_events)] == [e["id"] for e in evs]
    door.close()


def test_serve_publishes_what_the_cli_could_not_once_the_broker_is_back(
    central: Central, broker: Broker, serving: ServerThread, subscriber
):
    broker.stop(kill=True)
    assert central.run("people", "add", "alice", "--card", "0F00BC614E") == 3
    assert central.run("cards", "disable", "0F00BC614E") == 3
    broker.start()
    # serve reconnects by itself (paho's reconnect delay is at least 1 s): the subscriber,
    # connected at once, is listening before the pending versions go out.
    sub = subscriber(f"edgegate/{SITE}/credentials")
    # A sweep that ran before serve saw the broker go can leave version 1 in paho's QoS 1
    # queue, sent again on reconnect before the sweep's own copy: at least once, and doors
    # refuse the copy as replayed. What counts is each version, in order.
    got: list[m.CredentialUpdate] = []
    deadline = time.monotonic() + 20
    while len(got) < 2:
        _, payload = sub.get(max(0.01, deadline - time.monotonic()))
        update = m.parse_signed(central.verifier, payload, m.CredentialUpdate)
        if update.version not in {u.version for u in got}:
            got.append(update)
    assert [(u.base, u.version) for u in got] == [(0, 1), (1, 2)]
    assert got[1].ops[0].enabled is False
    wait_until(lambda: central.q(store.unpublished_count) == 0, 10, "versions marked published")


def test_an_unreachable_broker_is_said_and_its_return_too(tmp_path, office_db):
    """Nothing listens on the broker's port: serve says so (and keeps trying); once a broker
    is there it connects and says that too."""
    import asyncio
    import threading

    from edgegate.central.server import CentralServer
    from edgegate.sim.broker import free_port
    from tests.central.conftest import make_central

    port = free_port()
    central = make_central(tmp_path, port, office_db)
    srv = CentralServer(central.config, central.signer)
    loop = asyncio.new_event_loop()
    stop = threading.Event()

    async def run() -> None:
        await srv.start()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await srv.stop()

    t = threading.Thread(target=lambda: loop.run_until_complete(run()), daemon=True)
    t.start()
    try:
        wait_until(lambda: srv.broker_failures >= 2, 15, "failed attempts")
        with Broker(port=port):
            wait_until(srv.connected.is_set, 20, "connected once the broker is up")
            assert srv.broker_failures == 0
    finally:
        stop.set()
        t.join(15)
        central.close()


def test_doors_flags_a_door_whose_broker_took_more_than_the_archive_holds(
    central: Central, broker: Broker, serving: ServerThread, capsys
):
    front, back = FakeDoor(broker, "front"), FakeDoor(broker, "back")
    for ev in [front.event() for _ in range(3)]:
        front.publish_event(ev)
    front.send(front.topics.telemetry, json.dumps({"journal": {"acked": 3}}))
    back.send(back.topics.telemetry, json.dumps({"journal": {"acked": 40}}))
    wait_until(lambda: len(central.q(archive.list_doors)) == 2, 10, "both doors")
    wait_until(lambda: len(central.q(archive.query_events)) == 3, 10, "front's events")
    capsys.readouterr()
    assert central.run("doors") == 0
    out = capsys.readouterr().out
    assert "back: ARCHIVE BEHIND" in out and "40 events" in out
    assert "front: ARCHIVE" not in out
    front.close()
    back.close()


def test_a_door_a_few_versions_behind_gets_the_missed_versions_not_a_snapshot(
    central: Central, broker: Broker, serving: ServerThread, subscriber
):
    for who in ("alice", "bob", "carol"):
        assert central.run("people", "add", who) == 0  # versions 1..3, published
    creds = subscriber(f"edgegate/{SITE}/credentials")
    snaps = subscriber(DoorTopics(SITE, "front").snapshot, DoorTopics(SITE, "back").snapshot)
    front, back = FakeDoor(broker, "front"), FakeDoor(broker, "back")
    request_snapshot(front, have=1)
    got = [m.parse_signed(central.verifier, p, m.CredentialUpdate) for _, p in creds.take(2)]
    assert [(u.base, u.version) for u in got] == [(1, 2), (2, 3)]
    assert [op.person.id for u in got for op in u.ops] == ["bob", "carol"]
    # A second door behind by the same versions, at once: the re-send served it already.
    request_snapshot(back, have=2)
    wait_until(lambda: serving.server.counters["catchup_coalesced"] == 1, 10, "coalesced")
    assert creds.none_within(0.5) and snaps.none_within(0.1)
    # A new door (have 0) gets a snapshot.
    request_snapshot(back, have=0)
    topic, payload = snaps.get(10)
    assert topic == DoorTopics(SITE, "back").snapshot
    assert m.parse_signed(central.verifier, payload, m.SnapshotChunk).version == 3
    front.close()
    back.close()
