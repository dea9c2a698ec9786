"""Face fixtures: the real photos in ../shared/testdata/faces, encoded once per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO


def _faces_dir() -> Path:
    # ../shared beside the clone; a git worktree sits one level deeper, so look further up.
    for parent in REPO.parents:
        candidate = parent / "shared" / "testdata" / "faces"
        if candidate.is_dir():
            return candidate
    return REPO.parent / "shared" / "testdata" / "faces"


FACES = _faces_dir()


def photo(name: str) -> Path:
    path = FACES / f"{name}.jpg"
    if not path.is_file():
        pytest.fail(f"missing test photo {path} (the shared testdata sits beside the clone)")
    return path


@pytest.fixture(scope="session")
def enrolled() -> dict[str, np.ndarray]:
    """Enrolment encodings (k x 128) of obama.jpg and biden.jpg, computed once."""
    from edgegate.face.encode import encodings_from_images

    return {name: encodings_from_images([photo(name)]) for name in ("obama", "biden")}


@pytest.fixture(scope="session")
def frames() -> dict[str, np.ndarray]:
    """640x480 door-camera frames made from the photos."""
    from edgegate.sim import camera as cam

    obama2 = cam.door_frame(photo("obama2"))
    biden2 = cam.door_frame(photo("biden2"))
    obama_left = cam.door_frame(photo("obama2"), 210, center=(0.3, 0.55))
    biden_left = cam.door_frame(photo("biden2"), 210, center=(0.3, 0.55))
    return {
        "obama2": obama2,
        "obama3": cam.door_frame(photo("obama3")),
        "biden2": biden2,
        "two_people": cam.door_frame(photo("two_people"), 150),
        # One person close to the camera, the other smaller behind (both above min_face_px).
        "obama_with_biden_behind": _with_face(obama_left, photo("biden"), 115),
        "biden_with_obama_behind": _with_face(biden_left, photo("obama"), 115),
        "partial_in_view": cam.door_frame(photo("obama_partial_face"), 180),
        "partial_cut_by_edge": cam.door_frame(
            photo("obama_partial_face"), 200, center=(0.08, 0.45)
        ),
        "small": cam.door_frame(photo("obama_small"), 50),
        "blurred": cam.blur(obama2, 40),
        "blank": cam.blank_frame(),
    }


def _with_face(frame: np.ndarray, other: Path, face_px: int) -> np.ndarray:
    """``frame`` with the face of photo ``other``, ``face_px`` tall, pasted at the top right."""
    from edgegate.sim import camera as cam

    cx, cy = 0.8, 0.3
    src = cam.door_frame(other, face_px, center=(cx, cy))
    h, w = frame.shape[:2]
    half = int(face_px * 0.9)
    x0, x1 = max(0, int(cx * w) - half), min(w, int(cx * w) + half)
    y0, y1 = max(0, int(cy * h) - half), min(h, int(cy * h) + half)
    out = frame.copy()
    out[y0:y1, x0:x1] = src[y0:y1, x0:x1]
    return out
