"""Face enrolment in a real browser (Debian's chromium via Selenium) against a real ``central
serve`` (its face stack loaded by the composition root), a real mosquitto and a real door
daemon whose camera plays a video of another photo of the same person: the door denies the
unknown face, the photo uploaded on the person's page is encoded at the office, carried to the
door in the next credential version, and the same door then opens for that face
(``access_granted``, kind ``face``, in the office's events page). The door's face path also
refuses someone else on the same gallery. The browser's camera button (getUserMedia,
Chromium's fake camera: a test pattern, no face) sends its frame through the same form,
refused with the office's clear message."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edgegate.face.pipeline import FacePipeline, Settings
from edgegate.face.votes import Grant
from edgegate.face.worker import load_gallery
from edgegate.sim import camera as cam
from tests.console.site import wait_for
from tests.console.test_console_browser import By, chromium, text_of
from tests.console.test_console_browser import sign_in as browser_sign_in
from tests.face.conftest import photo

# Two face stacks (the office's, the door's face process) on a shared machine: minutes.
pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.face, pytest.mark.timeout(400)]


@pytest.fixture
def camera_browser(tmp_path: Path):  # type: ignore[no-untyped-def]
    # Chromium's own fake camera (a moving test pattern), allowed without a prompt.
    fake_camera = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream")
    with chromium(tmp_path, *fake_camera) as driver:
        # The first enrolment loads dlib's models in the office: slow on a busy machine.
        driver.set_page_load_timeout(120)
        yield driver


def face_rows(db: Path) -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT COUNT(*) FROM credentials WHERE kind = 'face'").fetchone()[0]
    except sqlite3.OperationalError:  # the door has not made its tables yet
        return 0
    finally:
        conn.close()


def test_face_enrolled_in_the_browser_opens_the_door(site, camera_browser) -> None:  # type: ignore[no-untyped-def]
    d = camera_browser
    assert site.central("people", "add", "obama", "--name", "Barack Obama") in (0, 3)
    site.serve()
    # The door's camera: obama2.jpg as a 640x480 door frame, 2 s of video played in a loop.
    video = cam.write_video(site.tmp / "door.avi", [cam.door_frame(photo("obama2"))] * 30)
    site.door("front", camera=video)
    door_db = site.tmp / "front" / "door.db"
    browser_sign_in(d, site.url, "boss")

    # The camera: Chromium's fake device shows a test pattern; its frame goes through the
    # form like an upload and the office refuses it clearly.
    d.get(site.url + "/people/obama")
    wait_for(lambda: d.find_element(By.CSS_SELECTOR, ".camera-start").is_displayed(), 10)
    d.find_element(By.CSS_SELECTOR, ".camera-start").click()
    wait_for(
        lambda: d.execute_script("return document.querySelector('.camera video').videoWidth > 0"),
        15,
        "the camera's video",
    )
    d.find_element(By.CSS_SELECTOR, ".camera-take").click()
    wait_for(
        lambda: d.execute_script(
            "return document.querySelector('#enrol-face input[type=file]').files.length === 1"
        ),
        10,
        "the camera frame in the form",
    )
    d.find_element(By.CSS_SELECTOR, "#enrol-face button[type=submit]").click()
    wait_for(lambda: "face not enrolled" in text_of(d, ".flash"), 60, "the office's answer")
    assert "camera.jpg: no face found" in text_of(d, ".flash")

    # Meanwhile the door's face process started: it denies the face nobody enrolled yet.
    d.get(site.url + "/events?type=access_denied")
    wait_for(
        lambda: "unknown camera" in text_of(d, "tr.ev.access_denied"),
        120,
        "the door's camera denying the face nobody enrolled yet",
    )

    # The upload: obama.jpg.
    d.get(site.url + "/people/obama")
    field = d.find_element(By.CSS_SELECTOR, "#enrol-face input[type=file]")
    field.send_keys(str(photo("obama")))
    d.find_element(By.CSS_SELECTOR, "#enrol-face button[type=submit]").click()
    wait_for(lambda: "enrolled" in text_of(d, ".flash"), 60, "the enrolment")
    flash = text_of(d, ".flash")
    assert "face face-" in flash and "version" in flash, flash
    assert "face-" in text_of(d, "main")

    # The door gets it in the next credential version, sealed in its own store.
    wait_for(lambda: face_rows(door_db) == 1, 60, "the face at the door")
    gallery, unusable, _stamp = load_gallery(door_db, None)  # what its face process loads
    assert unusable == 0 and gallery.people == ["obama"]

    # The same door now opens for that face (the daemon's own camera, face process, votes).
    d.get(site.url + "/events?type=access_granted")
    wait_for(lambda: "obama" in text_of(d, "tr.ev.access_granted"), 90, "the door to open")
    assert "camera" in text_of(d, "tr.ev.access_granted")

    # And its face path does not take someone else for him.
    pipeline = FacePipeline(Settings(), gallery)
    frame = cam.door_frame(photo("biden2"))
    outcomes = [o for i in range(3) for o in pipeline.process(frame, now=i * 0.1).outcomes]
    assert outcomes and not any(isinstance(o, Grant) for o in outcomes)
