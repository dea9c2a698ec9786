"""SafeWallClock: never earlier than what the door knew plus the time run since; the wall
clock itself once it has caught up (property-tested with driven clocks)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from edgegate.daemon.wall_clock import TOLERANCE, SafeWallClock


class Driven:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@given(
    floor=st.floats(1e9, 2e9),
    offset=st.floats(-1e6, 1e6),
    runs=st.lists(st.tuples(st.floats(0, 1e4), st.floats(-1e5, 1e5)), max_size=20),
)
def test_never_before_the_floor_and_the_wall_clock_once_caught_up(floor, offset, runs):
    wall, mono = Driven(floor + offset), Driven(100.0)
    clock = SafeWallClock(floor, wall=wall, monotonic=mono)
    for elapsed, step in runs:
        mono.t += elapsed
        wall.t += elapsed + step
        now = clock()
        lower = floor + (mono.t - 100.0)
        assert now >= lower - TOLERANCE
        assert now >= wall.t
        if wall.t >= lower - TOLERANCE:
            assert now == wall.t and clock.behind() == 0
        else:
            assert clock.behind() > 0
