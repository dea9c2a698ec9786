"""Gallery matching, sealed face credentials, k-of-n votes and blink detection (no dlib)."""

from __future__ import annotations

from collections import Counter, deque
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegate.face.credentials import (
    FaceDataError,
    from_wire,
    load_faces,
    pack,
    put_face,
    to_wire,
    unpack,
)
from edgegate.face.gallery import Gallery, Match
from edgegate.face.liveness import BlinkDetector, eye_aspect_ratio
from edgegate.face.votes import Failed, Grant, Presentation
from edgegate.store.db import open_db, transaction
from edgegate.store.sealed import MAGIC, SealError, load_key

RNG = np.random.default_rng(7)


def brute_force(faces: list[tuple[str, np.ndarray]], e: np.ndarray) -> dict[str, float]:
    return {p: float(np.min(np.linalg.norm(enc - e, axis=1))) for p, enc in faces}


@settings(max_examples=40, deadline=None)
@given(
    counts=st.lists(st.integers(1, 4), min_size=1, max_size=12),
    seed=st.integers(0, 2**32 - 1),
)
def test_vectorised_distances_equal_brute_force(counts: list[int], seed: int):
    rng = np.random.default_rng(seed)
    faces = [
        (f"p{i}", rng.normal(0, 0.1, (c, 128)).astype(np.float32)) for i, c in enumerate(counts)
    ]
    g = Gallery(faces)
    probe = rng.normal(0, 0.1, 128).astype(np.float32)
    want = brute_force(faces, probe)
    got = dict(zip(g.people, g.distances(probe).tolist(), strict=True))
    for p in want:
        assert got[p] == pytest.approx(want[p], abs=1e-4)
    best = min(want, key=want.__getitem__)
    m = g.match(probe, tolerance=10.0, margin=0.0)
    assert m.person == best and m.distance == pytest.approx(want[best], abs=1e-4)


def test_tolerance_margin_and_empty():
    a = RNG.normal(0, 0.1, 128).astype(np.float32)
    b = a + 0.03  # another person very close to a: distance ~0.34
    g = Gallery([("a", a[None]), ("b", b[None])])
    assert g.match(a, 0.5, 0.08) == Match(
        "a", pytest.approx(0.0, abs=1e-3), pytest.approx(0.34, abs=0.01), "match", "a"
    )
    # Halfway between the two: both within tolerance, neither ahead by the margin.
    mid = (a + b) / 2
    m = g.match(mid, 0.5, 0.08)
    assert m.person is None and m.reason == "ambiguous"
    far = a + 0.2
    assert g.match(far, 0.5, 0.08).reason == "too_far"
    assert Gallery().match(a, 0.5, 0.08).reason == "empty"
    # One person only: the margin cannot apply.
    assert Gallery([("a", a[None])]).match(a + 0.001, 0.5, 0.08).person == "a"


def test_face_credential_is_sealed_and_round_trips(tmp_path: Path):
    db = tmp_path / "door.db"
    conn = open_db(db, synchronous="NORMAL")
    key = load_key(db)
    enc = RNG.normal(0, 0.1, (2, 128)).astype(np.float32)
    with transaction(conn):
        assert put_face(conn, key, "obama", enc, name="Barack") == 2
    blob = conn.execute(
        "SELECT data FROM credentials WHERE kind='face' AND value='obama'"
    ).fetchone()[0]
    assert blob.startswith(MAGIC) and enc.tobytes() not in blob
    faces, bad = load_faces(conn, key)
    assert bad == 0 and faces[0][0] == "obama"
    np.testing.assert_array_equal(faces[0][1], enc)
    # A blob moved onto another person's row does not open; nor does a wrong key.
    with pytest.raises(SealError):
        unpack(key, "biden", blob)
    with pytest.raises(SealError):
        unpack(bytes(32), "obama", blob)
    conn.execute("UPDATE credentials SET data = ? WHERE value = 'obama'", (b"garbage",))
    assert load_faces(conn, key) == ([], 1)
    conn.close()


@pytest.mark.parametrize("bad", [np.zeros((0, 128)), np.zeros((2, 127)), np.full((1, 128), np.nan)])
def test_bad_encodings_refused(bad: np.ndarray):
    with pytest.raises(FaceDataError):
        pack(bytes(32), "x", bad)


@given(st.binary(max_size=600))
def test_unpack_never_crashes_on_garbage(blob: bytes):
    with pytest.raises(ValueError):
        unpack(bytes(32), "x", blob)


OBAMA = Match("obama", 0.35, 0.8, "match")
BIDEN = Match(None, 0.84, 0.9, "too_far")


def test_k_of_n_grants_once_then_quiet_until_face_leaves():
    p = Presentation(2, 3, redecide_seconds=5.0)
    assert p.vote(OBAMA, 0.0) == []
    assert p.vote(BIDEN, 0.1) == []
    [g] = p.vote(Match("obama", 0.4, 0.8, "match"), 0.2)
    assert g == Grant("obama", 0.4, 3, "obama")
    assert p.quiet(1.0) and not p.wants_encoding(1.0)
    assert p.vote(OBAMA, 1.0) == [] and p.seen(1.1) == []
    for _ in range(3):
        p.absent()
    assert not p.quiet(1.2)  # the face left: the next presentation is decided afresh


def test_unrecognised_tries_and_poor_tries():
    p = Presentation(2, 3, retry_seconds=1.0)
    out = [o for t in (0.0, 0.1, 0.2) for o in p.vote(BIDEN, t)]
    assert out == [Failed("unrecognised", False, 0.84)]
    # Refused: a pause before the next try, then a try of its own.
    assert not p.wants_encoding(0.5) and p.vote(BIDEN, 0.5) == []
    out = [o for t in (1.3, 1.4, 1.5) for o in p.vote(BIDEN, t)]
    assert out == [Failed("unrecognised", False, 0.84)]
    p.reset()
    out = [o for t in range(3) for o in p.poor("blurry", t * 0.1)]
    assert out == [Failed("blurry", poor=True)]


def test_a_denial_comes_as_soon_as_no_grant_is_possible():
    p = Presentation(2, 3, retry_seconds=1.0)
    assert p.vote(BIDEN, 0.0) == []
    assert p.vote(BIDEN, 0.1) == [Failed("unrecognised", False, 0.84)]
    # One frame naming someone keeps the try open: the third frame can still confirm them.
    p.reset()
    assert p.vote(BIDEN, 0.0) == [] and p.vote(OBAMA, 0.1) == []
    assert [o.person for o in p.vote(OBAMA, 0.2) if isinstance(o, Grant)] == ["obama"]
    # Poor frames are a retry signal, not a denial: that try keeps its n frames.
    p.reset()
    assert p.poor("blurry", 0.0) == [] and p.poor("blurry", 0.1) == []
    assert p.poor("blurry", 0.2) == [Failed("blurry", poor=True)]
    # k=3 of n=5: denied once two frames of the five name nobody... no: once the best
    # person cannot reach three by the end of the try.
    p = Presentation(3, 5)
    assert [o for t in range(2) for o in p.vote(BIDEN, t)] == []  # 3 frames left: still open
    assert p.vote(BIDEN, 2) == [Failed("unrecognised", False, 0.84)]


def _full_try_rule(frames: list[Match | str], k: int, n: int) -> tuple[int, object] | None:
    """The rule before early denials: a try always ran its n frames. (frame, outcome) of
    the first outcome, as kind and person."""
    window: deque[Match | str] = deque(maxlen=n)
    for i, f in enumerate(frames):
        window.append(f)
        named = Counter(m.person for m in window if isinstance(m, Match) and m.person)
        if isinstance(f, Match) and named and named.most_common(1)[0][1] >= k:
            return i, ("grant", named.most_common(1)[0][0])
        if i + 1 == n:
            matches = [m for m in window if isinstance(m, Match)]
            return i, ("poor" if not matches else "deny", None)
    return None


_VOTE = st.one_of(
    st.sampled_from(["obama", "biden", None]).map(
        lambda who: Match(who, 0.4 if who else 0.8, 0.9, "match" if who else "too_far")
    ),
    st.just("blurry"),
)


@settings(max_examples=300)
@given(st.lists(_VOTE, min_size=1, max_size=12), st.integers(1, 4), st.integers(0, 3))
def test_early_denial_never_changes_a_decision(frames: list[Match | str], k: int, extra: int):
    """Against the full-try rule: the same first decision (grant whom, deny, retry), on the
    same frame for grants and retries, never later for denials."""
    n = k + extra
    frames = frames + [BIDEN] * n  # long enough for the full-try rule to decide
    p = Presentation(k, n)
    ours = None
    for i, f in enumerate(frames):
        out = p.vote(f, i * 0.01) if isinstance(f, Match) else p.poor(f, i * 0.01)
        if out:
            o = out[0]
            kind = (
                ("grant", o.person)
                if isinstance(o, Grant)
                else (("poor" if o.poor else "deny"), None)
            )
            ours = (i, kind)
            break
    ref = _full_try_rule(frames, k, n)
    assert ref is not None and ours is not None, (ref, ours)
    assert ours[1] == ref[1]
    if ref[1][0] == "deny":
        assert ours[0] <= ref[0]
    else:
        assert ours[0] == ref[0]


def test_liveness_holds_the_grant_until_a_blink():
    p = Presentation(2, 3, liveness=True, liveness_frames=4)
    for ear in (0.3, 0.3):
        p.eyes(ear)
    assert p.vote(OBAMA, 0.0) == [] and p.vote(OBAMA, 0.1) == []
    assert not p.wants_encoding(0.2)  # identity confirmed: only the eyes are watched now
    assert p.seen(0.2) == []
    p.eyes(0.1)
    p.eyes(0.31)
    [g] = p.seen(0.3)
    assert isinstance(g, Grant) and g.person == "obama"
    # A still photo never blinks: the try fails after liveness_frames.
    q = Presentation(2, 3, liveness=True, liveness_frames=3)
    q.vote(OBAMA, 0.0)
    q.vote(OBAMA, 0.1)
    out = [o for t in range(3) for o in q.seen(0.2 + t)]
    assert out == [Failed("no_blink", poor=False, distance=0.35)]


@settings(max_examples=50)
@given(
    pts=st.lists(st.tuples(st.floats(0, 100), st.floats(0, 100)), min_size=6, max_size=6).filter(
        lambda p: abs(p[0][0] - p[3][0]) + abs(p[0][1] - p[3][1]) > 1
    ),
    scale=st.floats(0.5, 4),
)
def test_ear_is_scale_invariant_and_non_negative(pts, scale):
    eye = np.array(pts)
    assert eye_aspect_ratio(eye) >= 0
    assert eye_aspect_ratio(eye * scale) == pytest.approx(eye_aspect_ratio(eye), rel=1e-6)


@given(st.lists(st.floats(0.0, 0.5), max_size=40))
def test_blink_needs_open_closed_open(ears: list[float]):
    d = BlinkDetector(0.21)
    for e in ears:
        d.update(e)
    # A blink implies an open frame, then a closed one, then an open one, in that order.
    seq = "".join("o" if e >= 0.21 else "c" for e in ears)
    assert d.blinked == ("oc" in seq and "o" in seq[seq.index("oc") + 2 :])


def test_wire_format_round_trips():
    enc = RNG.normal(0, 0.1, (3, 128)).astype(np.float32)
    np.testing.assert_array_equal(from_wire(to_wire(enc)), enc)


@given(st.text(max_size=300))
def test_from_wire_refuses_garbage_cleanly(data: str):
    try:
        out = from_wire(data)
    except FaceDataError:
        return
    assert out.ndim == 2 and out.shape[1] == 128 and np.isfinite(out).all()


def test_a_person_with_door_and_office_credentials_is_one_person(tmp_path: Path):
    # Enrolled at the door (value = person id) and sent by the office (value = face-<hash>).
    db = tmp_path / "door.db"
    conn = open_db(db, synchronous="NORMAL")
    key = load_key(db)
    door, office = RNG.normal(0, 0.1, (2, 128)).astype(np.float32)
    other = RNG.normal(0, 0.1, 128).astype(np.float32)
    with transaction(conn):
        put_face(conn, key, "obama", door)
        put_face(conn, key, "obama", office, value="face-0123456789abcdef")
        put_face(conn, key, "biden", other)
    faces, bad = load_faces(conn, key)
    conn.close()
    assert bad == 0 and sorted(v for _, _, v in faces) == [
        "biden",
        "face-0123456789abcdef",
        "obama",
    ]
    g = Gallery(faces)
    assert sorted(g.people) == ["biden", "obama"]
    m = g.match(office + 0.001, 0.5, 0.08)
    # Two credentials of the same person never make each other ambiguous.
    assert (m.person, m.value, m.reason) == ("obama", "face-0123456789abcdef", "match")
    assert g.match(door, 0.5, 0.08).value == "obama"


def test_face_from_a_central_update_lands_in_the_gallery(tmp_path: Path):
    # The door's MQTT sync applies the office's credential as sent (value face-<hash>,
    # base64 of k x 128 float32) and seals it; the face process must read it back.
    from datetime import UTC, datetime

    from edgegate.contract.messages import CredentialUpdate
    from edgegate.sync.credentials_apply import apply_update
    from tests.conftest import journal_writer

    db = tmp_path / "door.db"
    conn = open_db(db, synchronous="NORMAL")
    key = load_key(db)
    enc = RNG.normal(0, 0.1, (2, 128)).astype(np.float32)
    msg = CredentialUpdate(
        type="credentials",
        site="s",
        version=1,
        base=0,
        issued=datetime.now(UTC),
        ops=[
            {"op": "put_person", "person": {"id": "alice", "name": "Alice"}},
            {
                "op": "put_credential",
                "credential": {
                    "kind": "face",
                    "value": "face-0123456789abcdef",
                    "person": "alice",
                    "data": to_wire(enc),
                },
            },
        ],
    )
    outcome, _ = apply_update(conn, msg, journal_tx=journal_writer(), seal_key=key)
    faces, bad = load_faces(conn, key)
    conn.close()
    assert outcome == "apply" and bad == 0
    [(person, got, value)] = faces
    assert (person, value) == ("alice", "face-0123456789abcdef")
    np.testing.assert_array_equal(got, enc)
    assert Gallery(faces).match(enc[1], 0.5, 0.08).value == "face-0123456789abcdef"
