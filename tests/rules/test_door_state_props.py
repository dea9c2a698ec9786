"""Property-based tests of the pure door state machine: whatever the inputs, the lock is
released only for a grant, an exit request, an emergency, an attended (staff) release or a
free-access window in normal mode, and it never stays released after those reasons have ended
(bar an obstruction holding an open gate)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from edgegate.core.decision import DoorMode
from edgegate.core.door_state import Action, DoorState, In, Input, MachineConfig, step

RELEASING = {In.GRANT, In.EXIT, In.STAFF_RELEASE, In.FIRE_ON, In.SET_MODE, In.FREE_ON}
ALL = list(In)
MODES = list(DoorMode)


class DoorMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.cfg = MachineConfig(
            turnstile=False, unlock_seconds=3, held_open_seconds=10, prealarm_seconds=4
        )
        self.state = DoorState()
        self.now = 1000.0
        self.lock_released = False  # what the actions said, tracked independently

    def _apply(self, inp: Input) -> None:
        before = self.state
        res = step(self.state, inp, self.cfg)
        for action in res.actions:
            if action is Action.RELEASE:
                assert inp.kind in RELEASING, f"{inp.kind} released the lock"
                if inp.kind is In.SET_MODE:
                    # emergency, or back to normal inside a free-access window
                    assert inp.mode is DoorMode.EMERGENCY or (
                        before.free and inp.mode is DoorMode.NORMAL
                    )
                if inp.kind is In.FREE_ON:
                    assert before.mode is DoorMode.NORMAL
                if inp.kind is In.GRANT:
                    # attended mode waits for staff instead
                    assert before.mode is not DoorMode.ATTENDED or before.emergency
                self.lock_released = True
            else:
                self.lock_released = False
        self.state = res.state
        types = [t for t, _ in res.events]
        if In.CONTACT_OPEN is inp.kind and "door_forced" in types:
            assert not self.state.lock_released and not self.state.emergency

    @rule(
        kind=st.sampled_from(ALL),
        dt=st.floats(0, 12, allow_nan=False),
        mode=st.sampled_from(MODES),
    )
    def any_input(self, kind: In, dt: float, mode: DoorMode) -> None:
        self.now += dt
        self._apply(Input(kind, self.now, person="p", mode=mode, source="prop"))

    @rule(dt=st.floats(0, 12, allow_nan=False))
    def time_passes(self, dt: float) -> None:
        self.now += dt
        self._apply(Input(In.TICK, self.now))

    @precondition(lambda self: not self.state.fire)
    @rule()
    def everything_ends(self) -> None:
        """Clear the obstruction, reset any emergency, let all timers run out: locked."""
        self._apply(Input(In.OBSTRUCTION_OFF, self.now))
        self._apply(Input(In.FREE_OFF, self.now))
        self._apply(Input(In.RESET, self.now, source="prop"))
        self.now += self.cfg.unlock_seconds + 0.001
        self._apply(Input(In.TICK, self.now))
        assert not self.lock_released and not self.state.lock_released

    @invariant()
    def lock_only_for_a_reason(self) -> None:
        s = self.state
        assert self.lock_released == s.lock_released
        if s.lock_released:
            assert (
                s.emergency
                or s.release_cause in ("grant", "exit", "attended")
                or s.obstructed
                or s.free_access
            )
        if s.emergency or s.free_access:
            assert s.lock_released  # an emergency (or a free window) holds the lock released
        if s.fire:
            assert s.emergency  # the fire input is never without its emergency

    @invariant()
    def release_is_bounded(self) -> None:
        s = self.state
        if s.release_until is not None:
            assert s.release_until - self.now <= self.cfg.unlock_seconds + 1e-9


TestDoorMachine = DoorMachine.TestCase
TestDoorMachine.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(ALL), st.floats(0, 5, allow_nan=False), st.booleans()),
        max_size=40,
    )
)
def test_turnstile_never_lets_two_through_on_one_grant(inputs):
    cfg = MachineConfig(turnstile=True, unlock_seconds=3)
    s, now = DoorState(), 0.0
    grants = authorised = 0
    for kind, dt, _ in inputs:
        now += dt
        if kind in (In.FIRE_ON, In.SET_MODE, In.FREE_ON):
            continue  # emergencies and free-access windows open the gate for everyone
        res = step(s, Input(kind, now, person="p"), cfg)
        s = res.state
        grants += kind in (In.GRANT, In.EXIT, In.STAFF_RELEASE)
        types = [t for t, _ in res.events]
        if kind is In.PASSAGE:
            # Every passage is journaled; one not covered by a grant is tailgating.
            assert types.count("passage") == 1
            authorised += "tailgating" not in types
        else:
            assert "passage" not in types and "tailgating" not in types
    assert authorised <= grants


@given(st.lists(st.sampled_from([In.FIRE_ON, In.FIRE_OFF, In.RESET, In.TICK]), max_size=30))
def test_emergency_ends_only_after_the_input_clears_and_a_reset(seq):
    s, now = DoorState(), 0.0
    cfg = MachineConfig()
    for kind in seq:
        now += 1
        was = s
        res = step(s, Input(kind, now), cfg)
        s = res.state
        if was.emergency and not s.emergency:
            assert kind is In.RESET and not was.fire
            assert ("emergency_off", {"source": "reset"}) in res.events
