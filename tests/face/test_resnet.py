"""dlib's face network in NumPy: read from the real model file, checked against dlib itself."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgegate.face import dlib_model, resnet
from edgegate.face.dlib_model import DlibModelError, Layer, parse_layers
from tests.face.conftest import photo

face_recognition = pytest.importorskip("face_recognition")


@pytest.fixture(scope="module")
def model_path() -> Path:
    import face_recognition_models

    return Path(face_recognition_models.face_recognition_model_location())


@pytest.fixture(scope="module")
def model_bytes(model_path: Path) -> bytes:
    return model_path.read_bytes()


@pytest.fixture(scope="module")
def layers(model_bytes: bytes) -> list[Layer]:
    return parse_layers(model_bytes)


def test_model_file_reads_as_the_documented_resnet(layers: list[Layer]) -> None:
    kinds = [layer.kind for layer in layers]
    assert kinds[0] == "input_rgb_image_sized" and kinds[-2:] == ["avg_pool", "fc"]
    assert kinds.count("con") == 29 and kinds.count("affine") == 29
    assert kinds.count("add_prev") == 14
    net = resnet.build(layers)
    assert [b.down for b in net.blocks].count(True) == 4
    assert net.fc.shape == (256, 128)
    assert net.stem.weights.shape == (32, 3 * 7 * 7)
    # dlib's default channel means, read from the file rather than assumed.
    assert np.allclose(net.mean.reshape(-1), [122.782, 117.001, 104.298], atol=1e-3)


@pytest.mark.parametrize("name", ["obama", "obama2", "biden", "two_people", "obama_small"])
def test_descriptors_equal_dlibs_on_the_photos(name: str) -> None:
    """Every face in the photo: the BLAS engine gives dlib's own 128 numbers."""
    from edgegate.face import encode as fe
    from edgegate.face.descriptor import descriptor

    rgb = fe.load_rgb(photo(name))
    boxes = face_recognition.face_locations(rgb, number_of_times_to_upsample=1)
    assert boxes, name
    for box in boxes:
        shape = fe.landmarks(rgb, box)
        ref = descriptor("dlib")(rgb, shape)
        ours = descriptor("blas")(rgb, shape)
        assert ours.dtype == np.float32 and ours.shape == (128,)
        # Same decisions need distances equal far below the 0.08 margin and 0.5 tolerance.
        assert np.abs(ours - ref).max() < 1e-4, (name, box)
        assert float(np.linalg.norm(ours - ref)) < 1e-4


def test_engines_give_the_same_distances_between_people() -> None:
    from edgegate.face.encode import encoding_from_image, load_rgb

    imgs = {n: load_rgb(photo(n)) for n in ("obama", "obama2", "biden")}
    import edgegate.face.encode as fe

    def enc(engine: str, name: str) -> np.ndarray:
        rgb = imgs[name]
        box = face_recognition.face_locations(rgb)[0]
        return fe.encode(rgb, fe.landmarks(rgb, box), engine)

    for engine in ("blas", "dlib"):
        same = np.linalg.norm(enc(engine, "obama") - enc(engine, "obama2"))
        other = np.linalg.norm(enc(engine, "obama") - enc(engine, "biden"))
        assert same < 0.5 < other, (engine, same, other)
    # Enrolment goes through the default (BLAS) engine.
    assert encoding_from_image(imgs["obama"]).shape == (128,)


def test_build_refuses_a_different_topology(layers: list[Layer]) -> None:
    no_relu = [x for i, x in enumerate(layers) if not (i == 3 and x.kind == "relu")]
    with pytest.raises(DlibModelError, match="expected relu"):
        resnet.build(no_relu)
    with pytest.raises(DlibModelError):
        resnet.build(layers[:-1])  # no fc
    with pytest.raises(DlibModelError, match="unexpected layers"):
        resnet.build([*layers, Layer("relu")])
    for cut in (1, 2, 6, 8, 40):  # a file that ends early anywhere: named, never IndexError
        with pytest.raises(DlibModelError, match="the end"):
            resnet.build(layers[:cut])
    wrong = list(layers)
    wrong[2] = dataclasses.replace(
        layers[2], arrays={"gamma": np.ones(7, np.float32), "beta": np.zeros(7, np.float32)}
    )
    with pytest.raises(DlibModelError, match="affine"):
        resnet.build(wrong)


def test_truncated_or_damaged_model_file_is_a_clear_error(
    model_bytes: bytes, tmp_path: Path
) -> None:
    cut = tmp_path / "cut.dat"
    cut.write_bytes(model_bytes[: len(model_bytes) // 2])
    with pytest.raises(DlibModelError):
        resnet.load(cut)
    with pytest.raises(DlibModelError, match=r"missing\.dat"):
        dlib_model.read_layers(tmp_path / "missing.dat")
    with pytest.raises(DlibModelError, match="no dlib layers"):
        parse_layers(b"not a model at all")


def test_forward_refuses_a_chip_of_the_wrong_size(layers: list[Layer]) -> None:
    net = resnet.build(layers)
    with pytest.raises(ValueError, match="150x150x3"):
        resnet.forward(net, np.zeros((100, 100, 3), np.uint8))


def test_add_zero_extends_like_dlibs_add_prev() -> None:
    a = np.ones((2, 3, 3), np.float32)
    b = np.full((4, 2, 2), 2.0, np.float32)
    out = resnet._add(a, b)
    assert out.shape == (4, 3, 3)
    assert out[0, 0, 0] == 3 and out[0, 2, 2] == 1 and out[3, 1, 1] == 2 and out[3, 2, 2] == 0


@given(st.binary(max_size=400))
def test_parser_on_arbitrary_bytes_raises_only_its_own_error(data: bytes) -> None:
    try:
        layers = parse_layers(data)
    except DlibModelError:
        return
    assert all(isinstance(x, Layer) for x in layers)


_TAGS = [b"\x01\x05con_4", b"\x01\x07affine_", b"\x01\x04fc_2", b"\x01\x0aavg_pool_2"]


@given(st.lists(st.one_of(st.sampled_from(_TAGS), st.binary(max_size=24)), max_size=12))
def test_parser_on_tags_followed_by_garbage_raises_only_its_own_error(parts: list[bytes]) -> None:
    # Layer names followed by junk reach every field reader, not just the tag search.
    with contextlib.suppress(DlibModelError):
        parse_layers(b"".join(parts))


@given(cut=st.integers(min_value=0, max_value=4000), flip=st.integers(0, 255))
def test_parser_on_damaged_model_heads_raises_only_its_own_error(
    model_bytes: bytes, cut: int, flip: int
) -> None:
    head = bytearray(model_bytes[:4000])
    if cut < len(head):
        head[cut] ^= flip
    with contextlib.suppress(DlibModelError):
        parse_layers(bytes(head[: max(cut, 1)]))


def _int(v: int) -> bytes:
    """dlib's integer encoding: a size byte (bit 7: negative), then little-endian bytes."""
    raw = abs(v).to_bytes(max(1, (abs(v).bit_length() + 7) // 8), "little")
    return bytes([len(raw) | (0x80 if v < 0 else 0)]) + raw


def _str(text: str) -> bytes:
    return _int(len(text)) + text.encode()


def _tensor(values: np.ndarray) -> bytes:
    shape = (values.size, 1, 1, 1)
    return _int(2) + b"".join(_int(d) for d in shape) + values.astype("<f4").tobytes()


def _alias(*shape: int) -> bytes:
    return _int(1) + b"".join(_int(d) for d in shape)


def test_newer_layer_versions_are_read_too() -> None:
    """affine_2 and relu_2 (dlib 19.x and later) as well as the model file's affine_ and
    relu_: the longer name must not be taken for its prefix."""
    gamma, beta = np.array([1.5, 2.0], np.float32), np.array([0.25, -1.0], np.float32)
    data = (
        _str("affine_2")
        + _tensor(np.concatenate([gamma, beta]))
        + _alias(1, 2, 1, 1)
        + _alias(1, 2, 1, 1)
        + _int(0)  # CONV_MODE
        + b"0"  # not disabled
        + _str("relu_2")
        + b"0"
    )
    affine, relu = parse_layers(data)
    assert affine.kind == "affine" and relu.kind == "relu"
    np.testing.assert_array_equal(affine.arrays["gamma"], gamma)
    np.testing.assert_array_equal(affine.arrays["beta"], beta)
