"""Visitor pass tokens (edgegate/contract/visitor_pass.py) and their decision
(edgegate/core/visitor_pass.py): no input crashes the parser or opens a door."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgegate.contract import signing
from edgegate.contract.visitor_pass import (
    DOMAIN,
    PREFIX,
    PassRejected,
    PassToken,
    encode_pass,
    parse_pass,
)
from edgegate.core.decision import DoorPolicy, Reason, RuleContext
from edgegate.core.reads import CredentialKind, CredentialRead, Direction
from edgegate.core.visitor_pass import VisitorPass, decide_pass

KEY = signing.generate()
SIGNER = signing.Signer(KEY)
KEYS = [KEY.public_key()]
OTHER = signing.generate()
TOKEN = PassToken("P1a2b3c", "V9f8e7d", ("lobby", "meeting"), 1_000, 2_000, True)
TEXT = encode_pass(SIGNER, TOKEN)


def test_round_trip_and_size():
    assert parse_pass(TEXT, KEYS) == TOKEN
    assert parse_pass(f"  {TEXT}\r\n", KEYS) == TOKEN  # a scanner's line ending
    assert len(TEXT) < 224  # alphanumeric: fits a version-7 QR code at level L


def test_another_office_key_is_forged():
    with pytest.raises(PassRejected) as exc:
        parse_pass(encode_pass(signing.Signer(OTHER), TOKEN), KEYS)
    assert exc.value.reason == "forged"
    # During a key roll-over a door trusts both.
    assert parse_pass(encode_pass(signing.Signer(OTHER), TOKEN), [*KEYS, OTHER.public_key()])


def test_a_command_signature_is_not_a_pass():
    # The office signs message bodies too: the domain prefix keeps them apart.
    body = TOKEN.body()
    raw = body + KEY.sign(body)  # what signing the bytes without the pass domain gives
    with pytest.raises(PassRejected, match="forged"):
        parse_pass(PREFIX + base64.b32encode(raw).decode().rstrip("="), KEYS)


@given(st.binary(max_size=300))
def test_any_signed_body_decodes_exactly_or_is_refused(body: bytes):
    # Even bytes the office's key signed (an office bug) never crash the door or open it
    # unless they decode, to the last byte, to a pass that encodes back to them.
    raw = body + KEY.sign(DOMAIN + body)
    try:
        token = parse_pass(PREFIX + base64.b32encode(raw).decode().rstrip("="), KEYS)
    except PassRejected as exc:
        assert exc.reason == "malformed"
        return
    assert token.body() == body


def test_the_office_never_signs_a_body_a_door_refuses():
    with pytest.raises(ValueError):
        encode_pass(SIGNER, PassToken("bad id!", "V1", (), 0, 1, False))


@given(st.text(max_size=700))
def test_any_text_is_refused_not_crashing(text: str):
    with pytest.raises(PassRejected):
        parse_pass(text, KEYS)


@given(st.binary(max_size=400))
def test_any_bytes_behind_the_prefix_are_refused(data: bytes):
    text = PREFIX + base64.b32encode(data).decode().rstrip("=")
    with pytest.raises(PassRejected):
        parse_pass(text, KEYS)


@given(st.integers(0, len(TEXT) - 1), st.characters(codec="ascii"))
def test_an_altered_token_is_refused(i: int, ch: str):
    altered = TEXT[:i] + ch + TEXT[i + 1 :]
    try:
        token = parse_pass(altered, KEYS)
    except PassRejected:
        return
    # Only a change the base64 decoder ignores (unused low bits of the last character, or
    # white space around) can leave a valid pass, and then it is the very same pass.
    assert token == TOKEN


def read(direction: str = "in", reader: str = "entry") -> CredentialRead:
    return CredentialRead(CredentialKind.QR, TEXT, reader, Direction(direction))


def vp(**kw) -> VisitorPass:
    base = dict(pass_id="P1", visit_id="V1", zones=("lobby",), not_before=1000.0,
                not_after=2000.0, single=True)  # fmt: skip
    return VisitorPass(**{**base, **kw})


def ctx(zone: str = "lobby") -> RuleContext:
    return RuleContext(policy=DoorPolicy(zone=zone))


@pytest.mark.parametrize(
    ("kw", "now", "zone", "reason"),
    [
        ({}, 1500, "lobby", Reason.GRANTED),
        ({}, 999, "lobby", Reason.NOT_YET_VALID),
        ({}, 2000, "lobby", Reason.EXPIRED),
        ({}, 1500, "workshop", Reason.ZONE),
        ({"revoked": True}, 1500, "lobby", Reason.REVOKED),
        ({"used": True}, 1500, "lobby", Reason.REPLAYED),
    ],
)
def test_pass_reasons(kw, now, zone, reason):
    d = decide_pass(read(), vp(), now, context=ctx(zone), **kw)
    assert d.reason is reason and d.granted is (reason is Reason.GRANTED)
    if d.person_id is not None:
        assert d.person_id == "V1"  # the visit id, never a name


def test_forged_multiple_entry_exit_and_exit_hold():
    assert decide_pass(read(), None, 1500, context=ctx()).reason is Reason.FORGED
    assert decide_pass(read(), vp(single=False), 1500, used=True, context=ctx()).granted
    # A used single-entry pass still lets the visitor out...
    assert decide_pass(read("out"), vp(), 1500, used=True, context=ctx()).granted
    # ...unless the host has not signed off (the visit's exit hold, pushed by the office).
    held = decide_pass(read("out"), vp(), 1500, attrs={"settled": False}, context=ctx())
    assert held.reason is Reason.SETTLEMENT_REQUIRED
    # The pass's zones rule, whatever zones the stored visit says.
    d = decide_pass(read(), vp(), 1500, attrs={"zones": ["workshop"]}, context=ctx())
    assert d.granted


zones = st.lists(st.sampled_from(["lobby", "lab", "workshop"]), max_size=3).map(tuple)


@given(
    zones,
    st.floats(0, 3000),
    st.floats(0, 3000),
    st.floats(0, 3000),
    st.sampled_from(["lobby", "lab", "workshop", ""]),
    st.sampled_from(["in", "out"]),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_a_grant_only_inside_the_window_zone_and_unrevoked(
    zs, nb, na, now, zone, direction, single, revoked, used
):
    p = vp(zones=zs, not_before=nb, not_after=na, single=single)
    d = decide_pass(read(direction), p, now, revoked=revoked, used=used, context=ctx(zone))
    if d.granted:
        assert nb <= now < na
        assert zone in zs
        assert not revoked
        assert not (single and used and direction == "in")
    assert not decide_pass(read(direction), None, now, context=ctx(zone)).granted
