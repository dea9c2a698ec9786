"""QR passes read by the door camera from the same frames as faces (edgegate/face/qr.py):
simulated frames with the pass rendered in, with sensor noise, perspective and blur."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from edgegate.config import parse
from edgegate.contract import signing
from edgegate.contract.visitor_pass import PassToken, encode_pass
from edgegate.face.qr import QrScanner
from edgegate.sim import camera as cam
from edgegate.sim.broker import Broker
from tests.conftest import running_door

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


@pytest.mark.face
@pytest.mark.broker
@pytest.mark.slow
def test_camera_door_decides_passes(tmp_path: Path, broker: Broker):
    frames = []
    blank = cam.blank_frame()
    for i, text in enumerate([token("Pgood"), token("Pother", ("workshop",))]):
        frames += [cam.sensor_noise(blank, 5, seed=100 * i + k) for k in range(8)]
        held = cam.blur(cam.with_qr(blank, text, 270, tilt=0.15), 3)
        frames += [cam.sensor_noise(held, 5, seed=100 * i + 50 + k) for k in range(12)]
    frames += [blank] * 60
    video = cam.write_video(tmp_path / "door.avi", frames, 15)
    key = signing.public_text(SIGNER._key.public_key())
    cfg = parse(
        {
            "door": {"site": "hq", "id": "d", "zone": "lobby", "unlock_seconds": 0.3},
            "gpio": {"pin_factory": "mock"},
            "camera": {"source": str(video), "qr": True},
            "mqtt": {"host": broker.host, "port": broker.port, "central_public_keys": [key]},
            "daemon": {"watchdog": False},
            "storage": {"path": str(tmp_path / "door.db")},
        },
        tmp_path / "door.toml",
    )

    async def scenario() -> None:
        async with running_door(tmp_path, config=cfg) as door:
            got = []
            while len(got) < 2:
                ev = await door.next_event(60)
                if ev.type in ("access_granted", "access_denied"):
                    got.append(ev)
            assert got[0].type == "access_granted", got[0].payload
            assert (got[0].payload["kind"], got[0].payload["credential"]) == ("qr", "Pgood")
            assert got[0].payload["reader"] == "camera"
            assert got[1].payload["reason"] == "zone"
            await asyncio.sleep(2.5)  # the face process reports its counters every 2 s
            stats = door.daemon.camera.pipeline_stats
            assert stats.get("qr_frames", 0) > 0 and stats["qr_ms"] > 0

    asyncio.run(asyncio.wait_for(scenario(), 120))
