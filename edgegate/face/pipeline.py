"""One frame in, outcomes out: detect small, check quality, encode the largest face, match.

Runs in the face process (edgegate/face/worker.py); benchmarks and tests call it directly.
Order of the checks is cheapest first, and nothing is encoded (the costly step, ~0.2 s per
face on a slow core) unless the face can decide something:

1. detect on the frame scaled by ``downscale`` (HOG, no upsampling);
2. faces below ``min_face_px`` are ignored (people passing in the background);
3. several faces: the largest is decided only if it ``dominance`` times the next one's area,
   else the frame is "two_faces" (nobody is decided: who is at the door is ambiguous);
4. a face touching the frame edge is "partial"; a blurred face region is "blurry";
5. landmarks (68 points: also the eyes for liveness), then the descriptor, then the gallery.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from edgegate.face import encode as fe
from edgegate.face.gallery import Gallery, Match
from edgegate.face.liveness import ear_from_shape
from edgegate.face.motion import MotionGate, thumbnail
from edgegate.face.votes import Outcome, Presentation

if TYPE_CHECKING:
    from edgegate.config.models import CameraConfig

EDGE_PX = 2


@dataclass(frozen=True, slots=True)
class Settings:
    """What the pipeline needs from ``[camera]`` (plain values: it crosses a process spawn)."""

    tolerance: float = 0.5
    margin: float = 0.08
    k: int = 2
    n: int = 3
    min_face_px: int = 100
    min_sharpness: float = 150.0
    downscale: float = 0.5
    engine: str = "blas"
    motion_fraction: float = 0.005
    motion_max_seconds: float = 0.5
    dominance: float = 1.5
    liveness: bool = False
    blink_ear: float = 0.21
    liveness_frames: int = 30
    redecide_seconds: float = 5.0
    retry_seconds: float = 1.0
    qr: bool = False  # also read visitor QR passes (edgegate/face/qr.py)
    qr_hold_off: float = 3.0

    @classmethod
    def from_config(cls, cam: CameraConfig) -> Settings:
        return cls(
            tolerance=cam.tolerance,
            margin=cam.margin,
            k=cam.confirm_frames,
            n=cam.window_frames,
            min_face_px=cam.min_face_px,
            min_sharpness=cam.min_sharpness,
            downscale=cam.downscale,
            engine=cam.descriptor_engine,
            motion_fraction=cam.motion_fraction,
            motion_max_seconds=cam.motion_max_seconds,
            dominance=cam.dominance,
            liveness=cam.liveness,
            blink_ear=cam.blink_ear,
            liveness_frames=cam.liveness_frames,
            redecide_seconds=cam.redecide_seconds,
            retry_seconds=cam.retry_seconds,
            qr=cam.qr,
            qr_hold_off=cam.qr_hold_off_seconds,
        )


@dataclass
class FrameResult:
    status: str  # "none", "two_faces", "partial", "blurry", "quiet", "encoded", "watching"
    outcomes: list[Outcome] = field(default_factory=list)
    match: Match | None = None
    faces: int = 0
    detected: bool = True  # False: nothing moved, the last detection's boxes were reused
    detect_ms: float = 0.0
    encode_ms: float = 0.0
    match_ms: float = 0.0


SHARPNESS_SIZE = 64


def sharpness(rgb: np.ndarray, box: fe.Box) -> float:
    """Variance of the Laplacian of the face region scaled to 64x64: low when the face is
    motion-blurred. The scaling makes a near and a far face of the same sharpness score
    alike (raw, a large face scores lower: its edges are spread over more pixels)."""
    import cv2

    top, right, bottom, left = box
    gray = cv2.cvtColor(rgb[top:bottom, left:right], cv2.COLOR_RGB2GRAY)
    if gray.size == 0:
        return 0.0
    gray = cv2.resize(gray, (SHARPNESS_SIZE, SHARPNESS_SIZE), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def touches_edge(box: fe.Box, shape: tuple[int, ...]) -> bool:
    top, right, bottom, left = box
    h, w = shape[:2]
    return top < EDGE_PX or left < EDGE_PX or bottom > h - EDGE_PX or right > w - EDGE_PX


class FacePipeline:
    def __init__(self, settings: Settings, gallery: Gallery | None = None) -> None:
        self.s = settings
        self.gallery = gallery or Gallery()
        self.gate = MotionGate(settings.motion_fraction, settings.motion_max_seconds)
        self._boxes: list[fe.Box] = []
        self.presentation = Presentation(
            settings.k,
            settings.n,
            redecide_seconds=settings.redecide_seconds,
            retry_seconds=settings.retry_seconds,
            liveness=settings.liveness,
            liveness_frames=settings.liveness_frames,
            blink_ear=settings.blink_ear,
        )

    def process(self, rgb: np.ndarray, now: float | None = None) -> FrameResult:
        now = time.monotonic() if now is None else now
        pres = self.presentation
        t0 = time.perf_counter()
        thumb = thumbnail(rgb) if self.s.motion_fraction else None
        detected = thumb is None or not self.gate.still(thumb, now)
        if detected:
            self._boxes = [
                b
                for b in fe.detect(rgb, self.s.downscale)
                if fe.box_height(b) >= self.s.min_face_px
            ]
            if thumb is not None:
                self.gate.detected(thumb, now)
        boxes = list(self._boxes)
        t1 = time.perf_counter()
        res = FrameResult("none", faces=len(boxes), detected=detected, detect_ms=(t1 - t0) * 1000)
        if not boxes:
            res.outcomes = pres.absent()
            return res
        boxes.sort(key=fe.box_area, reverse=True)
        box = boxes[0]
        if len(boxes) > 1 and fe.box_area(box) < self.s.dominance * fe.box_area(boxes[1]):
            res.status = "two_faces"
        elif touches_edge(box, rgb.shape):
            res.status = "partial"
        elif self.s.min_sharpness and sharpness(rgb, box) < self.s.min_sharpness:
            res.status = "blurry"
        if res.status != "none":
            res.outcomes = pres.poor(res.status, now)
            return res
        if pres.quiet(now):
            res.status = "quiet"
            res.outcomes = pres.seen(now)
            return res
        t2 = time.perf_counter()
        shape = fe.landmarks(rgb, box)
        if self.s.liveness:
            pres.eyes(ear_from_shape(shape))
        if not pres.wants_encoding(now):
            res.status = "watching"  # identity confirmed, waiting for a blink
            res.outcomes = pres.seen(now)
            return res
        encoding = fe.encode(rgb, shape, self.s.engine)
        t3 = time.perf_counter()
        res.match = self.gallery.match(encoding, self.s.tolerance, self.s.margin)
        t4 = time.perf_counter()
        res.status = "encoded"
        res.encode_ms = (t3 - t2) * 1000
        res.match_ms = (t4 - t3) * 1000
        res.outcomes = pres.vote(res.match, now)
        return res
