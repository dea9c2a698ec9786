"""The frame pipeline with the real face_recognition/dlib on the real photos."""

from __future__ import annotations

import numpy as np
import pytest

from edgegate.face.gallery import Gallery
from edgegate.face.pipeline import FacePipeline, FrameResult, Settings
from edgegate.face.votes import Failed, Grant

pytestmark = pytest.mark.face


def run(frames: list[np.ndarray], gallery: Gallery, **kw) -> tuple[list[FrameResult], list]:
    p = FacePipeline(Settings(**kw), gallery)
    results = [p.process(f, now=i * 0.1) for i, f in enumerate(frames)]
    return results, [o for r in results for o in r.outcomes]


@pytest.fixture(scope="module")
def obama_only(enrolled) -> Gallery:
    return Gallery([("obama", enrolled["obama"])])


@pytest.mark.parametrize("name", ["obama2", "obama3"])
def test_enrolled_person_opens_with_k_of_n(frames, obama_only, name):
    results, outcomes = run([frames[name]] * 3, obama_only)
    [grant] = outcomes
    assert isinstance(grant, Grant) and grant.person == "obama"
    # Same person, other photos: distances 0.3-0.4, inside the strict 0.5.
    assert 0.2 < grant.distance < 0.45
    assert [r.status for r in results] == ["encoded", "encoded", "quiet"]
    assert results[0].detect_ms > 0 and results[0].encode_ms > 0 and results[0].match_ms > 0


def test_other_person_denied_even_at_library_default(frames, obama_only):
    results, outcomes = run([frames["biden2"]] * 3, obama_only, tolerance=0.6)
    assert outcomes == [Failed("unrecognised", poor=False, distance=pytest.approx(0.84, abs=0.05))]
    # Refused on the second frame (two frames naming nobody cannot be outvoted by a third),
    # then left alone for retry_seconds.
    assert results[1].outcomes == outcomes
    assert [r.status for r in results] == ["encoded", "encoded", "quiet"]
    assert all(r.match is not None and r.match.person is None for r in results[:2])


def test_two_people_side_by_side_nobody_is_decided(frames, obama_only):
    results, outcomes = run([frames["two_people"]] * 3, obama_only)
    assert {r.status for r in results} == {"two_faces"} and results[0].faces == 2
    assert outcomes == [Failed("two_faces", poor=True)]


def test_closest_face_decides_over_a_face_far_behind(frames, enrolled):
    g = Gallery([("obama", enrolled["obama"])])
    results, outcomes = run([frames["obama_with_biden_behind"]] * 2, g)
    assert results[0].faces == 2
    assert [o.person for o in outcomes if isinstance(o, Grant)] == ["obama"]
    # The other way round obama is only in the background: he must not open the door.
    _, outcomes = run([frames["biden_with_obama_behind"]] * 3, g)
    assert not any(isinstance(o, Grant) for o in outcomes)
    assert [o.reason for o in outcomes] == ["unrecognised"]


def test_partial_faces(frames, obama_only):
    # Cut by the frame edge: not encoded (an encoding of half a face is not trusted).
    results, outcomes = run([frames["partial_cut_by_edge"]] * 3, obama_only)
    assert {r.status for r in results} == {"partial"}
    assert outcomes == [Failed("partial", poor=True)]
    # The whole face in view, even if the photo crops the head: matched as usual.
    _, outcomes = run([frames["partial_in_view"]] * 2, obama_only)
    assert [o.person for o in outcomes] == ["obama"]


def test_small_and_blurred_faces_are_not_decided(frames, obama_only):
    results, outcomes = run([frames["small"]] * 4, obama_only)
    # Too far from the door: ignored entirely, no retry signal, nothing counts towards staff.
    assert {r.status for r in results} == {"none"} and outcomes == []
    results, outcomes = run([frames["blurred"]] * 3, obama_only)
    assert {r.status for r in results} == {"blurry"}
    assert outcomes == [Failed("blurry", poor=True)]


def test_liveness_stops_a_still_photo(frames, obama_only):
    results, outcomes = run([frames["obama2"]] * 6, obama_only, liveness=True, liveness_frames=4)
    # Identity confirmed after two frames, then only the eyes are watched (no more encoding).
    assert [r.status for r in results[:3]] == ["encoded", "encoded", "watching"]
    assert outcomes == [Failed("no_blink", poor=False, distance=pytest.approx(0.37, abs=0.05))]
