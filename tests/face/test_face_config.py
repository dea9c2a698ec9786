"""The [camera] section: defaults, limits, and the example config documenting every key."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgegate.config import ConfigError, load, parse
from edgegate.config.models import CameraConfig
from edgegate.face.pipeline import Settings
from tests.conftest import REPO


def test_example_documents_every_camera_key():
    text = (REPO / "config" / "edgegate.example.toml").read_text()
    for key in CameraConfig.model_fields:
        assert f"# {key} =" in text, f"camera.{key} not documented in the example"


def test_defaults_are_stricter_than_the_library_and_reach_the_pipeline():
    cam = CameraConfig()
    assert cam.tolerance < 0.6 and cam.confirm_frames >= 2
    s = Settings.from_config(cam)
    assert (s.tolerance, s.k, s.n, s.min_face_px) == (
        cam.tolerance,
        cam.confirm_frames,
        cam.window_frames,
        cam.min_face_px,
    )


@pytest.mark.parametrize(
    ("camera", "expected"),
    [
        ("confirm_frames = 4\nwindow_frames = 3\n", "camera: Value error, confirm_frames (4)"),
        ('mode = "face+card"\n', "camera.mode:"),
        ("tolerance = 1.5\n", "camera.tolerance:"),
        ("tolerence = 0.4\n", "camera.tolerence: unknown key"),
    ],
)
def test_bad_camera_config_is_one_clear_line(tmp_path: Path, camera: str, expected: str):
    path = tmp_path / "c.toml"
    path.write_text(f'[door]\nsite = "s"\nid = "d"\n[camera]\n{camera}')
    with pytest.raises(ConfigError) as err:
        load(path)
    assert any(f"{path}: {expected}" in line for line in err.value.problems), err.value.problems


def test_card_face_mode_parses():
    cfg = parse({"door": {"site": "s", "id": "d"}, "camera": {"mode": "card+face"}}, Path("x.toml"))
    assert cfg.camera is not None and cfg.camera.mode == "card+face"
