"""QR passes read by the door camera from the same frames as faces (edgegate/face/qr.py):
simulated frames with the pass rendered in, with sensor noise, perspective and blur. The
whole path through a door daemon's camera is in test_visit_e2e.py."""

from __future__ import annotations

import time

import pytest

from edgegate.contract import signing
from edgegate.contract.visitor_pass import PassToken, encode_pass
from edgegate.face.qr import QrScanner
from edgegate.sim import camera as cam

SIGNER = signing.Signer(signing.generate())
NOW = int(time.time())


def token(pid: str, zones: tuple[str, ...] = ("lobby",)) -> str:
    return encode_pass(SIGNER, PassToken(pid, "V7", zones, NOW - 60, NOW + 3600, False))


@pytest.mark.parametrize(
    ("size", "tilt", "blur", "noise"),
    [(260, 0.0, 0, 4), (260, 0.2, 3, 8), (300, 0.3, 5, 6), (230, 0.1, 0, 6)],
)
def test_a_pass_held_up_to_the_camera_is_read(size, tilt, blur, noise):
    text = token("Pcam1234")
    frame = cam.with_qr(cam.blank_frame(), text, size, tilt=tilt)
    if blur:
        frame = cam.blur(frame, blur)
    frame = cam.sensor_noise(frame, noise, seed=size)
    scanner = QrScanner(hold_off=3.0)
    assert scanner.scan(frame, 100.0) == text
    # Held in view: once; the hold-off slides with each sighting (as a held card's does).
    assert scanner.scan(frame, 101.0) is None
    assert scanner.scan(frame, 103.5) is None
    assert scanner.scan(frame, 106.6) == text  # shown again after 3 s out of view
    assert scanner.scan(cam.sensor_noise(cam.blank_frame(), 6), 107.0) is None
    assert scanner.frames == 5 and scanner.total_ms > 0
