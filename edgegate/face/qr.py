"""QR codes in the door camera's frames: visitor passes read from the same capture as faces.

Runs in the face process, on the frame the face pipeline gets, so the camera is opened once
and no QR work touches the daemon's event loop. OpenCV's ``QRCodeDetector`` (already there
for the camera: no new dependency) finds and decodes the code; a code held in front of the
camera is decoded in frame after frame, so the same text within ``hold_off`` seconds is
reported once. What the text means (a pass, forged or not) is the door's to decide.
"""

from __future__ import annotations

import time

import numpy as np


class QrScanner:
    def __init__(self, hold_off: float = 3.0) -> None:
        import cv2

        self._cv2 = cv2
        self._detector = cv2.QRCodeDetector()
        self.hold_off = hold_off
        self._last: dict[str, float] = {}
        self.frames = 0
        self.decoded = 0
        self.total_ms = 0.0

    def scan(self, rgb: np.ndarray, now: float) -> str | None:
        """The text of a QR code in ``rgb`` not reported in the last ``hold_off`` seconds."""
        t0 = time.perf_counter()
        grey = self._cv2.cvtColor(rgb, self._cv2.COLOR_RGB2GRAY)
        try:
            text, _points, _straight = self._detector.detectAndDecode(grey)
        except self._cv2.error:
            text = ""  # OpenCV refuses some degenerate quadrilaterals: no code this frame
        self.frames += 1
        self.total_ms += (time.perf_counter() - t0) * 1000
        if not text:
            return None
        self.decoded += 1
        last = self._last.get(text)
        self._last = {t: s for t, s in self._last.items() if now - s < self.hold_off}
        self._last[text] = now
        if last is not None and now - last < self.hold_off:
            return None
        return text
