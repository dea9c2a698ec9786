from hypothesis import given
from hypothesis import strategies as st

from edgegate.core import CredentialRecord, Reason, decide
from edgegate.hardware.base import CredentialKind, CredentialRead

NOW = 1_800_000_000.0
READ = CredentialRead(CredentialKind.CARD, "0F00BC614E", "entry")


def rec(**kw):
    return CredentialRecord(kind="card", value="0F00BC614E", person_id="alice", **kw)


def test_unknown():
    d = decide(READ, None, NOW)
    assert not d.granted and d.reason is Reason.UNKNOWN and d.person_id is None


def test_granted():
    d = decide(READ, rec(), NOW)
    assert d.granted and d.reason is Reason.GRANTED and d.person_id == "alice"
    assert d.event_type == "access_granted"


def test_reasons_in_order():
    assert decide(READ, rec(enabled=False, valid_until=NOW - 1), NOW).reason is Reason.REVOKED
    assert decide(READ, rec(valid_until=NOW), NOW).reason is Reason.EXPIRED
    assert decide(READ, rec(valid_from=NOW + 1), NOW).reason is Reason.NOT_YET_VALID
    assert decide(READ, rec(person_enabled=False), NOW).reason is Reason.PERSON_DISABLED
    assert decide(READ, rec(person_valid_until=NOW - 5), NOW).reason is Reason.EXPIRED
    assert decide(READ, rec(person_valid_from=NOW + 5), NOW).reason is Reason.NOT_YET_VALID
    assert decide(READ, rec(valid_from=NOW, valid_until=NOW + 1), NOW).granted


def test_min_score():
    low = CredentialRead(CredentialKind.FINGER, "3", "f", score=10)
    assert decide(low, rec(), NOW, min_score=50).reason is Reason.LOW_SCORE
    high = CredentialRead(CredentialKind.FINGER, "3", "f", score=80)
    assert decide(high, rec(), NOW, min_score=50).granted


opt_ts = st.one_of(st.none(), st.floats(NOW - 1e6, NOW + 1e6))


@given(
    enabled=st.booleans(),
    person_enabled=st.booleans(),
    vf=opt_ts,
    vu=opt_ts,
    pvf=opt_ts,
    pvu=opt_ts,
)
def test_grant_only_when_everything_allows(enabled, person_enabled, vf, vu, pvf, pvu):
    r = rec(
        enabled=enabled,
        person_enabled=person_enabled,
        valid_from=vf,
        valid_until=vu,
        person_valid_from=pvf,
        person_valid_until=pvu,
    )
    d = decide(READ, r, NOW)

    def inside(a, b):
        return (a is None or a <= NOW) and (b is None or b > NOW)

    assert d.granted == (enabled and person_enabled and inside(vf, vu) and inside(pvf, pvu))
    assert d.granted == (d.reason is Reason.GRANTED)
