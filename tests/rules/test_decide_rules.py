"""The rules in the pure decision core: order, and the existing reasons unchanged."""

from __future__ import annotations

from datetime import UTC

from hypothesis import given
from hypothesis import strategies as st

from edgegate.core import CredentialRecord, DoorMode, DoorPolicy, Reason, RuleContext, decide
from edgegate.core.passback import PassbackMode, Presence
from edgegate.core.schedule import Window
from edgegate.hardware.base import CredentialKind, CredentialRead, Direction

from .conftest import T0

IN = CredentialRead(CredentialKind.CARD, "0F00BC614E", "entry")
OUT = CredentialRead(CredentialKind.CARD, "0F00BC614E", "exit", Direction.OUT)


def rec(**attrs):
    return CredentialRecord(kind="card", value="0F00BC614E", person_id="p", attrs=attrs)


def test_no_context_is_the_old_behaviour():
    assert decide(IN, rec(groups=["x"], zones=["nowhere"], settled=False), T0).granted
    assert decide(IN, None, T0).reason is Reason.UNKNOWN


def test_lockout_comes_first_even_for_unknown_cards():
    ctx = RuleContext(reader_locked_until=T0 + 5)
    assert decide(IN, None, T0, context=ctx).reason is Reason.LOCKOUT
    assert decide(IN, rec(), T0, context=ctx).reason is Reason.LOCKOUT


def test_validity_before_rules():
    ctx = RuleContext(mode=DoorMode.LOCKDOWN)
    r = CredentialRecord(kind="card", value="x", person_id="p", enabled=False)
    assert decide(IN, r, T0, context=ctx).reason is Reason.REVOKED


def test_rules_in_order():
    policy = DoorPolicy(
        zone="lab",
        door_groups=frozenset({"staff"}),
        windows=(Window("staff", frozenset({0}), 8 * 60, 9 * 60),),
        tz=UTC,
        lockdown_groups=frozenset({"sec"}),
    )
    lockdown = RuleContext(policy, DoorMode.LOCKDOWN)
    normal = RuleContext(policy)
    # T0 is Monday 10:00 UTC: outside the staff window.
    assert decide(IN, rec(groups=["staff"]), T0, context=lockdown).reason is Reason.LOCKDOWN
    assert decide(IN, rec(zones=["lobby"]), T0, context=normal).reason is Reason.ZONE
    assert decide(IN, rec(groups=["guests"]), T0, context=normal).reason is Reason.GROUP
    assert decide(IN, rec(groups=["staff"]), T0, context=normal).reason is Reason.SCHEDULE
    assert decide(IN, rec(groups=["staff"]), T0 - 5400, context=normal).granted
    ok = rec(groups=["staff"], settled=False)
    assert decide(OUT, ok, T0 - 5400, context=normal).reason is Reason.SETTLEMENT_REQUIRED
    assert decide(IN, ok, T0 - 5400, context=normal).granted  # the hold is on exit only


@given(
    mode=st.sampled_from(list(PassbackMode)),
    last=st.sampled_from(["in", "out", None]),
    direction=st.sampled_from([IN, OUT]),
    age=st.floats(0, 7200),
)
def test_passback_modes(mode, last, direction, age):
    policy = DoorPolicy(passback=mode, passback_seconds=1800)
    presence = None if last is None else Presence("a", last, T0 - age)
    d = decide(direction, rec(), T0, context=RuleContext(policy, presence=presence))
    repeat = last == str(direction.direction)
    if mode is PassbackMode.OFF or not repeat or (mode is PassbackMode.TIMED and age >= 1800):
        assert d.granted and d.flags == ()
    elif mode is PassbackMode.SOFT:
        assert d.granted and d.flags == ("passback",)
    else:
        assert not d.granted and d.reason is Reason.PASSBACK
