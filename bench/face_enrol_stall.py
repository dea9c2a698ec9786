"""How long ``central serve``'s asyncio loop stalls while an operator enrols faces.

An asyncio loop ticks every 5 ms (as serve's loop serves the archive and the console) and
notes how late each tick is, while ``--enrolments`` face enrolments (the real test photos,
the real face_recognition) run the way the console runs them: on a worker thread
(``asyncio.to_thread``), either encoding in this process (``face_data_from_photos``, as
before) or handing the photos to the worker process (``FaceEncoderProcess``, now). Printed:
the ticks' lateness p50 / p99 / max per mode, and the time per enrolment.

    python bench/face_enrol_stall.py [--enrolments 20] [--photos obama,obama2,biden]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from edgegate.face.encode import face_data_from_photos
from edgegate.face.encode_process import FaceEncoderProcess
from edgegate.sim.camera import find_testdata

ROOT = Path(__file__).resolve().parents[1]
TICK = 0.005


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


async def run(encode: Callable[[list[tuple[str, bytes]]], bytes], photos: list, n: int) -> dict:
    late: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            t = time.monotonic()
            await asyncio.sleep(TICK)
            late.append((time.monotonic() - t - TICK) * 1000)

    tick = asyncio.create_task(ticker())
    took = []
    for i in range(n):
        t0 = time.monotonic()
        await asyncio.to_thread(encode, [photos[i % len(photos)]])
        took.append((time.monotonic() - t0) * 1000)
    done.set()
    await tick
    return {"late": late, "took": took}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--enrolments", type=int, default=20)
    ap.add_argument("--photos", default="obama,obama2,biden", help="test photos, by name")
    args = ap.parse_args()
    faces = find_testdata(ROOT)
    photos = [(f"{n}.jpg", (faces / f"{n}.jpg").read_bytes()) for n in args.photos.split(",")]
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    face_data_from_photos(photos[:1])  # dlib and its models loaded before either mode
    encoder = FaceEncoderProcess()
    encoder.wait_ready()
    try:
        for name, encode in (("in serve's process", face_data_from_photos), ("worker", encoder)):
            r = asyncio.run(run(encode, photos, args.enrolments))
            late, took = r["late"], r["took"]
            print(
                f"{name:<20} loop late p50 {statistics.median(late):6.1f}  p99 "
                f"{pct(late, 99):6.1f}  max {max(late):6.1f} ms over {len(late)} ticks; "
                f"enrolment p50 {statistics.median(took):6.0f} ms",
                flush=True,
            )
    finally:
        encoder.close()
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
