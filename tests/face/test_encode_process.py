"""The office's face encoder in a worker process (edgegate/face/encode_process.py), with the
real face_recognition on the real test photos: the same encodings as in-process, refusals
passed through, a niced process apart from the caller, a dead worker counted and replaced,
a full queue refused at once."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from edgegate.face.credentials import from_bytes
from edgegate.face.encode import FaceImageError, face_data_from_photos
from edgegate.face.encode_process import EncoderUnavailable, FaceEncoderProcess
from tests.central.conftest import wait_until
from tests.conftest import all_logs
from tests.face.conftest import photo

pytestmark = pytest.mark.face
WAIT = 60.0  # a bound against a hang, never a measure


def until(check: Callable[[], bool]) -> None:
    """Another thread's or process's progress: a condition wait, bounded, never a measure."""
    wait_until(check, WAIT)


def photos(*names: str) -> list[tuple[str, bytes]]:
    return [(f"{n}.jpg", photo(n).read_bytes()) for n in names]


@pytest.fixture(scope="module")
def encoder() -> Iterator[FaceEncoderProcess]:
    # Not niced here: on a machine busy with other suites a niced worker may wait minutes
    # for a CPU (which is what serve wants of it, not what a test's timeout wants).
    enc = FaceEncoderProcess(nice=0)
    yield enc
    enc.close()


def test_the_worker_is_a_niced_process_of_its_own() -> None:
    enc = FaceEncoderProcess(warm_up=False)
    try:
        enc.wait_ready()
        assert enc.pid is not None and enc.pid != os.getpid()
        assert os.getpriority(os.PRIO_PROCESS, enc.pid) == min(
            19, os.getpriority(os.PRIO_PROCESS, 0) + 10
        )
    finally:
        enc.close()


def test_encodes_as_in_process(encoder: FaceEncoderProcess) -> None:
    data = encoder(photos("obama", "obama2"))
    assert encoder.pid is not None and encoder.pid != os.getpid()
    here = from_bytes(face_data_from_photos(photos("obama", "obama2")))
    there = from_bytes(data)
    assert there.shape == here.shape == (2, 128)
    assert np.allclose(there, here, atol=1e-6)


def test_a_refused_photo_is_the_face_stacks_refusal_and_the_worker_stays(
    encoder: FaceEncoderProcess,
) -> None:
    encoder(photos("biden"))
    pid = encoder.pid
    with pytest.raises(FaceImageError, match=r"two_people\.jpg") as info:
        encoder(photos("two_people"))
    assert info.value.reason == "several_faces"
    with pytest.raises(FaceImageError) as info:
        encoder([("notes.jpg", b"not an image")])
    assert info.value.reason in ("not_image", "unreadable")
    assert encoder.pid == pid and encoder.restarts == 0


def test_a_worker_killed_between_enrolments_is_a_warning_not_a_lost_enrolment(
    encoder: FaceEncoderProcess,
) -> None:
    """Nothing was in hand when it died: the next enrolment succeeds on a new worker, and
    the death is counted and logged as a restart (a warning), never as an enrolment that
    failed (an error)."""
    encoder(photos("biden"))
    old = encoder.pid
    assert old is not None
    os.kill(old, 9)
    until(lambda: _gone(old))
    before = encoder.counters.copy()
    with all_logs() as logs:
        assert from_bytes(encoder(photos("biden"))).shape == (1, 128)
    assert encoder.pid != old
    assert encoder.counters["restarted"] == before["restarted"] + 1
    assert encoder.counters["died"] == before["died"]
    assert encoder.restarts == before["restarted"] + before["died"] + 1
    restarted = [e for e in logs if e["event"] == "face_encoder_restarted"]
    assert [e["log_level"] for e in restarted] == ["warning"]
    assert [e for e in logs if e["log_level"] == "error"] == []


def _gone(pid: int) -> bool:
    """Every thread of ``pid`` has exited, so its files (the pipe) are closed. The leader
    alone turning zombie is not enough: killed, a multithreaded process (dlib's, BLAS's
    threads) shows the leader as Z while its other threads still hold the fd table, and
    the pipe reads EOF only once the last of them is gone."""
    try:
        zombie = Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
        return zombie and os.listdir(f"/proc/{pid}/task") == [str(pid)]
    except FileNotFoundError:
        return True


def test_a_worker_dying_in_a_request_is_a_clear_error_counted_and_restarted() -> None:
    enc = FaceEncoderProcess(encode="tests.face.encoders:dies_on_die_jpg", nice=0)
    try:
        with all_logs() as logs, pytest.raises(EncoderUnavailable, match="stopped while") as info:
            enc([("die.jpg", photo("obama").read_bytes())])
        assert info.value.reason == "encoder_died"
        assert enc.restarts == 1 and enc.counters["died"] == 1
        died = [e for e in logs if e["event"] == "face_encoder_died"]
        assert [e["log_level"] for e in died] == ["error"]
        # The next enrolment goes to the new worker.
        assert from_bytes(enc(photos("obama"))).shape == (1, 128)
        assert enc.restarts == 1
    finally:
        enc.close()


def test_a_full_queue_is_refused_at_once(tmp_path: Path) -> None:
    # No face stack needed: the request in flight only waits, the second never reaches it.
    enc = FaceEncoderProcess(
        encode="tests.face.encoders:waits_for_file", max_pending=1, nice=0, warm_up=False
    )
    flag = tmp_path / "go"
    results: list[bytes] = []
    first = threading.Thread(target=lambda: results.append(enc([("wait.jpg", str(flag).encode())])))
    try:
        first.start()
        until(lambda: enc.pending == 1)
        with pytest.raises(EncoderUnavailable, match="try again") as info:
            enc(photos("obama"))
        assert info.value.reason == "encoder_busy" and enc.counters["busy"] == 1
        flag.touch()
        first.join(WAIT)
        assert results == [b"waited"] and enc.pending == 0
    finally:
        flag.touch()
        first.join(WAIT)
        enc.close()
    with pytest.raises(EncoderUnavailable) as info:
        enc(photos("obama"))
    assert info.value.reason == "encoder_stopped"


def test_pending_is_the_one_count_admission_and_reports_use(tmp_path: Path) -> None:
    """What ``pending`` says is what admits or refuses: with two in hand, every further
    enrolment is refused and ``pending`` stays two; once they are done it is zero and the
    next is admitted."""
    enc = FaceEncoderProcess(
        encode="tests.face.encoders:waits_for_file", max_pending=2, nice=0, warm_up=False
    )
    flag = tmp_path / "go"
    request = [("wait.jpg", str(flag).encode())]
    results: list[bytes] = []
    held = [threading.Thread(target=lambda: results.append(enc(request))) for _ in range(2)]
    try:
        for t in held:
            t.start()
        until(lambda: enc.pending == 2)
        for n in range(1, 4):
            with pytest.raises(EncoderUnavailable) as info:
                enc(request)
            assert info.value.reason == "encoder_busy"
            assert enc.counters["busy"] == n and enc.pending == 2
        flag.touch()
        for t in held:
            t.join(WAIT)
        assert results == [b"waited", b"waited"] and enc.pending == 0
        assert enc(request) == b"waited" and enc.pending == 0
    finally:
        flag.touch()
        for t in held:
            t.join(WAIT)
        enc.close()
