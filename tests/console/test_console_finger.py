"""Finger enrolment at the office, in process: who may start it, which doors are refused and
why (logged, counted), the door's steps into a session, the sealed template opened and
stored (sealed at rest) as a finger credential; the seal and the door's progress message are
checked property-based. The whole path through a real door is
tests/console/test_console_finger_browser.py."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegate.central import archive, inbound, store
from edgegate.central.services import Office, biometrics, credentials, tokens
from edgegate.central.services.biometrics import FingerSessions
from edgegate.contract import enrol_seal
from edgegate.contract import messages as m
from edgegate.sim.fingerprint import finger_template
from tests.conftest import all_logs
from tests.console.conftest import ADMIN, page_csrf

SENT: list[tuple[str, dict[str, Any]]] = []


@pytest.fixture
def finger_office(office: Office) -> Office:
    SENT.clear()
    office.send_command = lambda topic, message: SENT.append((topic, message))
    credentials.save_person(office, ADMIN, "carol", name="Carol Jones")
    now = time.time()
    with office.master().begin() as conn:
        for door, family in (("lab", "fingerprint"), ("front", "rdm6300")):
            archive.set_availability(conn, "hq", door, "online", now)
            tele = {"readers": [{"name": "r", "family": family, "healthy": True}]}
            archive.set_json(conn, "hq", door, "telemetry", tele, now)
        archive.set_availability(conn, "hq", "annex", "offline", now)
        tele = {"readers": [{"name": "fp", "family": "fingerprint", "healthy": True}]}
        archive.set_json(conn, "hq", "annex", "telemetry", tele, now)
    return office


def refusals(office: Office) -> dict[str, int]:
    with office.engine.connect() as conn:
        return {k: v for k, v in archive.counters(conn).items() if k.startswith("enrol_")}


def door_step(session: biometrics.FingerSession, step: str, **more: Any) -> m.EnrolProgress:
    return m.EnrolProgress(
        type="enrol_progress",
        site="hq",
        door=session.door,
        cmd_id=session.id,
        person=session.person,
        step=step,  # type: ignore[arg-type]
        **more,
    )


def captured(session: biometrics.FingerSession, template: bytes, **bind: str) -> m.EnrolProgress:
    """What the door sends at the end: the template sealed to the command's session key."""
    [(_topic, command)] = [s for s in SENT if s[1]["id"] == session.id]
    args = m.EnrolFingerArgs.model_validate(command["args"])
    ids = {"door": session.door, "person": session.person, "cmd_id": session.id, **bind}
    aad = enrol_seal.bound_to("hq", ids["door"], ids["cmd_id"], ids["person"], "r307")
    sealed = enrol_seal.seal(args.session, template, aad)
    return door_step(session, "captured", model="r307", sealed=sealed)


def test_steps_then_the_sealed_template_becomes_a_finger_credential(finger_office: Office):
    sessions = FingerSessions()
    s = biometrics.start_finger(finger_office, ADMIN, sessions, "carol", "lab", 30)
    [(topic, command)] = SENT
    assert topic == "edgegate/hq/lab/cmd" and command["cmd"] == "enrol_finger"
    assert command["args"]["person"] == "carol" and command["args"]["timeout"] == 30
    for step in ("started", "place", "lift", "again"):
        assert biometrics.finger_progress(finger_office, sessions, door_step(s, step)) is s
    assert s.state == "running" and s.message == "place the same finger again"
    template = finger_template("carol-thumb")
    biometrics.finger_progress(finger_office, sessions, captured(s, template))
    assert s.state == "done" and s.key is None and s.value and s.value.startswith("carol.")
    with store.reading(finger_office.master()) as conn:
        [cred] = [c for c in store.list_credentials(conn, "carol") if c["kind"] == "finger"]
    assert cred["value"] == s.value and cred["label"] == "model=r307"
    assert base64.b64decode(cred["data"]) == template
    stored = open(finger_office.config.central.db, "rb").read()  # noqa: SIM115
    assert template[:64] not in stored  # sealed at rest
    # A late or repeated message changes nothing.
    assert biometrics.finger_progress(finger_office, sessions, door_step(s, "failed")) is None
    assert s.state == "done"


@pytest.mark.parametrize(
    ("bind", "why"),
    [({"person": "mallory"}, "person"), ({"door": "annex"}, "door"), ({"cmd_id": "x" * 32}, "id")],
)
def test_a_template_sealed_for_something_else_is_refused(finger_office: Office, bind, why):
    sessions = FingerSessions()
    s = biometrics.start_finger(finger_office, ADMIN, sessions, "carol", "lab")
    with all_logs() as logs:
        biometrics.finger_progress(finger_office, sessions, captured(s, b"t" * 512, **bind))
    assert s.state == "failed" and "does not open" in s.message, why
    assert refusals(finger_office) == {"enrol_failed_bad_template": 1}
    assert any(e["event"] == "finger_enrolment_failed" for e in logs)
    with store.reading(finger_office.master()) as conn:
        assert all(c["kind"] != "finger" for c in store.list_credentials(conn, "carol"))


def test_door_failure_refusal_and_silence_end_the_session(finger_office: Office):
    clock = [1000.0]
    sessions = FingerSessions(clock=lambda: clock[0])
    a = biometrics.start_finger(finger_office, ADMIN, sessions, "carol", "lab", 10)
    biometrics.finger_progress(finger_office, sessions, door_step(a, "failed", detail="timeout"))
    assert a.state == "failed" and "timeout" in a.message
    b = biometrics.start_finger(finger_office, ADMIN, sessions, "carol", "lab", 10)
    assert biometrics.door_refused(sessions, b.id, "an enrolment is already running") is b
    assert "already running" in b.message
    c = biometrics.start_finger(finger_office, ADMIN, sessions, "carol", "lab", 10)
    clock[0] += 2 * 10 + biometrics.SESSION_GRACE_SECONDS + 1
    assert sessions.expire() == [c] and "no answer from the door" in c.message
    # A step for no session of ours (another office instance's): ignored. One that names
    # another door or person than its session: logged, counted, ignored.
    stray = m.EnrolProgress(
        type="enrol_progress", site="hq", door="lab", cmd_id="nope", person="carol", step="place"
    )
    assert biometrics.finger_progress(finger_office, sessions, stray) is None
    d = biometrics.start_finger(finger_office, ADMIN, sessions, "carol", "lab", 10)
    wrong = stray.model_copy(update={"cmd_id": d.id, "door": "annex"})
    assert biometrics.finger_progress(finger_office, sessions, wrong) is None
    assert d.steps == [] and d.state == "sent"
    assert refusals(finger_office) == {
        "enrol_failed_door_failed": 1,
        "enrol_progress_mismatch": 1,
    }


@pytest.mark.parametrize(
    ("person", "door", "reason", "message"),
    [
        ("carol", "front", "wrong_door", "door 'front' has no fingerprint reader"),
        ("carol", "nowhere", "wrong_door", "no door 'nowhere'"),
        ("carol", "annex", "door_offline", "door 'annex' is offline"),
        ("nobody", "lab", "unknown_person", "no person 'nobody'"),
    ],
)
def test_start_refused_clearly_logged_counted(finger_office, person, door, reason, message):  # type: ignore[no-untyped-def]
    with all_logs() as logs, pytest.raises(biometrics.EnrolRefused, match=message):
        biometrics.start_finger(finger_office, ADMIN, FingerSessions(), person, door)
    assert SENT == []
    assert refusals(finger_office) == {f"enrol_refused_{reason}": 1}
    [entry] = [e for e in logs if e["event"] == "biometric_enrolment_refused"]
    assert entry["kind"] == "finger" and entry["reason"] == reason


def test_console_and_api_start_and_guard(finger_office: Office, client_as) -> None:  # type: ignore[no-untyped-def]
    sec = client_as("security")
    page = sec.get("/people/carol").text
    assert 'option value="lab"' in page and 'option value="front"' not in page
    assert 'value="annex" disabled' in page
    csrf = page_csrf(sec, "/people/carol")
    r = sec.post(
        "/people/carol/fingers", data={"csrf": csrf, "door": "lab"}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/enrolments/")
    assert "command sent" in sec.get(r.headers["location"]).text
    r = sec.post("/people/carol/fingers", data={"csrf": csrf, "door": "front"})
    assert "finger not enrolled: door &#39;front&#39; has no fingerprint reader" in r.text
    for role in ("reception", "viewer"):
        c = client_as(role)
        r = c.post("/people/carol/fingers", data={"csrf": page_csrf(c), "door": "lab"})
        assert r.status_code == 403
    secret = tokens.create(finger_office.engine, ADMIN, "kiosk", "security")
    auth = {"Authorization": f"Bearer {secret}"}
    api = client_as(None)
    r = api.post("/api/v1/people/carol/fingers", json={"door": "lab"}, headers=auth)
    assert r.status_code == 200 and r.json()["state"] == "sent", r.text
    got = api.get(f"/api/v1/enrolments/{r.json()['session']}", headers=auth).json()
    assert got["door"] == "lab" and got["person"] == "carol"
    r = api.post("/api/v1/people/carol/fingers", json={"door": "front"}, headers=auth)
    assert r.status_code == 422 and "no fingerprint reader" in r.json()["detail"]
    r = api.post("/api/v1/people/carol/fingers", json={"door": "lab", "timeout": 1}, headers=auth)
    assert r.status_code == 422
    assert len(SENT) == 2


@settings(max_examples=60, deadline=None)
@given(template=st.binary(min_size=1, max_size=2048), flip=st.integers(0, 10_000))
def test_seal_opens_only_as_sealed(template: bytes, flip: int) -> None:
    key, public = enrol_seal.new_session()
    aad = enrol_seal.bound_to("hq", "lab", "c1", "carol", "r307")
    sealed = enrol_seal.seal(public, template, aad)
    assert enrol_seal.open_sealed(key, sealed, aad) == template
    ct = bytearray(base64.b64decode(sealed.ct))
    ct[flip % len(ct)] ^= 1 << (flip % 8)
    edited = sealed.model_copy(update={"ct": base64.b64encode(bytes(ct)).decode()})
    for k, s, a in (
        (key, edited, aad),
        (enrol_seal.new_session()[0], sealed, aad),
        (key, sealed, aad + b"x"),
    ):
        with pytest.raises(enrol_seal.EnrolSealError):
            enrol_seal.open_sealed(k, s, a)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
GOOD = {
    "type": "enrol_progress",
    "v": 1,
    "site": "hq",
    "door": "lab",
    "cmd_id": "c1",
    "person": "carol",
    "step": "place",
}


@settings(max_examples=80, deadline=None)
@given(
    changes=st.dictionaries(
        st.sampled_from([*GOOD, "sealed", "model", "extra"]), JSONISH, max_size=3
    )
)
def test_door_progress_parser_refuses_or_accepts_never_crashes(changes: dict[str, Any]) -> None:
    """Property: any JSON on a door's ``enrol`` topic is a valid EnrolProgress for that door
    or a BadMessage with a reason; nothing else escapes the office's inbound parser."""
    where = inbound.Inbound("hq", "lab", "enrol")
    payload = json.dumps({**GOOD, **changes}).encode()
    try:
        msg = inbound.parse_enrol_progress(payload, where)
    except inbound.BadMessage as exc:
        assert exc.reason in {"malformed", "wrong_door"}
    else:
        assert (msg.site, msg.door) == ("hq", "lab")
        assert (msg.step == "captured") == (msg.sealed is not None)
