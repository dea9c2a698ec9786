"""Face enrolment from the office: the console's upload, the REST API and the CLI's
``--image`` all go through ``services/biometrics.py`` and the face stack's own enrolment
function (real face_recognition on the real test photos). Refusals are clear, logged and
counted; nothing is stored on a refusal; only security and admin may enrol."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgegate.central import archive, store
from edgegate.central.services import Office, biometrics, credentials, tokens
from edgegate.central.services.credentials import ChangeRefused
from edgegate.face.credentials import from_bytes
from edgegate.face.encode import encodings_from_images, face_data_from_photos
from edgegate.face.gallery import Gallery
from tests.central.conftest import wait_until
from tests.conftest import all_logs
from tests.console.conftest import ADMIN, page_csrf
from tests.face.conftest import photo

pytestmark = pytest.mark.face


@pytest.fixture
def face_office(office: Office) -> Office:
    # What ``central serve`` is handed by its composition root (cli/central_bio.face_encoder).
    office.encode_face = face_data_from_photos
    credentials.save_person(office, ADMIN, "obama", name="Barack Obama")
    return office


def upload(name: str, content: bytes | None = None) -> tuple[str, tuple[str, bytes, str]]:
    data = content if content is not None else photo(name).read_bytes()
    return ("photo", (f"{name}.jpg", data, "image/jpeg"))


def faces_of(office: Office, person: str) -> list[dict]:
    with store.reading(office.master()) as conn:
        return [c for c in store.list_credentials(conn, person) if c["kind"] == "face"]


def refusals(office: Office) -> dict[str, int]:
    with office.engine.connect() as conn:
        return {k: v for k, v in archive.counters(conn).items() if k.startswith("enrol_refused")}


def blank_png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (640, 480), (128, 128, 128)).save(out, "PNG")
    return out.getvalue()


def test_console_upload_enrols_a_face_that_matches_the_person(
    face_office: Office, client_as, tmp_path
):  # type: ignore[no-untyped-def]
    sec = client_as("security")
    csrf = page_csrf(sec, "/people/obama")
    assert 'id="enrol-face"' in sec.get("/people/obama").text
    r = sec.post(
        "/people/obama/faces", data={"csrf": csrf}, files=[upload("obama")], follow_redirects=False
    )
    assert r.status_code == 303 and "enrolled" in r.headers["location"], r.headers
    [cred] = faces_of(face_office, "obama")
    assert cred["value"].startswith("face-") and cred["enabled"]
    # The master holds the encodings (sealed at rest, unsealed by the master's reader).
    enc = from_bytes(base64.b64decode(cred["data"]))
    assert enc.shape == (1, 128)
    gallery = Gallery([("obama", enc, cred["value"])])
    obama2, biden2 = (encodings_from_images([photo(n)])[0] for n in ("obama2", "biden2"))
    assert gallery.match(obama2, 0.5, 0.08).person == "obama"
    assert gallery.match(biden2, 0.5, 0.08).person is None
    # The page lists it; the photo itself is nowhere in the store.
    assert cred["value"] in sec.get("/people/obama").text
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("central.db*"))
    assert photo("obama").read_bytes()[2000:2064] not in stored
    assert enc.tobytes()[:64] not in stored  # sealed at rest


@pytest.mark.parametrize(
    ("name", "content", "message", "reason"),
    [
        ("two_people", None, "2 faces found; use a photo of one person", "several_faces"),
        ("wall", blank_png(), "no face found", "no_face"),
        ("notes", b"these are not the pixels you are looking for", "not an image", "not_image"),
        ("huge", b"\xff\xd8" + bytes(biometrics.MAX_PHOTO_BYTES), "at most 10 MB", "too_large"),
    ],
)
def test_console_refuses_bad_photos_clearly_logged_and_counted(  # type: ignore[no-untyped-def]
    face_office: Office, client_as, name, content, message, reason
):
    sec = client_as("security")
    csrf = page_csrf(sec, "/people/obama")
    with all_logs() as logs:
        r = sec.post(
            "/people/obama/faces",
            data={"csrf": csrf},
            files=[upload(name, content)],
            follow_redirects=False,
        )
    assert r.status_code == 303 and "kind=error" in r.headers["location"]
    shown = sec.get(r.headers["location"]).text
    assert "face not enrolled" in shown and message in shown, shown[-2000:]
    assert faces_of(face_office, "obama") == []
    assert refusals(face_office) == {f"enrol_refused_{reason}": 1}
    [entry] = [e for e in logs if e["event"] == "biometric_enrolment_refused"]
    assert entry["reason"] == reason and entry["person"] == "obama"


def test_api_enrols_and_refuses_with_status(face_office: Office, client_as) -> None:  # type: ignore[no-untyped-def]
    secret = tokens.create(face_office.engine, ADMIN, "hr", "security")
    auth = {"Authorization": f"Bearer {secret}"}
    api = client_as(None)
    r = api.post("/api/v1/people/obama/faces", files=[upload("obama2")], headers=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["value"].startswith("face-") and body["version"] >= 2
    assert [c["value"] for c in faces_of(face_office, "obama")] == [body["value"]]
    r = api.post("/api/v1/people/obama/faces", files=[upload("two_people")], headers=auth)
    assert r.status_code == 422 and "2 faces found" in r.json()["detail"]
    r = api.post("/api/v1/people/nobody/faces", files=[upload("obama")], headers=auth)
    assert r.status_code == 404 and "no person 'nobody'" in r.json()["detail"]
    six = [upload("obama_small")] * (biometrics.MAX_PHOTOS + 1)
    r = api.post("/api/v1/people/obama/faces", files=six, headers=auth)
    assert r.status_code == 422 and "at most 5" in r.json()["detail"]
    assert refusals(face_office) == {
        "enrol_refused_several_faces": 1,
        "enrol_refused_unknown_person": 1,
        "enrol_refused_too_many": 1,
    }
    viewer = tokens.create(face_office.engine, ADMIN, "screen", "viewer")
    r = api.post(
        "/api/v1/people/obama/faces",
        files=[upload("obama")],
        headers={"Authorization": f"Bearer {viewer}"},
    )
    assert r.status_code == 403


@pytest.mark.parametrize("role", ["reception", "viewer"])
def test_only_people_managers_may_enrol(face_office: Office, client_as, role: str) -> None:  # type: ignore[no-untyped-def]
    c = client_as(role)
    csrf = page_csrf(c, "/doors")
    r = c.post(
        "/people/obama/faces", data={"csrf": csrf}, files=[upload("obama")], follow_redirects=False
    )
    assert r.status_code == 403
    if role == "reception":  # may look the person up, sees no enrolment form
        assert 'id="enrol-face"' not in c.get("/people/obama").text
    assert faces_of(face_office, "obama") == []


def test_office_without_the_face_stack_says_so(office: Office) -> None:
    credentials.save_person(office, ADMIN, "obama")
    with pytest.raises(ChangeRefused, match="no face stack installed"):
        biometrics.enrol_face(office, ADMIN, "obama", [("a.jpg", b"x")])
    assert refusals(office) == {"enrol_refused_no_face_stack": 1}


def test_a_dead_encoder_process_is_a_refusal_logged_and_counted(office: Office) -> None:
    """``central serve`` encodes in a worker process (face/encode_process.py): a worker
    dying in the middle of an enrolment refuses that enrolment clearly, counted like a bad
    photo; nothing is stored."""
    from edgegate.face.encode_process import FaceEncoderProcess

    encoder = FaceEncoderProcess(encode="tests.face.encoders:dies_on_die_jpg", warm_up=False)
    office.encode_face = encoder
    credentials.save_person(office, ADMIN, "obama")
    try:
        with pytest.raises(ChangeRefused, match="stopped while encoding"):
            biometrics.enrol_face(office, ADMIN, "obama", [("die.jpg", b"x")])
    finally:
        encoder.close()
    assert encoder.restarts == 1
    assert refusals(office) == {"enrol_refused_encoder_died": 1}
    assert faces_of(office, "obama") == []


def test_a_busy_encoder_process_refuses_at_once_through_the_service(
    office: Office, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """The encoder process's own admission (at most ``max_pending``) is the one queue: an
    enrolment beyond it is refused at once as busy, counted, not held in a second queue in
    front of the encoder until the one in hand is done."""
    import threading

    from edgegate.face.encode_process import FaceEncoderProcess

    encoder = FaceEncoderProcess(
        encode="tests.face.encoders:waits_for_file", max_pending=1, nice=0, warm_up=False
    )
    office.encode_face = encoder
    credentials.save_person(office, ADMIN, "obama")
    flag = tmp_path / "go"
    request = [("wait.jpg", str(flag).encode())]
    first = threading.Thread(
        target=biometrics.face_credential, args=(office, ADMIN, "obama", request)
    )
    second_said: list[BaseException] = []

    def second() -> None:
        try:
            biometrics.face_credential(office, ADMIN, "obama", [("b.jpg", b"x")])
        except BaseException as exc:
            second_said.append(exc)

    late = threading.Thread(target=second)
    try:
        first.start()
        wait_until(lambda: encoder.pending == 1, 60)
        late.start()
        late.join(30)  # a bound against a hang: refused at once, or queued behind the first
        assert not late.is_alive(), "queued behind the enrolment in hand instead of refused"
        assert len(second_said) == 1 and isinstance(second_said[0], ChangeRefused)
        assert "try again" in str(second_said[0])
        assert refusals(office) == {"enrol_refused_encoder_busy": 1}
    finally:
        flag.touch()
        first.join(60)
        late.join(60)
        encoder.close()


def test_cli_image_is_the_same_service_and_the_same_credential(
    face_office: Office, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """``central people add-credential --kind face --image`` and the console make the same
    credential from the same photo: one path, deterministic encodings, the same id."""
    from edgegate.cli.main import main

    config = tmp_path / "central.toml"
    assert main(["central", "keygen", "--config", str(config)]) == 0
    argv = ["central", "people", "add-credential", "obama", "--kind", "face"]
    # Exit 3: stored in the master, no broker in this test (published later).
    assert main([*argv, "--image", str(photo("obama")), "--config", str(config)]) == 3
    [cli_cred] = faces_of(face_office, "obama")
    _change, value = biometrics.enrol_face(
        face_office, ADMIN, "obama", [("x.jpg", photo("obama").read_bytes())]
    )
    assert value == cli_cred["value"]
    assert main([*argv, "--image", str(photo("two_people")), "--config", str(config)]) == 1


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(content=st.binary(min_size=0, max_size=2000))
def test_any_bytes_are_enrolled_or_refused_never_crash(face_office: Office, content: bytes) -> None:
    """Property: whatever arrives as a photo, the service refuses it with a reason (or, for
    a real image with one face, enrols it); nothing else escapes and nothing half-stored."""
    before = faces_of(face_office, "obama")
    try:
        biometrics.enrol_face(face_office, ADMIN, "obama", [("upload", content)])
    except biometrics.EnrolRefused as exc:
        assert exc.reason in {"not_image", "unreadable", "no_face", "too_large"}
        assert faces_of(face_office, "obama") == before
    else:  # pragma: no cover - random bytes are never a portrait
        assert np.any(faces_of(face_office, "obama"))
