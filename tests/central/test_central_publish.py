"""The central CLI writes the master store, then publishes signed messages the doors accept."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import stat
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from edgegate.central import store
from edgegate.central.schema.master import commands
from edgegate.contract import messages as m
from edgegate.contract import signing
from edgegate.contract.topics import site_credentials
from edgegate.face import face_format
from edgegate.hardware.fingerprint.template_file import make_template_file, write_template_file
from edgegate.sim.broker import Broker
from tests.central.conftest import SITE, Central, make_central, write_central_toml
from tests.conftest import EDGEGATE, REPO

pytestmark = pytest.mark.broker
CREDS = site_credentials(SITE)


def updates(central: Central, got: list[tuple[str, bytes]]) -> list[m.CredentialUpdate]:
    out = []
    for topic, payload in got:
        assert topic == CREDS
        out.append(m.parse_signed(central.verifier, payload, m.CredentialUpdate))
    return out


def test_keygen_writes_a_usable_private_key(tmp_path: Path, subprocess_env):
    cfg = write_central_toml(tmp_path, 1883)
    cmd = [*EDGEGATE, "central", "keygen", "--config", str(cfg)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=subprocess_env)
    assert r.returncode == 0, r.stderr
    key_file = tmp_path / "central.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    # The printed line is what a door trusts: it verifies what the written key signs.
    public = signing.parse_public(r.stdout.strip())
    payload = signing.Signer(signing.load_private(key_file)).sign({"x": 1})
    assert signing.Verifier([public]).verify(payload) == {"x": 1}
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=subprocess_env)
    assert again.returncode == 1 and "--force" in again.stderr
    assert signing.Verifier([public]).verify(
        signing.Signer(signing.load_private(key_file)).sign({"x": 2})
    ) == {"x": 2}


def test_people_and_cards_become_consecutive_signed_versions(central: Central, subscriber):
    sub = subscriber(CREDS)
    assert (
        central.run(
            "people",
            "add",
            "alice",
            "--name",
            "Alice M",
            "--group",
            "staff",
            "--card",
            "0f:00:bc:61:4e",
        )
        == 0
    )
    assert central.run("cards", "add", "00AA11BB22", "--person", "alice", "--label", "b2") == 0
    assert central.run("cards", "disable", "0F00BC614E") == 0  # the lost card
    assert central.run("people", "disable", "alice") == 0
    assert central.run("cards", "remove", "00AA11BB22") == 0
    assert central.run("people", "remove", "alice") == 0
    got = updates(central, sub.take(6))
    assert [(u.base, u.version) for u in got] == [(i, i + 1) for i in range(6)]
    first = got[0].ops
    assert isinstance(first[0], m.PutPerson) and first[0].person.attrs == {"groups": ["staff"]}
    assert isinstance(first[1], m.PutCredential) and first[1].credential.value == "0F00BC614E"
    assert got[1].ops[0].credential.label == "b2"
    assert got[2].ops == [
        m.SetCredentialEnabled(
            op="set_credential_enabled", kind="card", value="0F00BC614E", enabled=False
        )
    ]
    assert got[3].ops[0] == m.SetPersonEnabled(op="set_person_enabled", id="alice", enabled=False)
    assert isinstance(got[5].ops[0], m.RemovePerson)
    assert central.q(store.current_version) == 6 and central.q(store.unpublished) == []
    assert central.q(store.list_people) == []


def test_refused_change_writes_nothing_and_publishes_nothing(central: Central, subscriber, capsys):
    sub = subscriber(CREDS)
    assert central.run("cards", "disable", "0F00BC614E") == 1
    assert central.run("cards", "add", "0F00BC614E", "--person", "nobody") == 1
    assert central.run("people", "add", "bob", "--card", "0F00BC614E") == 0
    assert central.run("people", "add", "eve", "--card", "0F00BC614E") == 1
    err = capsys.readouterr().err
    assert "no card 0F00BC614E" in err and "belongs to bob" in err and "no person" in err
    ((_, payload),) = sub.take(1)
    assert m.parse_signed(central.verifier, payload, m.CredentialUpdate).version == 1
    assert sub.none_within(0.3)
    assert central.q(store.current_version) == 1


def test_import_csv_in_versions_and_reimport_is_a_no_op(
    central: Central, subscriber, tmp_path, capsys
):
    rows = ["person,name,card,groups,valid_until"]
    rows += [f"p{i:05d},Person {i},{0x3000000000 + i:010X},staff;night," for i in range(4999)]
    rows.append("v1,Visitor,,visitors,2026-12-01T18:00:00+00:00")
    csv = tmp_path / "people.csv"
    csv.write_text("\n".join(rows) + "\n")
    sub = subscriber(CREDS)
    assert central.run("import", str(csv)) == 0
    # 5,000 people + 4,999 cards with update_max_ops = 2000: five consecutive versions.
    got = updates(central, sub.take(5))
    assert [(u.base, u.version) for u in got] == [(i, i + 1) for i in range(5)]
    ops = [op for u in got for op in u.ops]
    people = {op.person.id: op.person for op in ops if isinstance(op, m.PutPerson)}
    cards = {
        op.credential.value: op.credential.person for op in ops if isinstance(op, m.PutCredential)
    }
    assert len(people) == 5000 and len(cards) == 4999
    assert (
        people["v1"].valid_until == datetime.fromisoformat("2026-12-01T18:00:00+00:00").timestamp()
    )
    assert people["p00007"].attrs == {"groups": ["staff", "night"]}
    assert cards["3000000007"] == "p00007"
    master = {p["id"] for p in central.q(store.list_people)}
    assert master == set(people)
    capsys.readouterr()
    # The same file again: nothing changed, nothing published.
    assert central.run("import", str(csv)) == 0
    assert "nothing to publish" in capsys.readouterr().out
    assert sub.none_within(0.3)
    # A lost card stays lost through a re-import.
    assert central.run("cards", "disable", "3000000007") == 0
    assert central.run("import", str(csv)) == 0
    assert central.q(store.list_credentials, "p00007")[0]["enabled"] is False


def test_bad_csv_changes_nothing(central: Central, tmp_path, capsys):
    csv = tmp_path / "bad.csv"
    csv.write_text("person,name,card\nok,Ok,0A0B\nbad id!,X,0C0D\nz,Z,XYZ\nw,W,0A0B\n")
    assert central.run("import", str(csv)) == 2
    err = capsys.readouterr().err
    assert (
        "line 3:" in err and "line 4:" in err and "line 5: card 0A0B already belongs to ok" in err
    )
    assert central.q(store.current_version) == 0
    csv.write_text("person,badge\nx,1\n")
    assert central.run("import", str(csv)) == 2
    assert "unknown column(s) badge" in capsys.readouterr().err


def test_broker_down_keeps_the_version_and_publish_catches_up(
    central: Central, broker: Broker, subscriber, capsys
):
    broker.stop(kill=True)
    assert central.run("cards", "add", "0F00BC614E", "--person", "x") == 1  # no person yet
    assert central.run("people", "add", "alice", "--card", "0F00BC614E") == 3
    assert "broker unreachable" in capsys.readouterr().err
    assert [v.version for v in central.q(store.unpublished)] == [1]
    broker.start()
    sub = subscriber(CREDS)
    assert central.run("publish") == 0
    ((_, payload),) = sub.take(1)
    assert m.parse_signed(central.verifier, payload, m.CredentialUpdate).version == 1
    assert central.q(store.unpublished) == []


def test_commands_to_one_door_and_to_all(central: Central, subscriber):
    sub = subscriber(f"edgegate/{SITE}/+/cmd")
    before = time.time()
    assert central.run("cmd", "front", "unlock", "--seconds", "3", "--by", "alice") == 0
    assert central.run("cmd", "all", "lockdown", "--ttl", "5") == 0
    (t1, p1), (t2, p2) = sub.take(2)
    one = m.parse_signed(central.verifier, p1, m.Command)
    everyone = m.parse_signed(central.verifier, p2, m.Command)
    assert t1 == f"edgegate/{SITE}/front/cmd" and t2 == f"edgegate/{SITE}/all/cmd"
    assert (one.cmd, one.door, one.args, one.by) == ("unlock", "front", {"seconds": 3.0}, "alice")
    assert (one.expires - one.issued).total_seconds() == pytest.approx(30, abs=1)
    assert (everyone.cmd, everyone.door) == ("lockdown", "all")
    assert (everyone.expires - everyone.issued).total_seconds() == pytest.approx(5, abs=1)
    assert one.issued.timestamp() >= before - 1 and one.id != everyone.id
    rows = central.q(
        lambda c: c.execute(select(commands.c.cmd, commands.c.published.is_not(None))).all()
    )
    assert sorted(tuple(r) for r in rows) == [("lockdown", True), ("unlock", True)]


def test_biometric_credential_from_a_data_file(central: Central, subscriber, tmp_path):
    sub = subscriber(CREDS)
    assert central.run("people", "add", "alice") == 0
    raw = bytes(range(256)) * 2  # a 512-byte sensor template, binary
    (tmp_path / "t.bin").write_bytes(raw)
    legacy = b"\x01" * 1024  # 2 x 128 float32, untagged (the pre-version-1 form)
    (tmp_path / "f.txt").write_text(base64.b64encode(legacy).decode() + "\n")
    # Sent in the versioned face format: the same encodings, tagged dlib_resnet_v1.
    enc = base64.b64encode(face_format.encode(legacy)).decode()
    assert (
        central.run(
            "people",
            "add-credential",
            "alice",
            "--kind",
            "finger",
            "--data-file",
            str(tmp_path / "t.bin"),
            "--label",
            "model=r307",
        )
        == 0
    )
    assert (
        central.run(
            "people",
            "add-credential",
            "alice",
            "--kind",
            "face",
            "--data-file",
            str(tmp_path / "f.txt"),
        )
        == 0
    )
    got = updates(central, sub.take(3))
    finger, face = got[1].ops[0].credential, got[2].ops[0].credential
    assert (finger.kind, finger.label, base64.b64decode(finger.data)) == (
        "finger",
        "model=r307",
        raw,
    )
    assert (face.kind, face.data) == ("face", enc)
    assert face.value == "face-" + hashlib.sha256(enc.encode()).hexdigest()[:16]
    # A finger's value is site-wide, <person>.<16 hex> (docs/fingerprint.md).
    assert re.fullmatch(r"alice\.[0-9a-f]{16}", finger.value) and finger.person == "alice"


def test_face_file_of_another_model_or_garbage_is_refused_at_the_office(
    central: Central, subscriber, tmp_path, capsys
):
    sub = subscriber(CREDS)
    assert central.run("people", "add", "alice") == 0
    sub.take(1)
    capsys.readouterr()
    other = face_format.HEADER.pack(face_format.MAGIC, 1, 512, 1, b"arcface_r100") + bytes(2048)
    newer = face_format.encode(bytes(512))[:4] + (2).to_bytes(2, "little") + bytes(534)
    files = {"other.bin": other, "newer.bin": newer, "short.bin": bytes(500)}
    for name, raw in files.items():
        (tmp_path / name).write_bytes(raw)
        args = ("people", "add-credential", "alice", "--kind", "face")
        assert central.run(*args, "--data-file", str(tmp_path / name)) == 2, name
    err = capsys.readouterr().err
    assert "descriptor model 'arcface_r100'" in err and "'dlib_resnet_v1'" in err
    assert "format version 2 is not supported" in err
    assert "500 bytes is neither versioned" in err
    assert sub.none_within(0.3)


def test_finger_template_file_exported_by_a_door(central: Central, subscriber, tmp_path, capsys):
    """`edgegate enroll finger --export FILE` at a door -> the office sends it to every door."""
    sub = subscriber(CREDS)
    assert central.run("people", "add", "bob") == 0
    template = bytes(range(200)) * 4
    path = tmp_path / "bob.finger.json"
    content = make_template_file(
        site=SITE,
        door="front",
        person="bob",
        name="Bob",
        value="bob.0123456789abcdef",
        model="r503",
        template=template,
    )
    write_template_file(path, content)
    assert (
        central.run("people", "add-credential", "bob", "--kind", "finger", "--data-file", str(path))
        == 0
    )
    cred = updates(central, sub.take(2))[1].ops[0].credential
    assert (cred.kind, cred.value, cred.person, cred.label) == (
        "finger",
        "bob.0123456789abcdef",
        "bob",
        "model=r503",
    )
    assert base64.b64decode(cred.data) == template
    # Someone else's template, a raw template without its sensor family: refused.
    capsys.readouterr()
    assert (
        central.run(
            "people", "add-credential", "alice", "--kind", "finger", "--data-file", str(path)
        )
        == 2
    )
    (tmp_path / "raw.bin").write_bytes(template)
    assert (
        central.run(
            "people",
            "add-credential",
            "bob",
            "--kind",
            "finger",
            "--data-file",
            str(tmp_path / "raw.bin"),
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "bob's, not alice's" in err and "--label model=" in err
    assert sub.none_within(0.3)


def test_config_errors_name_the_key(tmp_path: Path, capsys):
    path = write_central_toml(tmp_path, 1883, chunk=5)
    from edgegate.cli.main import main

    assert main(["central", "doors", "--config", str(path)]) == 2
    assert "central.chunk: unknown key" in capsys.readouterr().err


def test_lost_card_reaches_an_online_door_subscriber_fast(
    tmp_path, broker, subscriber, subprocess_env
):
    """The lost-card path as an operator runs it: a fresh process, store write, publish."""
    c = make_central(tmp_path, broker.port)
    assert c.run("people", "add", "alice", "--card", "0F00BC614E") == 0
    sub = subscriber(CREDS)
    started = time.monotonic()
    r = subprocess.run(
        [*EDGEGATE, "central", "cards", "disable", "0F00BC614E", "--config", str(c.path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=subprocess_env,
    )
    assert r.returncode == 0, r.stderr
    ((_, payload),) = sub.take(1)
    elapsed = time.monotonic() - started
    upd = m.parse_signed(c.verifier, payload, m.CredentialUpdate)
    assert upd.ops[0].enabled is False and upd.base == 1
    print(f"lost card: CLI start to door subscriber {elapsed:.3f} s")  # figure: bench/


def test_finger_captured_on_the_office_desk_sensor(tmp_path, broker, subscriber, subprocess_env):
    """`add-credential --kind finger --capture`: the operator follows the prompts on the
    office's sensor (a simulated R503 on a pty, the real wire protocol)."""
    from edgegate.sim.fingerprint import FingerprintSimulator, finger_template

    sim = FingerprintSimulator().start()
    try:
        c = make_central(tmp_path, broker.port)
        path = c.path
        with path.open("a") as f:
            f.write(f'\n[fingerprint]\nport = "{sim.port}"\nmodel = "r503"\n')
        assert c.run("people", "add", "ivan") == 0
        sub = subscriber(CREDS)
        proc = subprocess.Popen(
            [*EDGEGATE, "central", "people", "add-credential", "ivan", "--kind", "finger",
             "--capture", "--timeout", "10", "--config", str(path)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
            env=subprocess_env,
        )  # fmt: skip
        assert proc.stdout is not None
        for line in proc.stdout:  # the operator reads the prompts and touches the sensor
            if "Place your finger" in line:
                sim.place_finger("ivan")
            elif "Lift" in line:
                sim.lift_finger()
            elif "same finger" in line:
                sim.place_finger("ivan", quality=0.95)
        assert proc.wait(20) == 0, proc.stderr.read() if proc.stderr else ""
        cred = m.parse_signed(c.verifier, sub.get(10)[1], m.CredentialUpdate).ops[0].credential
        assert (cred.kind, cred.person, cred.label) == ("finger", "ivan", "model=r503")
        assert base64.b64decode(cred.data) == finger_template("ivan")
        assert re.fullmatch(r"ivan\.[0-9a-f]{16}", cred.value)
        assert sim.library == {}  # nothing stored on the office's sensor
    finally:
        sim.stop()
