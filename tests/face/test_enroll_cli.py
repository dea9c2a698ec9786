"""``edgegate enroll face`` as a technician runs it: real photos, real store, sealed data."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgegate.cli.main import main
from edgegate.face.credentials import load_faces
from edgegate.face.gallery import Gallery
from edgegate.store.db import open_db
from edgegate.store.sealed import load_key
from tests.conftest import EDGEGATE, REPO, write_config_file
from tests.face.conftest import photo

pytestmark = pytest.mark.face


def enroll(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EDGEGATE, "enroll", "face", "--config", str(config), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )


def test_enroll_face_stores_sealed_encodings_only(tmp_path: Path, subprocess_env, enrolled, capsys):
    config = write_config_file(tmp_path, "/dev/null")
    out = enroll(
        config,
        subprocess_env,
        "--person",
        "obama",
        "--name",
        "Barack Obama",
        "--image",
        str(photo("obama")),
        str(photo("obama2")),
    )
    assert out.returncode == 0, out.stderr
    assert "2 encoding(s)" in out.stdout
    # Refused (in-process: the library is loaded already): no face, two people, no file.
    import cv2

    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((480, 640, 3), 128, np.uint8))
    for image, message in (
        (blank, "no face found"),
        (photo("two_people"), "2 faces found"),
        (tmp_path / "nope.jpg", "cannot read image"),
    ):
        argv = ["enroll", "face", "--config", str(config), "--person", "x", "--image", str(image)]
        assert main(argv) == 1
        assert message in capsys.readouterr().err

    db = tmp_path / "door.db"
    conn = open_db(db, readonly=True)
    rows = conn.execute("SELECT kind, value, person_id, data FROM credentials").fetchall()
    name = conn.execute("SELECT name FROM people WHERE id = 'obama'").fetchone()[0]
    faces, unreadable = load_faces(conn, load_key(db))
    conn.close()
    assert [(k, v, p) for k, v, p, _ in rows] == [("face", "obama", "obama")]
    assert name == "Barack Obama" and unreadable == 0
    assert faces[0][1].shape == (2, 128)
    # No raw encoding in the file: what is stored is sealed.
    raw = b"".join(f.read_bytes() for f in tmp_path.glob("door.db*"))
    assert faces[0][1][0].tobytes() not in raw
    # The stored encodings match the person and not someone else.
    g = Gallery(faces)
    assert g.match(enrolled["obama"][0], 0.5, 0.08).person == "obama"
    assert g.match(enrolled["biden"][0], 0.5, 0.08).person is None
