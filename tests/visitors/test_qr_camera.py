"""QR passes read by the door camera from the same frames as faces (edgegate/face/qr.py):
simulated frames with the pass rendered in, with sensor noise, perspective and blur. The
whole path through a door daemon's camera is in test_visit_e2e.py."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegate.contract import signing
from edgegate.contract.visitor_pass import PassToken, encode_pass
from edgegate.face.qr import MAX_STILL_SECONDS, QrScanner
from edgegate.sim import camera as cam

# A fixed key and time: the same token, so the same QR image, on every run (a random one
# would make the smaller cases pass or fail by the luck of its pattern).
SIGNER = signing.Signer(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
NOW = 1_900_000_000


def token(pid: str, zones: tuple[str, ...] = ("lobby",)) -> str:
    return encode_pass(SIGNER, PassToken(pid, "V7", zones, NOW - 60, NOW + 3600, False))


def presentation(text: str, size: int, tilt: float, blur: int, noise: float) -> list:
    """A pass held up for a third of a second: 5 frames, each with its own sensor noise."""
    frame = cam.with_qr(cam.blank_frame(), text, size, tilt=tilt)
    if blur:
        frame = cam.blur(frame, blur)
    return [cam.sensor_noise(frame, noise, seed=size + k) for k in range(5)]


@pytest.mark.parametrize(
    ("size", "tilt", "blur", "noise"),
    [(260, 0.0, 0, 4), (260, 0.2, 3, 8), (300, 0.3, 5, 6), (240, 0.1, 0, 6)],
)
def test_a_pass_held_up_to_the_camera_is_read(size, tilt, blur, noise):
    # OpenCV's detector misses a frame now and then (a few percent, by the noise pattern):
    # a pass is in view for many frames, so a presentation is read, and never misread.
    text = token("Pcam1234")
    scanner = QrScanner(hold_off=0)
    got = [
        scanner.scan(f, float(i)) for i, f in enumerate(presentation(text, size, tilt, blur, noise))
    ]
    assert text in got and set(got) <= {text, None}


def test_a_pass_in_view_counts_once_per_hold_off():
    text = token("Pcam1234")
    frame = next(f for f in presentation(text, 260, 0.0, 0, 4) if QrScanner(0).scan(f, 0) == text)
    scanner = QrScanner(hold_off=3.0)
    assert scanner.scan(frame, 100.0) == text
    # Held in view: once; the hold-off slides with each sighting (as a held card's does).
    assert scanner.scan(frame, 101.0) is None
    assert scanner.scan(frame, 103.5) is None
    assert scanner.scan(frame, 106.6) == text  # shown again after 3 s out of view
    assert scanner.scan(cam.sensor_noise(cam.blank_frame(), 6), 107.0) is None
    assert scanner.frames == 5 and scanner.total_ms > 0


@pytest.mark.parametrize("size", [160, 240, 300])
def test_still_frames_are_not_rescanned_but_a_pass_shown_is_read_at_once(size):
    """The motion gate: an unchanged empty scene is scanned once (and again after
    MAX_STILL_SECONDS), a pass appearing in it is decoded on its first frame, and a pass
    shown again after leaving is seen at once (the hold-off, not the gate, counts it once)."""
    text = token("Pcam1234")
    scene = cam.blank_frame()
    scanner = QrScanner(hold_off=0)
    empty = [cam.sensor_noise(scene, 4, seed=k) for k in range(4)]
    assert [scanner.scan(f, 10.0 + i * 0.1) for i, f in enumerate(empty)] == [None] * 4
    assert (scanner.frames, scanner.gate.skipped) == (1, 3)
    assert scanner.scan(empty[0], 10.0 + MAX_STILL_SECONDS + 0.1) is None
    assert scanner.frames == 2  # rescanned after MAX_STILL_SECONDS of stillness
    shown = cam.sensor_noise(cam.with_qr(scene, text, size, tilt=0.1), 4, seed=99)
    assert scanner.scan(shown, 12.0) == text
    assert scanner.scan(shown, 12.1) == text  # in view: scanned every frame
    assert scanner.scan(empty[1], 12.2) is None
    assert scanner.scan(shown, 12.3) == text


@settings(max_examples=20, deadline=None)
@given(
    st.integers(160, 300),
    st.floats(0.25, 0.75),
    st.floats(0.35, 0.65),
    st.floats(0.0, 0.2),
    st.integers(0, 2**16),
)
def test_the_motion_gate_never_skips_a_pass_coming_into_a_still_scene(size, x, y, tilt, seed):
    """Wherever a pass appears in a scene the gate has been skipping, that frame is scanned."""
    scene = cam.sensor_noise(cam.blank_frame(), 4, seed=seed)
    scanner = QrScanner(hold_off=0)
    scanner.scan(scene, 0.0)
    assert scanner.scan(cam.sensor_noise(cam.blank_frame(), 4, seed=seed + 1), 0.1) is None
    assert scanner.gate.skipped == 1
    shown = cam.with_qr(scene, token("Pgate"), size, center=(x, y), tilt=tilt)
    scanner.scan(shown, 0.2)
    assert scanner.frames == 2  # scanned, not skipped
