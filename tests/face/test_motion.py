"""The motion gate in front of face detection: skips only what did not change."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from edgegate.face.motion import MotionGate, thumbnail
from edgegate.face.pipeline import FacePipeline, Settings
from edgegate.sim.camera import sensor_noise

_seed = iter(range(10**6))


def noisy(frame: np.ndarray, sigma: float = 3.0) -> np.ndarray:
    """A frame as a real sensor delivers it: the same scene, fresh noise every frame."""
    return sensor_noise(frame, sigma, seed=next(_seed))


def scene(seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 200, (12, 16, 3), dtype=np.uint8)
    return np.kron(base, np.ones((40, 40, 1), np.uint8))  # 480x640, blocky "corridor"


def test_sensor_noise_is_still_and_a_new_object_is_not() -> None:
    gate = MotionGate(0.005, 0.5)
    first = scene()
    gate.detected(thumbnail(noisy(first)), 0.0)
    assert all(gate.still(thumbnail(noisy(first, 4.0)), 0.01 * i) for i in range(1, 20))
    entered = first.copy()
    entered[200:300, 300:380] = 255 - entered[200:300, 300:380]  # 100x80: a small face
    assert not gate.still(thumbnail(noisy(entered)), 0.25)


def test_slow_change_adds_up_against_the_last_detected_frame() -> None:
    gate = MotionGate(0.005, 10.0)
    frame = scene().astype(np.int16)
    gate.detected(thumbnail(frame.astype(np.uint8)), 0.0)
    skipped = 0
    for step in range(1, 40):
        frame[100:260, 200:360] += 2  # 2 grey levels a frame: never a jump
        if not gate.still(thumbnail(np.clip(frame, 0, 255).astype(np.uint8)), step * 0.01):
            break
        skipped += 1
    else:
        pytest.fail("a change of 80 grey levels over a large area was never noticed")
    assert 3 <= skipped <= 8  # noticed once it passed 12 levels, not before


def test_detection_is_forced_after_max_seconds_and_off_at_zero() -> None:
    t = thumbnail(scene())
    gate = MotionGate(0.005, 0.5)
    gate.detected(t, 0.0)
    assert gate.still(t, 0.49) and not gate.still(t, 0.5) and not gate.still(t, -1.0)
    off = MotionGate(0.0, 0.5)
    off.detected(t, 0.0)
    assert not off.still(t, 0.1)
    fresh = MotionGate(0.005, 0.5)
    assert not fresh.still(t, 0.0)  # nothing detected yet


@settings(max_examples=300)
@example(top=30, left=30, h=100, w=80, shift=40, seed=3)  # a hue change a grey gate missed
@given(
    top=st.integers(0, 480 - 100),
    left=st.integers(0, 640 - 80),
    h=st.integers(100, 200),
    w=st.integers(80, 160),
    shift=st.integers(40, 200),
    seed=st.integers(0, 50),
)
def test_a_face_sized_change_anywhere_is_never_skipped(
    top: int, left: int, h: int, w: int, shift: int, seed: int
) -> None:
    """Whatever enters a region the size of the smallest decided face (100 px tall) and
    changes it by 40+ grey levels makes the detector run."""
    base = scene(seed)
    gate = MotionGate(0.005, 0.5)
    gate.detected(thumbnail(base), 0.0)
    changed = base.astype(np.int16)
    region = changed[top : top + h, left : left + w]
    region[:] = np.where(region > 127, region - shift, region + shift)
    assert not gate.still(thumbnail(np.clip(changed, 0, 255).astype(np.uint8)), 0.1)


@pytest.mark.face
def test_pipeline_on_noisy_frames_skips_only_unchanged_ones(frames, enrolled) -> None:
    """Real photos with fresh sensor noise per frame: the empty corridor and the person
    standing still reuse the detection; the person arriving and the second person stepping
    in do not; the decisions are those of the pipeline that detects every frame."""
    from edgegate.face.gallery import Gallery
    from edgegate.sim import camera as cam

    g = Gallery([("obama", enrolled["obama"])])
    blank = cam.blank_frame()
    seq = [noisy(f, 3.0) for f in [blank] * 3 + [frames["obama2"]] * 3]
    gated = FacePipeline(Settings(), g)
    every = FacePipeline(Settings(motion_fraction=0.0), g)
    a = [gated.process(f, now=i / 15) for i, f in enumerate(seq)]
    b = [every.process(f, now=i / 15) for i, f in enumerate(seq)]
    assert [r.detected for r in a] == [True, False, False, True, False, False]
    assert all(r.detected for r in b)
    assert [r.status for r in a] == [r.status for r in b]
    assert [o for r in a for o in r.outcomes] == [o for r in b for o in r.outcomes]
    assert a[4].match is not None and a[4].match.person == "obama"
    # Someone steps in behind while obama waits: fresh boxes, the dominance rule applies.
    two = [noisy(frames["obama_with_biden_behind"], 3.0) for _ in range(2)]
    p = FacePipeline(Settings(), g)
    r0 = p.process(seq[3], now=0.0)
    r1 = p.process(two[0], now=0.07)
    assert r0.detected and r1.detected and r1.faces == 2
