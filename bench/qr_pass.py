"""Visitor QR passes at the door camera: detection cost per frame, and QR shown -> relay.

1. The decoder as the face process runs it (edgegate/face/qr.py: zxing-cpp; its motion gate
   off here, so every frame is decoded), beside OpenCV's ``cv2.QRCodeDetector`` (what it used
   before), on 640x480 frames: an empty noisy frame, a frame with a face and no code, a frame
   with a face and a pass (perspective, blur and noise as in the tests).
2. The real daemon with the camera playing a 15 fps video of a person (enrolled, so the face
   pipeline works and grants on the same frames) holding up a new pass every 1.2 s: from the
   arrival of the frame with the code (the capture thread's clock) to the lock pin driven, for
   every pass.

    PYTHONPATH=. .venv/bin/python bench/qr_pass.py [--passes 40]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from card_latency import pct
from gpiozero.pins.mock import MockFactory

from edgegate.config import parse
from edgegate.contract import signing
from edgegate.contract.visitor_pass import PassToken, encode_pass
from edgegate.daemon.app import Daemon
from edgegate.face.credentials import put_face
from edgegate.face.encode import encodings_from_images
from edgegate.face.qr import QrScanner
from edgegate.sim import camera as cam
from edgegate.sim.broker import free_port
from edgegate.store.db import open_db, transaction
from edgegate.store.sealed import load_key

REPO = Path(__file__).resolve().parents[1]
FPS = 15


def summary(values: list[float]) -> str:
    return f"p50 {pct(values, 50):.1f} ms, p99 {pct(values, 99):.1f} ms (n={len(values)})"


def detection(face_frame, text: str, n: int = 40) -> None:
    with_qr = cam.sensor_noise(
        cam.blur(cam.with_qr(face_frame, text, 240, center=(0.78, 0.6), tilt=0.15), 3), 5
    )
    cases = {
        "empty frame": cam.sensor_noise(cam.blank_frame(), 5),
        "face, no code": face_frame,
        "face and a pass": with_qr,
    }
    scanner = QrScanner(hold_off=0, motion_fraction=0)
    import cv2

    opencv = cv2.QRCodeDetector()

    def opencv_scan(frame, _now: float) -> None:
        opencv.detectAndDecode(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY))

    for label, scan in (("zxing-cpp", scanner.scan), ("OpenCV", opencv_scan)):
        for name, frame in cases.items():
            times = []
            for _ in range(n):
                t0 = time.perf_counter()
                scan(frame, time.monotonic())
                times.append((time.perf_counter() - t0) * 1000)
            print(f"  {label:<9} {name:<16} {summary(times)}")
    assert scanner.scan(with_qr, time.monotonic() + 10) == text


async def relay(tmp: Path, face_frame, enc, passes: int) -> list[float]:
    key = signing.generate()
    signer = signing.Signer(key)
    now = int(time.time())
    tokens = [
        encode_pass(signer, PassToken(f"P{i:04d}", "V1", ("lobby",), now - 60, now + 7200, False))
        for i in range(passes)
    ]
    frames = [face_frame] * 15
    for i, text in enumerate(tokens):
        held = cam.blur(cam.with_qr(face_frame, text, 240, center=(0.78, 0.6), tilt=0.15), 3)
        frames += [cam.sensor_noise(held, 5, seed=i * 10 + k) for k in range(6)]
        frames += [cam.sensor_noise(face_frame, 5, seed=i * 10 + 7)] * 12
    video = cam.write_video(tmp / "door.avi", frames, FPS)
    cfg = parse(
        {
            "door": {"site": "hq", "id": "d", "zone": "lobby", "unlock_seconds": 0.2},
            "gpio": {"pin_factory": "mock", "lock": 17},
            "camera": {"source": str(video), "qr": True, "qr_hold_off_seconds": 0.5},
            # No broker needed: the office key is what verifies passes.
            "mqtt": {
                "port": free_port(),
                "central_public_keys": [signing.public_text(key.public_key())],
            },
            "daemon": {"watchdog": False},
            "storage": {"path": str(tmp / "door.db")},
        },
        tmp / "door.toml",
    )
    conn = open_db(cfg.storage.path)
    with transaction(conn):
        put_face(conn, load_key(cfg.storage.path, cfg.storage.key_file), "obama", enc)
    conn.close()
    daemon = Daemon(cfg, pin_factory=MockFactory())
    samples: list[float] = []
    faces = 0

    def on_event(ev) -> None:
        nonlocal faces
        if ev.type == "access_granted" and ev.payload.get("kind") == "qr":
            samples.append(daemon.door.latencies_ms[-1])  # appended just before this event
        elif ev.type == "access_granted" and ev.payload.get("kind") == "face":
            faces += 1

    daemon.door.add_listener(on_event)
    await daemon.start()
    try:
        deadline = time.monotonic() + len(frames) / FPS + 60
        while len(samples) < passes and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        stats = daemon.camera.pipeline_stats if daemon.camera else {}
    finally:
        await daemon.stop()
    print(f"  passes granted {len(samples)}/{passes}, face grants on the same frames {faces}")
    if stats.get("qr_frames"):
        print(f"  face process: {stats['qr_frames']} frames scanned for codes, "
              f"{stats.get('qr_skipped', 0)} skipped (nothing moved), "
              f"{stats['qr_ms'] / stats['qr_frames']:.1f} ms per scanned frame")  # fmt: skip
    return samples


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--passes", type=int, default=40)
    args = ap.parse_args()
    faces = cam.find_testdata(REPO)
    face_frame = cam.door_frame(faces / "obama2.jpg", 170, center=(0.35, 0.45))
    enc = encodings_from_images([faces / "obama.jpg"])
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    text = encode_pass(
        signing.Signer(signing.generate()),
        PassToken("P0001", "V1", ("lobby",), 0, 2**31, False),
    )
    print(f"token {len(text)} characters")
    detection(face_frame, text)
    with tempfile.TemporaryDirectory() as tmp:
        samples = asyncio.run(relay(Path(tmp), face_frame, enc, args.passes))
    print(f"  QR shown -> relay: {summary(samples)}")
    print(f"load average after {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
