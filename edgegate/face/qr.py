"""QR codes in the door camera's frames: visitor passes read from the same capture as faces.

Runs in the face process, on the frame the face pipeline gets, so the camera is opened once
and no QR work touches the daemon's event loop. A code held in front of the camera is decoded
in frame after frame, so the same text within ``hold_off`` seconds is reported once. What the
text means (a pass, forged or not) is the door's to decide.

The decoder is zxing-cpp (ZXing's C++ port, a maintained wheel) rather than OpenCV's
``QRCodeDetector``: on the same 640x480 test frames it read every pass OpenCV read, and the
ones it missed, 10-40 times faster (docs/benchmarks.md, bench/qr_pass.py). Frames where
nothing moved since the last scan that found no code are not scanned again: the same pixels
give the same answer (``MotionGate``, as the face detector's, edgegate/face/motion.py).
"""

from __future__ import annotations

import time

import numpy as np

from edgegate.face.motion import MotionGate, thumbnail

# The gate's threshold: a pass held up covers far more of the frame than this (a 160 px code
# is 8% of 640x480), and it rescans at least every MAX_STILL_SECONDS regardless.
MOTION_FRACTION = 0.005
MAX_STILL_SECONDS = 1.0


class QrScanner:
    def __init__(self, hold_off: float = 3.0, motion_fraction: float = MOTION_FRACTION) -> None:
        import cv2
        import zxingcpp

        self._cv2 = cv2
        self._zxing = zxingcpp
        self._format = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
        self.hold_off = hold_off
        self.gate = MotionGate(motion_fraction, MAX_STILL_SECONDS)
        self._last: dict[str, float] = {}
        self.frames = 0  # scanned; the frames the gate skipped are ``gate.skipped``
        self.decoded = 0
        self.total_ms = 0.0

    def scan(self, rgb: np.ndarray, now: float) -> str | None:
        """The text of a QR code in ``rgb`` not reported in the last ``hold_off`` seconds."""
        t0 = time.perf_counter()
        thumb = thumbnail(rgb) if self.gate.fraction else None
        if thumb is not None and self.gate.still(thumb, now):
            self.total_ms += (time.perf_counter() - t0) * 1000
            return None
        text = self._decode(rgb)
        self.frames += 1
        self.total_ms += (time.perf_counter() - t0) * 1000
        if thumb is not None:
            if text:
                # A code in view is scanned on every frame (the hold-off counts it once), so
                # it is seen again as soon as it is shown anew after leaving.
                self.gate.reset()
            else:
                self.gate.detected(thumb, now)
        if not text:
            return None
        self.decoded += 1
        last = self._last.get(text)
        self._last = {t: s for t, s in self._last.items() if now - s < self.hold_off}
        self._last[text] = now
        if last is not None and now - last < self.hold_off:
            return None
        return text

    def _decode(self, rgb: np.ndarray) -> str:
        grey = self._cv2.cvtColor(rgb, self._cv2.COLOR_RGB2GRAY)
        for found in self._zxing.read_barcodes(grey, formats=self._format):
            if found.valid and found.text:
                return str(found.text)
        return ""
