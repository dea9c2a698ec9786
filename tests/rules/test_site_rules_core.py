"""Property tests of the site rules in the pure core (issue 20): postures by the clock with
first-to-arrive, the two-person rule, the offline policy, interlock, presence merging across
an area's doors, and the feedback shown to people."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from edgegate.core.areas import Passage, newer, occupancy
from edgegate.core.decision import CredentialRecord, DoorPolicy, Reason, RuleContext, decide
from edgegate.core.feedback import SIGNALS, TEXTS, Outcome, outcome_for, text_for
from edgegate.core.interlock import PeerState, interlock_allows
from edgegate.core.offline import OfflinePolicy
from edgegate.core.posture import Posture, PostureWindow, first_arrival, posture_at
from edgegate.core.reads import CredentialKind, CredentialRead
from edgegate.core.two_person import Pending, two_person

WEEKDAYS = frozenset(range(5))
MONDAY = datetime(2026, 11, 30, 0, 0)  # a Monday

local_times = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31))


def lobby(first: frozenset[str] = frozenset()) -> PostureWindow:
    return PostureWindow(Posture.FREE, WEEKDAYS, 8 * 60, 18 * 60, first_to_arrive=first)


# --- postures ---------------------------------------------------------------------------------
@given(local_times)
def test_outside_every_window_the_door_is_card_only(local: datetime) -> None:
    window = lobby()
    now = posture_at([window], frozenset(), local)
    inside = local.weekday() < 5 and 8 <= local.hour < 18
    assert now.posture is (Posture.FREE if inside else Posture.CARD)


def test_first_window_in_config_order_wins() -> None:
    holiday = date(2026, 12, 25)  # a Friday
    lockdown = PostureWindow(Posture.LOCKDOWN, frozenset(range(7)), 0, 1440, only_holidays=True)
    free = lobby()
    at = datetime(2026, 12, 25, 10, 0)
    assert posture_at([lockdown, free], frozenset({holiday}), at).posture is Posture.LOCKDOWN
    # The lobby's window does not apply on a holiday unless it says so.
    assert posture_at([free], frozenset({holiday}), at).posture is Posture.CARD
    # The holiday-only window never applies on an ordinary day.
    assert posture_at([lockdown], frozenset(), datetime(2026, 12, 24, 10)).posture is Posture.CARD


@given(st.integers(0, 6), st.integers(0, 1439), st.integers(1, 30))
def test_first_to_arrive_opens_only_its_own_occurrence(day: int, minute: int, later: int) -> None:
    window = lobby(frozenset({"staff"}))
    local = MONDAY + timedelta(days=day, minutes=minute)
    before = posture_at([window], frozenset(), local)
    if not window.applies(local, False):
        assert before.posture is Posture.CARD and not before.waiting
        return
    # Nobody of the group has arrived: card only, waiting.
    assert before.posture is Posture.CARD and before.waiting
    # A visitor's grant opens nothing.
    assert first_arrival(before, {"visitors"}) is None
    opened = first_arrival(before, {"staff", "visitors"})
    assert opened is not None
    assert posture_at([window], frozenset(), local, opened).posture is Posture.FREE
    # The same occurrence stays open; the next day's starts closed again.
    next_day = posture_at([window], frozenset(), local + timedelta(days=later), opened)
    assert next_day.posture is Posture.CARD


def test_posture_state_names_the_end_and_who_opens_it() -> None:
    waiting = posture_at([lobby(frozenset({"staff"}))], frozenset(), MONDAY.replace(hour=9))
    assert waiting.as_state() == {
        "posture": "card",
        "posture_until": "18:00",
        "first_to_arrive": ["staff"],
    }
    assert posture_at([], frozenset(), MONDAY).as_state() == {"posture": "card"}


# --- two-person rule --------------------------------------------------------------------------
reads = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.floats(0, 20, allow_nan=False)), max_size=30
)


@given(reads, st.floats(0.5, 15, allow_nan=False))
def test_two_person_grants_only_a_second_different_person_in_time(
    steps: list[tuple[str, float]], seconds: float
) -> None:
    pending: Pending | None = None
    now = 0.0
    for person, gap in steps:
        now += gap
        before = pending
        result = two_person(pending, person, now, seconds)
        if result.granted:
            # Granted: someone else was waiting, and not for too long; the wait is cleared.
            assert before is not None and before.person_id != person
            assert 0 <= now - before.since <= seconds
            assert result.partner == before.person_id and result.pending is None
        else:
            # Alone: this person now waits, from now.
            assert result.pending == Pending(person, now)
            ok = before is not None and before.person_id != person
            assert not (ok and now - before.since <= seconds)
        pending = result.pending


def test_one_person_badging_twice_is_never_two() -> None:
    first = two_person(None, "a", 0.0, 10)
    again = two_person(first.pending, "a", 1.0, 10)
    assert not again.granted and again.pending == Pending("a", 1.0)


# --- offline policy ---------------------------------------------------------------------------
@given(
    st.frozensets(st.sampled_from(["staff", "visitors", "cleaners"])),
    st.frozensets(st.sampled_from(["staff", "visitors", "cleaners"])),
    st.one_of(st.none(), st.floats(0, 10_000, allow_nan=False)),
    st.floats(0, 5000, allow_nan=False),
)
def test_offline_policy_refuses_only_outside_groups_after_the_limit(
    groups: frozenset[str], allowed: frozenset[str], silent: float | None, after: float
) -> None:
    policy = OfflinePolicy(after, allowed)
    refused = policy.refuses(groups, silent)
    too_long = after > 0 and silent is not None and silent >= after
    assert policy.too_long(silent) is too_long
    assert refused is (too_long and bool(allowed) and not groups & allowed)


# --- interlock --------------------------------------------------------------------------------
@given(
    st.sampled_from(["locked", "released"]),
    st.sampled_from(["open", "closed", "unknown"]),
    st.booleans(),
)
def test_interlock_releases_only_beside_a_reachable_closed_locked_peer(
    lock: str, contact: str, reachable: bool
) -> None:
    allowed = interlock_allows(PeerState(lock, contact, reachable))
    assert allowed is (reachable and lock == "locked" and contact == "closed")
    assert interlock_allows(None) is False


# --- presence across an area's doors ----------------------------------------------------------
passages = st.lists(
    st.builds(
        Passage,
        person_id=st.just("p"),
        area=st.just("hall"),
        state=st.sampled_from(["in", "out"]),
        ts=st.integers(0, 5).map(float),
        door=st.sampled_from(["a", "b", "c"]),
        seq=st.integers(0, 3),
    ),
    min_size=1,
    max_size=6,
)


@given(passages)
def test_every_arrival_order_ends_in_the_same_presence(heard: list[Passage]) -> None:
    """Two doors that heard the same passages in different orders agree."""
    # A door's seq is unique: one (door, seq) is one passage.
    heard = list({(p.door, p.seq): p for p in heard}.values())
    outcomes = set()
    for order in itertools.islice(itertools.permutations(heard), 50):
        known: Passage | None = None
        for p in order:
            if newer(p, known):
                known = p
        outcomes.add(known)
    assert len(outcomes) == 1
    assert outcomes.pop() == max(heard, key=Passage.key)


def test_occupancy_counts_people_last_seen_in() -> None:
    presence = {
        "a": Passage("a", "hall", "in", 1, "d1"),
        "b": Passage("b", "hall", "out", 2, "d1"),
        "c": Passage("c", "hall", "in", 3, "d2"),
    }
    assert occupancy(presence) == 2


# --- telling people why -----------------------------------------------------------------------
def test_the_door_never_tells_unknown_from_revoked() -> None:
    shown = {(outcome_for(r), text_for(outcome_for(r))) for r in ("unknown", "revoked")}
    assert len(shown) == 1
    assert outcome_for("person_disabled") == outcome_for("unknown")


@given(st.text(max_size=20))
def test_an_unknown_reason_is_a_plain_denial(reason: str) -> None:
    known = {"granted", "expired", "not_yet_valid", "settlement_required", "offline", "zone"}
    known |= {"group", "schedule", "passback", "interlock", "low_score", "wrong_pin"}
    known |= {"pin_timeout", "no_pin", "lockout", "lockdown", "two_person"}
    if reason not in known:
        assert outcome_for(reason) is Outcome.DENIED


def test_every_outcome_has_a_text_in_every_language_and_a_signal() -> None:
    for language, texts in TEXTS.items():
        assert set(texts) == set(Outcome), language
        assert all(0 < len(t) <= 16 for t in texts.values()), language
    assert set(SIGNALS) == set(Outcome)
    assert text_for(Outcome.SEE_RECEPTION, "xx") == "See reception"


# --- the new rules inside decide() --------------------------------------------------------------
def _record(person: str, groups: list[str]) -> CredentialRecord:
    return CredentialRecord("card", f"C-{person}", person, attrs={"groups": groups})


def _read() -> CredentialRead:
    return CredentialRead(CredentialKind.CARD, "X", "entry")


@given(st.sampled_from(["a", "b"]), st.sampled_from(["a", "b"]), st.floats(0, 30))
def test_decide_two_person_pairs_two_people(first: str, second: str, gap: float) -> None:
    policy = DoorPolicy(two_person_seconds=10)
    one = decide(_read(), _record(first, []), 0, context=RuleContext(policy, mono_now=100))
    assert not one.granted and one.reason is Reason.TWO_PERSON
    ctx = RuleContext(policy, pending=Pending(first, 100), mono_now=100 + gap)
    two = decide(_read(), _record(second, []), 0, context=ctx)
    assert two.granted is (first != second and gap <= 10)
    assert two.partner == (first if two.granted else None)


def test_decide_a_refused_read_never_counts_as_one_of_two() -> None:
    policy = DoorPolicy(two_person_seconds=10, zone="lab")
    outsider = CredentialRecord("card", "C", "v", attrs={"zones": ["lobby"]})
    ctx = RuleContext(policy, mono_now=5)
    assert decide(_read(), outsider, 0, context=ctx).reason is Reason.ZONE


def test_decide_offline_too_long_refuses_visitors_keeps_staff() -> None:
    policy = DoorPolicy(offline=OfflinePolicy(600, frozenset({"staff"})))
    late = RuleContext(policy, office_silent_for=601)
    assert decide(_read(), _record("s", ["staff"]), 0, context=late).granted
    visitor = decide(_read(), _record("v", ["visitors"]), 0, context=late)
    assert visitor.reason is Reason.OFFLINE
    fresh = RuleContext(policy, office_silent_for=10)
    assert decide(_read(), _record("v", ["visitors"]), 0, context=fresh).granted


def test_decide_interlock_refuses_only_a_grant() -> None:
    shut = RuleContext(interlock_ok=False)
    assert decide(_read(), _record("a", []), 0, context=shut).reason is Reason.INTERLOCK
    assert decide(_read(), None, 0, context=shut).reason is Reason.UNKNOWN
    assert decide(_read(), _record("a", []), 0, context=RuleContext(interlock_ok=True)).granted
