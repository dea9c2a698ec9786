"""The signed envelope and the message models: only what the central office signed gets in."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegate.contract import messages as m
from edgegate.contract import signing

KEY = signing.generate()
OTHER = signing.generate()
VERIFIER = signing.Verifier([KEY.public_key()])
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def command(**over) -> dict:
    msg = {
        "type": "command",
        "id": "c1",
        "site": "hq",
        "door": "front",
        "cmd": "unlock",
        "issued": m.rfc3339(NOW),
        "expires": m.rfc3339(NOW + timedelta(seconds=30)),
    }
    msg.update(over)
    return msg


def test_signed_command_round_trip():
    payload = signing.Signer(KEY).sign(command(by="alice"))
    cmd = m.parse_signed(VERIFIER, payload, m.Command)
    assert (cmd.cmd, cmd.door, cmd.by) == ("unlock", "front", "alice")
    assert isinstance(m.parse_any_signed(VERIFIER, payload), m.Command)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe", "malformed"),
        (b"[1,2]", "malformed"),
        (json.dumps(command()).encode(), "unsigned"),
        (json.dumps({"body": "{}", "sig": 5, "key": "k"}).encode(), "malformed"),
        (signing.Signer(OTHER).sign(command()), "unknown_key"),
        (b"x" * (signing.MAX_PAYLOAD + 1), "too_large"),
    ],
)
def test_rejections_have_a_reason(payload: bytes, reason: str):
    with pytest.raises(signing.RejectedMessage) as info:
        m.parse_signed(VERIFIER, payload, m.Command)
    assert info.value.reason == reason


def test_tampered_body_fails_signature():
    outer = json.loads(signing.Signer(KEY).sign(command()))
    outer["body"] = outer["body"].replace("unlock", "lock")
    with pytest.raises(signing.RejectedMessage, match="bad_signature"):
        VERIFIER.verify(json.dumps(outer).encode())
    outer["sig"] = "not base64!"
    with pytest.raises(signing.RejectedMessage, match="bad_signature"):
        VERIFIER.verify(json.dumps(outer).encode())


@pytest.mark.parametrize(
    "over",
    [
        {"cmd": "self_destruct"},
        {"expires": m.rfc3339(NOW - timedelta(seconds=1))},
        {"issued": "2026-11-23T12:00:00"},  # no zone
        {"extra": 1},
        {"site": "bad site"},
    ],
)
def test_signed_but_malformed_commands_refused(over: dict):
    with pytest.raises(signing.RejectedMessage) as info:
        m.parse_signed(VERIFIER, signing.Signer(KEY).sign(command(**over)), m.Command)
    assert info.value.reason == "malformed"


def test_credential_update_and_snapshot_models():
    upd = {
        "type": "credentials",
        "site": "hq",
        "version": 7,
        "base": 6,
        "issued": m.rfc3339(NOW),
        "ops": [
            {"op": "put_person", "person": {"id": "alice", "name": "Alice"}},
            {
                "op": "put_credential",
                "credential": {"kind": "card", "value": "0F00BC614E", "person": "alice"},
            },
            {"op": "set_credential_enabled", "kind": "card", "value": "0F00BC614E", "enabled": 0},
        ],
    }
    parsed = m.parse_any_signed(VERIFIER, signing.Signer(KEY).sign(upd))
    assert isinstance(parsed, m.CredentialUpdate) and len(parsed.ops) == 3
    assert isinstance(parsed.ops[2], m.SetCredentialEnabled) and parsed.ops[2].enabled is False
    with pytest.raises(signing.RejectedMessage, match="base"):
        m.parse_signed(VERIFIER, signing.Signer(KEY).sign({**upd, "base": 7}), m.CredentialUpdate)
    chunk = {
        "type": "snapshot",
        "site": "hq",
        "door": "front",
        "snapshot": "s1",
        "version": 7,
        "chunk": 2,
        "chunks": 2,
        "issued": m.rfc3339(NOW),
        "people": [],
        "credentials": [],
    }
    with pytest.raises(signing.RejectedMessage, match="chunk"):
        m.parse_signed(VERIFIER, signing.Signer(KEY).sign(chunk), m.SnapshotChunk)


def test_public_key_text_and_pem_forms(tmp_path):
    pub = KEY.public_key()
    assert signing.key_id(signing.parse_public(signing.public_text(pub))) == signing.key_id(pub)
    path = tmp_path / "central.pem"
    path.write_bytes(signing.private_pem(KEY))
    assert signing.key_id(signing.load_private(path).public_key()) == signing.key_id(pub)
    with pytest.raises(ValueError, match="32 bytes"):
        signing.parse_public(base64.b64encode(b"short").decode())
    with pytest.raises(ValueError, match="base64"):
        signing.parse_public("%%%")


@settings(max_examples=300)
@given(st.binary(max_size=512))
def test_verifier_never_crashes_on_arbitrary_bytes(data: bytes):
    with pytest.raises(signing.RejectedMessage):
        VERIFIER.verify(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300)
@given(st.dictionaries(st.sampled_from(["body", "sig", "key", "x"]), json_values, max_size=4))
def test_verifier_rejects_any_forged_envelope(outer: dict):
    with pytest.raises(signing.RejectedMessage):
        VERIFIER.verify(json.dumps(outer).encode())


@settings(max_examples=200)
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_any_signed_object_is_accepted_or_malformed(body: dict):
    """Signed garbage never crashes the parser: it is a message or a 'malformed' refusal."""
    payload = signing.Signer(KEY).sign(body)
    try:
        m.parse_any_signed(VERIFIER, payload)
    except signing.RejectedMessage as exc:
        assert exc.reason == "malformed"
