"""Face fixtures: the real photos in ../shared/testdata/faces, encoded once per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO


def _faces_dir() -> Path:
    from edgegate.sim.camera import find_testdata

    try:
        return find_testdata(REPO)
    except FileNotFoundError:
        return REPO.parent / "shared" / "testdata" / "faces"  # photo() then says it is missing


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
        "obama_with_biden_behind": cam.with_face_behind(obama_left, photo("biden"), 115),
        "biden_with_obama_behind": cam.with_face_behind(biden_left, photo("obama"), 115),
        "partial_in_view": cam.door_frame(photo("obama_partial_face"), 180),
        "partial_cut_by_edge": cam.door_frame(
            photo("obama_partial_face"), 200, center=(0.08, 0.45)
        ),
        "small": cam.door_frame(photo("obama_small"), 50),
        "blurred": cam.blur(obama2, 40),
        "blank": cam.blank_frame(),
    }
