"""Blink liveness: the eye aspect ratio (EAR) dips and recovers over consecutive frames.

EAR (Soukupova and Cech, 2016) = (|p2-p6| + |p3-p5|) / (2 |p1-p4|) over the six landmarks of
an eye: about 0.3 open, under 0.2 closed. A blink is open -> closed for at least
``closed_frames`` frames -> open again. What it stops and what it does not: docs/face.md.
"""

from __future__ import annotations

import numpy as np

# dlib's 68-point model: points 36-41 are one eye, 42-47 the other.
LEFT_EYE = slice(36, 42)
RIGHT_EYE = slice(42, 48)


def eye_aspect_ratio(eye: np.ndarray) -> float:
    """EAR of six (x, y) points in the dlib order p1..p6."""
    p = np.asarray(eye, dtype=np.float64)
    width = np.linalg.norm(p[0] - p[3])
    if width <= 0:
        return 0.0
    return float((np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])) / (2.0 * width))


def ear_from_shape(shape: object) -> float:
    """Mean EAR of both eyes from a 68-point dlib full_object_detection."""
    pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)  # type: ignore[attr-defined]
    if len(pts) < 48:
        raise ValueError("liveness needs the 68-point landmark model")
    return (eye_aspect_ratio(pts[LEFT_EYE]) + eye_aspect_ratio(pts[RIGHT_EYE])) / 2.0


class BlinkDetector:
    """Feeds on one EAR per frame of the same face; ``blinked`` once a full blink was seen."""

    def __init__(self, closed_ear: float = 0.21, closed_frames: int = 1) -> None:
        self.closed_ear = closed_ear
        self.closed_frames = closed_frames
        self.blinked = False
        self._seen_open = False
        self._closed_run = 0

    def reset(self) -> None:
        self.blinked = False
        self._seen_open = False
        self._closed_run = 0

    def update(self, ear: float) -> bool:
        if ear < self.closed_ear:
            if self._seen_open:
                self._closed_run += 1
        else:
            # Eyes open again after a long enough closed run: that was a blink.
            if self._seen_open and self._closed_run >= self.closed_frames:
                self.blinked = True
            self._seen_open = True
            self._closed_run = 0
        return self.blinked
