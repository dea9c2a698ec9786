"""Face entry speed: frame -> decision, gallery matching, and cards while faces are worked on.

1. Per decision at 640x480 (frames made from the photos in ../shared/testdata/faces): the
   edgegate pipeline (detect at half size without upsampling, largest face only, one matrix
   product against the gallery, k of n frames) and, on the same frames, the face_recognition
   project's "faster webcam" example (quarter-size frame, every other frame, every face
   encoded, compare_faces + face_distance on a list). Both run flat out on the frames as
   they come; "to decision" is processing time from the first frame of a presentation to the
   decision, "per presentation" is all processing while the person stands there for 2 s.
2. Gallery matching at 1,000 / 10,000 / 100,000 people, both ways.
3. Card tap -> relay in the real daemon, without a camera and with the face process working
   flat out on a 30 fps video of a stranger (every frame is encoded).

    PYTHONPATH=. .venv/bin/python bench/face_latency.py [--repeats 5] [--taps 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from card_latency import enrol, pct
from card_latency import taps as card_latency_taps

from edgegate.daemon.app import Daemon
from edgegate.face.credentials import put_face
from edgegate.face.encode import encodings_from_images
from edgegate.face.gallery import Gallery
from edgegate.face.pipeline import FacePipeline, Settings
from edgegate.face.votes import Failed, Grant
from edgegate.sim import camera as cam
from edgegate.store.db import open_db, transaction
from edgegate.store.sealed import load_key

REPO = Path(__file__).resolve().parents[1]
FPS = 15
STAND_FRAMES = 2 * FPS  # a person stands at the door for 2 s


# --- the face_recognition "faster webcam" example, as published --------------------------
class WebcamExample:
    """facerec_from_webcam_faster.py: quarter-size frame, every other frame, all faces."""

    def __init__(self, names: list[str], encodings: list[np.ndarray]) -> None:
        self.names = names
        self.known = encodings  # a Python list, as in the example
        self.process_this_frame = True
        self.detect_ms = self.encode_ms = self.match_ms = 0.0

    def frame(self, rgb: np.ndarray) -> list[str] | None:
        import cv2
        import face_recognition

        labels = None
        if self.process_this_frame:
            t0 = time.perf_counter()
            small = cv2.resize(rgb, (0, 0), fx=0.25, fy=0.25)
            locations = face_recognition.face_locations(small)
            t1 = time.perf_counter()
            encodings = face_recognition.face_encodings(small, locations)
            t2 = time.perf_counter()
            labels = []
            for enc in encodings:
                matches = face_recognition.compare_faces(self.known, enc)
                name = "Unknown"
                distances = face_recognition.face_distance(self.known, enc)
                best = int(np.argmin(distances))
                if matches[best]:
                    name = self.names[best]
                labels.append(name)
            t3 = time.perf_counter()
            self.detect_ms += (t1 - t0) * 1000
            self.encode_ms += (t2 - t1) * 1000
            self.match_ms += (t3 - t2) * 1000
        self.process_this_frame = not self.process_this_frame
        return labels


@dataclass
class Run:
    decision: str
    to_decision_ms: float
    frames: int
    detect_ms: float
    encode_ms: float
    match_ms: float
    presentation_ms: float


def run_edgegate(frames: list[np.ndarray], gallery: Gallery, settings: Settings) -> Run:
    p = FacePipeline(settings, gallery)
    decision, to_decision, used = "none", 0.0, 0
    det = enc = mat = 0.0
    t0 = time.perf_counter()
    for i, f in enumerate(frames):
        r = p.process(f, now=i / FPS)
        det, enc, mat = det + r.detect_ms, enc + r.encode_ms, mat + r.match_ms
        if decision == "none" and r.outcomes:
            out = r.outcomes[0]
            decision = f"grant {out.person}" if isinstance(out, Grant) else "deny"
            assert isinstance(out, Grant | Failed)
            to_decision, used = (time.perf_counter() - t0) * 1000, i + 1
            split = (det, enc, mat)
    total = (time.perf_counter() - t0) * 1000
    return Run(decision, to_decision, used, *split, total)


def run_example(frames: list[np.ndarray], names: list[str], known: list[np.ndarray]) -> Run:
    ex = WebcamExample(names, known)
    decision, to_decision, used = "none", 0.0, 0
    t0 = time.perf_counter()
    for i, f in enumerate(frames):
        labels = ex.frame(f)
        if decision == "none" and labels:
            decision = f"grant {labels[0]}" if labels[0] != "Unknown" else "deny"
            to_decision, used = (time.perf_counter() - t0) * 1000, i + 1
            split = (ex.detect_ms, ex.encode_ms, ex.match_ms)
    total = (time.perf_counter() - t0) * 1000
    return Run(decision, to_decision, used, *split, total)


def median(runs: list[Run]) -> Run:
    decisions = {r.decision for r in runs}
    assert len(decisions) == 1, decisions
    med = lambda attr: statistics.median(getattr(r, attr) for r in runs)  # noqa: E731
    return Run(
        runs[0].decision,
        med("to_decision_ms"),
        runs[0].frames,
        med("detect_ms"),
        med("encode_ms"),
        med("match_ms"),
        med("presentation_ms"),
    )


def interleaved(fns: list[Callable[[], Run]], repeats: int) -> list[Run]:
    """Median of ``repeats`` runs of each pipeline, run in rounds (one of each per round, the
    order rotated), so a shared machine's slow spells fall on all of them alike."""
    runs: list[list[Run]] = [[] for _ in fns]
    for r in range(repeats):
        for i in [(r + j) % len(fns) for j in range(len(fns))]:
            runs[i].append(fns[i]())
    return [median(x) for x in runs]


def decisions_section(faces: Path, repeats: int) -> None:
    obama = encodings_from_images([faces / "obama.jpg"])
    gallery = Gallery([("obama", obama)])
    obama2 = cam.door_frame(faces / "obama2.jpg")
    scenarios = {
        "obama2 (enrolled)": obama2,
        "obama3 (enrolled)": cam.door_frame(faces / "obama3.jpg"),
        "biden2 (stranger)": cam.door_frame(faces / "biden2.jpg"),
        "obama + biden behind": cam.with_face_behind(
            cam.door_frame(faces / "obama2.jpg", 210, center=(0.3, 0.55)), faces / "biden.jpg", 115
        ),
    }
    blank = cam.blank_frame()
    s = Settings()
    print("\n## 1. Per decision at 640x480 (median of", repeats, "interleaved runs)\n")
    print(
        "| presentation | pipeline | decision | frames | to decision | detect | encode | match "
        "| 2 s presentation |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    ratios = []
    for name, frame in scenarios.items():
        # Each frame with its own sensor noise (sigma 3 grey levels), as a camera delivers
        # them: identical copies would flatter the motion gate.
        frames = [
            cam.sensor_noise(f, 3.0, seed=i)
            for i, f in enumerate([blank] * 2 + [frame] * STAND_FRAMES)
        ]
        mine, single, ungated, with_dlib, ex = interleaved(
            [
                lambda f=frames: run_edgegate(f, gallery, s),
                lambda f=frames: run_edgegate(f, gallery, Settings(k=1, n=1)),
                lambda f=frames: run_edgegate(f, gallery, Settings(motion_fraction=0.0)),
                lambda f=frames: run_edgegate(f, gallery, Settings(engine="dlib")),
                lambda f=frames: run_example(f, ["obama"], [obama[0]]),
            ],
            repeats,
        )
        for label, r in (
            (f"edgegate k={s.k} of n={s.n} (default, blas engine)", mine),
            ("edgegate k=1 of n=1", single),
            (f"edgegate k={s.k} of n={s.n}, motion gate off", ungated),
            (f"edgegate k={s.k} of n={s.n}, dlib engine", with_dlib),
            ("webcam example", ex),
        ):
            print(
                f"| {name} | {label} | {r.decision} | {r.frames} | {r.to_decision_ms:.0f} ms "
                f"| {r.detect_ms:.0f} | {r.encode_ms:.0f} | {r.match_ms:.2f} "
                f"| {r.presentation_ms:.0f} ms |"
            )
        ratios.append((name, mine, single, ungated, with_dlib, ex))
    print("\nRatios (webcam example / edgegate; above 1: edgegate is faster):\n")
    print(
        "| presentation | same decisions | to decision, k=2 (default) | to decision, k=1 "
        "| k=2, motion gate off | k=2, dlib engine | 2 s presentation |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, mine, single, ungated, with_dlib, ex in ratios:
        same = {mine.decision, ex.decision, single.decision, ungated.decision, with_dlib.decision}
        print(
            f"| {name} | {'yes' if len(same) == 1 else 'NO'} "
            f"| {ex.to_decision_ms / mine.to_decision_ms:.2f}x "
            f"| {ex.to_decision_ms / single.to_decision_ms:.2f}x "
            f"| {ex.to_decision_ms / ungated.to_decision_ms:.2f}x "
            f"| {ex.to_decision_ms / with_dlib.to_decision_ms:.2f}x "
            f"| {ex.presentation_ms / mine.presentation_ms:.2f}x |"
        )


def gallery_section(probe: np.ndarray) -> None:
    import face_recognition

    print("\n## 2. Gallery matching, one face against N people (median of 20)\n")
    print("| people | edgegate (one float32 matrix) | compare_faces + face_distance on a list |")
    print("|---|---|---|")
    rng = np.random.default_rng(3)
    for n in (1_000, 10_000, 100_000):
        encs = rng.normal(0, 0.09, (n, 128)).astype(np.float32)
        g = Gallery([(f"p{i}", encs[i]) for i in range(n)])
        known = [e.astype(np.float64) for e in encs]  # what face_encodings returns
        mine, theirs = [], []
        for _ in range(20):
            t = time.perf_counter()
            g.match(probe, 0.5, 0.08)
            mine.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            face_recognition.compare_faces(known, probe)
            d = face_recognition.face_distance(known, probe)
            int(np.argmin(d))
            theirs.append((time.perf_counter() - t) * 1000)
        print(f"| {n:,} | {statistics.median(mine):.2f} ms | {statistics.median(theirs):.1f} ms |")


async def card_taps(
    tmp: Path, video: Path | None, taps: int, stranger: np.ndarray, nice: int = 10
) -> dict:
    """card_latency's tap loop on a door without a camera, or with one working flat out."""
    db = tmp / (f"cam{nice}.db" if video else "plain.db")
    enrol(db, 1000)
    extra: dict[str, Any] = {}
    if video is not None:
        conn = open_db(db, synchronous="NORMAL")
        with transaction(conn):
            put_face(conn, load_key(db), "someone", stranger + 0.5)  # nobody in the video
        conn.close()
        # retry_seconds 0: every frame of the stranger is encoded, the worst case for cards.
        extra["camera"] = {"source": str(video), "fps": 30, "retry_seconds": 0, "nice": nice}
    seen: dict[str, Any] = {"busy": None, "stats": {}}

    async def started(daemon: Daemon) -> None:
        if daemon.camera is None:
            return
        while not daemon.camera.healthy:
            await asyncio.sleep(0.1)
        await asyncio.sleep(3.0)  # the face process is encoding every frame by now
        seen["cpu0"], seen["t0"] = _face_cpu(daemon), time.monotonic()

    def finished(daemon: Daemon) -> None:
        if daemon.camera is not None:
            cpu = _face_cpu(daemon)
            if cpu is not None and seen.get("cpu0") is not None:
                seen["busy"] = (cpu - seen["cpu0"]) / (time.monotonic() - seen["t0"])
            seen["stats"] = daemon.camera.status()["pipeline"]

    lat, _ = await card_latency_taps(
        db, 1000, taps, extra=extra, started=started, finished=finished
    )
    return {"lat": lat, **seen}


def _face_cpu(daemon: Daemon) -> float | None:
    """CPU seconds used so far by the face process (from /proc), or None without a camera."""
    proc = getattr(daemon.camera, "_proc", None)
    if proc is None or proc.pid is None:
        return None
    fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cards_section(faces: Path, taps: int) -> None:
    stranger_frame = cam.door_frame(faces / "biden2.jpg")
    stranger = encodings_from_images([faces / "biden2.jpg"])[0]
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        video = cam.write_video(tmp / "stranger.avi", [stranger_frame] * 900, 30)
        plain = asyncio.run(card_taps(tmp, None, taps, stranger))
        busy = asyncio.run(card_taps(tmp, video, taps, stranger))
        unniced = asyncio.run(card_taps(tmp, video, taps, stranger, nice=0))
    print(f"\n## 3. Card tap -> relay, {taps} taps, 1,000 cards\n")
    print("| face process | p50 | p99 | max | face process CPU |")
    print("|---|---|---|---|---|")
    rows = (
        ("none (no [camera])", plain),
        ("flat out on a stranger, 30 fps, nice 10 (default)", busy),
        ("the same, not niced (nice 0)", unniced),
    )
    for label, r in rows:
        lat = r["lat"]
        cpu = "-" if r["busy"] is None else f"{r['busy'] * 100:.0f}% of a core"
        print(
            f"| {label} | {pct(lat, 50):.2f} ms | {pct(lat, 99):.2f} ms | {max(lat):.2f} ms "
            f"| {cpu} |"
        )
    for label, r in rows[1:]:
        st = r["stats"]
        if st.get("encoded"):
            print(
                f"\n{label}: {st['frames']} frames, {st['encoded']} encoded, "
                f"{st['encode_ms'] / st['encoded']:.0f} ms per encoding"
            )
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--taps", type=int, default=300)
    ap.add_argument("--faces", type=Path, default=None, help="photo folder")
    ap.add_argument("--only", choices=["decisions", "gallery", "cards"], default=None)
    args = ap.parse_args()
    from edgegate import logging_setup

    logging_setup.configure("warning", "console")
    faces = args.faces or cam.find_testdata(REPO)
    print("# face entry benchmark")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"{platform.platform()}, Python {sys.version.split()[0]}; "
        f"load average at start {os.getloadavg()[0]:.2f}"
    )
    if args.only in (None, "decisions"):
        decisions_section(faces, args.repeats)
    if args.only in (None, "gallery"):
        gallery_section(encodings_from_images([faces / "obama2.jpg"])[0])
    if args.only in (None, "cards"):
        cards_section(faces, args.taps)


if __name__ == "__main__":
    main()
