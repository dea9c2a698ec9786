"""A door camera made of photos: 640x480 frames and video files for tests, benchmarks, demo.

``door_frame`` crops a photo around its face(s) so the largest face is ``face_px`` pixels tall
in a 640x480 frame, as a person standing at a door camera would be; ``write_video`` writes the
frames as an MJPG .avi that ``[camera] source`` can play like a camera.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from edgegate.face import encode as fe

W, H = 640, 480
BACKGROUND = 96


@lru_cache(maxsize=32)
def _photo(path: str) -> tuple[np.ndarray, tuple[fe.Box, ...]]:
    import face_recognition

    rgb = fe.limit_size(fe.load_rgb(path))
    boxes = face_recognition.face_locations(rgb, number_of_times_to_upsample=0)
    if not boxes:
        boxes = face_recognition.face_locations(rgb, number_of_times_to_upsample=1)
    return rgb, tuple(boxes)


def faces_in(path: Path | str) -> tuple[fe.Box, ...]:
    return _photo(str(path))[1]


def door_frame(
    photo: Path | str,
    face_px: int = 180,
    *,
    center: tuple[float, float] = (0.5, 0.45),
    size: tuple[int, int] = (W, H),
) -> np.ndarray:
    """The photo scaled so its largest face is ``face_px`` tall and placed with the faces'
    centre at ``center`` (fractions of the frame); uncovered parts are flat grey. A centre near
    0 or 1 pushes the face off the frame edge (a partial face)."""
    import cv2

    rgb, boxes = _photo(str(photo))
    if not boxes:
        raise ValueError(f"{photo}: no face to frame")
    largest = max(boxes, key=fe.box_area)
    f = face_px / fe.box_height(largest)
    scaled = cv2.resize(
        rgb, (0, 0), fx=f, fy=f, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR
    )
    tops, rights, bottoms, lefts = zip(*boxes, strict=True)
    cy = (min(tops) + max(bottoms)) / 2 * f
    cx = (min(lefts) + max(rights)) / 2 * f
    w, h = size
    out = np.full((h, w, 3), BACKGROUND, np.uint8)
    # Offset of the scaled photo in the frame so the faces' centre lands on ``center``.
    ox, oy = round(center[0] * w - cx), round(center[1] * h - cy)
    x0, y0 = max(0, ox), max(0, oy)
    x1, y1 = min(w, ox + scaled.shape[1]), min(h, oy + scaled.shape[0])
    if x1 > x0 and y1 > y0:
        out[y0:y1, x0:x1] = scaled[y0 - oy : y1 - oy, x0 - ox : x1 - ox]
    return out


def sensor_noise(frame: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """``frame`` with Gaussian noise of ``sigma`` grey levels, as a real sensor adds it to
    every frame (a different ``seed`` per frame)."""
    rng = np.random.default_rng(seed)
    out = frame.astype(np.float32) + rng.normal(0.0, sigma, frame.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def blank_frame(size: tuple[int, int] = (W, H)) -> np.ndarray:
    return np.full((size[1], size[0], 3), BACKGROUND, np.uint8)


def blur(frame: np.ndarray, pixels: int = 25) -> np.ndarray:
    """Horizontal motion blur over ``pixels``, like a face moving fast past the camera."""
    import cv2

    kernel = np.zeros((pixels, pixels), np.float32)
    kernel[pixels // 2, :] = 1.0 / pixels
    return cv2.filter2D(frame, -1, kernel)


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Two frames squeezed into one (two people in view, each at half the width)."""
    import cv2

    h, w = left.shape[:2]
    halves = [cv2.resize(f[:, w // 4 : w - w // 4], (w // 2, h)) for f in (left, right)]
    return np.hstack(halves)


def write_video(path: Path, frames: Iterable[np.ndarray], fps: float = 15.0) -> Path:
    """An MJPG .avi of RGB ``frames`` (every frame the same size)."""
    import cv2

    writer: cv2.VideoWriter | None = None
    try:
        for frame in frames:
            if writer is None:
                h, w = frame.shape[:2]
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (w, h))
                if not writer.isOpened():
                    raise OSError(f"cannot write video {path}")
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        if writer is not None:
            writer.release()
    return path


def with_face_behind(
    frame: np.ndarray, other: Path | str, face_px: int, center: tuple[float, float] = (0.8, 0.3)
) -> np.ndarray:
    """``frame`` with the face of photo ``other``, ``face_px`` tall, pasted around ``center``
    (a second person further from the camera)."""
    src = door_frame(other, face_px, center=center)
    h, w = frame.shape[:2]
    half = int(face_px * 0.9)
    cx, cy = int(center[0] * w), int(center[1] * h)
    x0, x1 = max(0, cx - half), min(w, cx + half)
    y0, y1 = max(0, cy - half), min(h, cy + half)
    out = frame.copy()
    out[y0:y1, x0:x1] = src[y0:y1, x0:x1]
    return out


def find_testdata(start: Path) -> Path:
    """``shared/testdata/faces`` beside the clone (or beside a parent, for git worktrees)."""
    for parent in start.resolve().parents:
        candidate = parent / "shared" / "testdata" / "faces"
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no shared/testdata/faces above {start}")


def sequence(parts: Sequence[tuple[np.ndarray, int]]) -> list[np.ndarray]:
    """Frames from (frame, repeat) pairs."""
    return [frame for frame, count in parts for _ in range(count)]


def qr_image(text: str, module_px: int = 4, border: int = 4) -> np.ndarray:
    """``text`` as a QR code (error correction M), black on white RGB, ``border`` quiet-zone
    modules around it. segno (pure Python, a dev/test dependency) makes the matrix."""
    import segno

    code = segno.make(text, error="m", micro=False)
    matrix = np.array([list(row) for row in code.matrix], dtype=bool)
    matrix = np.pad(matrix, border, constant_values=False)
    grey = np.where(matrix, 0, 255).astype(np.uint8)
    grey = np.kron(grey, np.ones((module_px, module_px), np.uint8))
    return np.repeat(grey[:, :, None], 3, axis=2)


def with_qr(
    frame: np.ndarray,
    text: str,
    size_px: int = 220,
    *,
    center: tuple[float, float] = (0.5, 0.55),
    tilt: float = 0.0,
) -> np.ndarray:
    """``frame`` with a QR pass of ``text`` held up in it: ``size_px`` wide, centred at
    ``center`` (fractions of the frame), and turned away by ``tilt`` (0: facing the camera;
    0.3: its far edge 30% shorter, a phone held at an angle), through a perspective warp."""
    import cv2

    code = qr_image(text)
    side = code.shape[0]
    h, w = frame.shape[:2]
    cx, cy, half = center[0] * w, center[1] * h, size_px / 2
    shrink = half * tilt
    src = np.array([[0, 0], [side, 0], [side, side], [0, side]], np.float32)
    dst = np.array(
        [
            [cx - half, cy - half],
            [cx + half, cy - half + shrink],
            [cx + half, cy + half - shrink],
            [cx - half, cy + half],
        ],
        np.float32,
    )
    m = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(code, m, (w, h), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.full((side, side), 255, np.uint8), m, (w, h))
    out = frame.copy()
    out[mask > 127] = warped[mask > 127]
    return out
