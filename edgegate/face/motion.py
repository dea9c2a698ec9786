"""Skip face detection on frames where nothing moved since the last detection.

A door camera looks at an empty corridor most of the day, and at someone standing still for
the second or two they are decided; running the HOG detector (~15-20 ms a frame at half size
on the dev VM, more on a Pi) on every such frame is heat and CPU taken from the card path. As
in Frigate, a cheap motion check gates the costly detector: the frame is shrunk to an 80x60
colour thumbnail (area averaging, which also averages sensor noise away: 64 pixels per
thumbnail pixel divide its spread by 8) and compared with the thumbnail of the frame the
detector last ran on. Below ``fraction`` of thumbnail pixels changed by more than
``PIXEL_DELTA`` levels in any colour channel, the last detection's boxes are reused. Colour,
not grey: a change of hue at equal brightness (a face against a wall of the same luminance)
barely moves a grey level; hypothesis found such a case for a grey thumbnail.

What it never skips:

* a change that builds up slowly: the reference is the last *detected* frame, not the
  previous one, so many small changes add up to one that triggers;
* a new face: a face of the smallest size decided (100 px tall in 640x480) covers ~2.5% of
  the frame, five times the default fraction; a second person stepping in likewise, so the
  two-people rule always sees fresh boxes;
* time: the detector runs at least every ``max_seconds`` whatever the thumbnails say.

Landmarks, the quality checks and the descriptor still run on every frame with a face, on
that frame's own pixels: only the search for where the faces are is reused.
"""

from __future__ import annotations

import numpy as np

THUMB = (80, 60)
PIXEL_DELTA = 12  # levels per channel; thumbnail noise of a real sensor stays well below


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    """The frame as an 80x60 colour thumbnail (int16, ready to subtract)."""
    import cv2

    return cv2.resize(rgb, THUMB, interpolation=cv2.INTER_AREA).astype(np.int16)


class MotionGate:
    """Says whether a frame may reuse the last detection. ``fraction`` 0 turns it off."""

    def __init__(self, fraction: float, max_seconds: float) -> None:
        self.fraction = fraction
        self.max_seconds = max_seconds
        self._ref: np.ndarray | None = None
        self._ref_time = 0.0
        self.skipped = 0

    def still(self, thumb: np.ndarray, now: float) -> bool:
        """True when ``thumb`` differs from the last detected frame by less than the
        threshold and the last detection is recent; False means: run the detector (and
        call :meth:`detected`)."""
        if not self.fraction or self._ref is None or self._ref.shape != thumb.shape:
            return False
        if not 0 <= now - self._ref_time < self.max_seconds:
            return False
        diff = np.abs(thumb - self._ref)
        if diff.ndim == 3:  # a pixel changed if any of its channels did
            diff = diff.max(axis=2)
        changed = np.count_nonzero(diff > PIXEL_DELTA) / diff.size
        if changed >= self.fraction:
            return False
        self.skipped += 1
        return True

    def detected(self, thumb: np.ndarray, now: float) -> None:
        """The detector ran on the frame of ``thumb``: it is the new reference."""
        self._ref = thumb
        self._ref_time = now

    def reset(self) -> None:
        self._ref = None
