"""Reads the weights of dlib's face descriptor network out of its model file.

``dlib_face_recognition_resnet_model_v1.dat`` (shipped by ``face-recognition-models``) is dlib's
own serialisation of a 29-layer ResNet. dlib-bin, the prebuilt wheel we install so that nothing
compiles on a Pi, is built without AVX, and that network is 80-90% of every face's time; the
same arithmetic in NumPy's BLAS (edgegate/face/resnet.py) is several times faster on the same
CPU. This module only reads the file: no dlib, no NumPy maths.

The format, from dlib's sources (serialize.h, dnn/core.h, dnn/layers.h, cuda/tensor.h):

* integers: one byte whose low nibble is the count of little-endian bytes that follow and
  whose bit 7 is the sign, then those bytes (zero is ``01 00``);
* floating point: two integers, mantissa and exponent (value = mantissa * 2**exponent);
* strings: an integer length then the bytes; bools: the character ``0`` or ``1``;
* tensors: version 2, num_samples, k, nr, nc, then the values as little-endian float32;
  alias tensors (views into a layer's params): version 1 and the four sizes;
* every layer starts with its version string (``con_4``, ``affine_``, ``relu_``...).

The wrappers between layers (``add_layer``: gradients, cached outputs, flags) carry no
weights we need, so the reader finds each layer by its version string and reads that
layer's fields exactly; :func:`read_layers` returns them in forward order (input first).
Anything unexpected raises :class:`DlibModelError`, never a bare IndexError or struct error.
"""

from __future__ import annotations

import builtins
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgegate.errors import EdgegateError


class DlibModelError(EdgegateError, ValueError):
    """The file is not a dlib network of the kind this reader understands."""


@dataclass(frozen=True)
class Layer:
    """One layer of the network, in dlib's terms.

    ``kind`` is the version string without its number (``con``, ``affine``, ``relu``,
    ``max_pool``, ``avg_pool``, ``add_prev``, ``fc``, ``input_rgb_image_sized``); ``ints``
    the layer's integer fields by name; ``arrays`` its weights.
    """

    kind: str
    ints: dict[str, int] = field(default_factory=dict)
    floats: dict[str, float] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


# The layers of dlib_face_recognition_resnet_model_v1 (and the version strings we can read).
_NAMES = {
    b"input_rgb_image_sized": "input_rgb_image_sized",
    b"con_4": "con",
    b"con_5": "con",
    b"con_6": "con",
    b"affine_": "affine",
    b"affine_2": "affine",
    b"bn_con2": "bn_con",
    b"relu_": "relu",
    b"relu_2": "relu",
    b"max_pool_2": "max_pool",
    b"avg_pool_2": "avg_pool",
    b"add_prev_": "add_prev",
    b"fc_2": "fc",
    b"fc_3": "fc",
}
# A string is serialised as its length (an integer: 0x01 then one byte) then its bytes.
# Longest names first: "relu_" is a prefix of "relu_2", and the first alternative that
# matches wins.
_TAG = re.compile(
    b"\x01(?P<n>[\x04-\x20])(?P<name>"
    + b"|".join(re.escape(k) for k in sorted(_NAMES, key=len, reverse=True))
    + b")"
)


class _Reader:
    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def _take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise DlibModelError(f"model file ends inside a field at byte {self.pos}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def int(self) -> int:
        head = self._take(1)[0]
        size = head & 0x0F
        if size == 0 or size > 8 or head & 0x70:
            raise DlibModelError(f"bad integer header 0x{head:02x} at byte {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if head & 0x80 else value

    def float(self) -> float:
        mantissa = self.int()
        exponent = self.int()
        if not -1100 <= exponent <= 1100:
            raise DlibModelError(f"float exponent {exponent} out of range at byte {self.pos}")
        return float(mantissa) * 2.0**exponent

    def bool(self) -> bool:
        ch = self._take(1)
        if ch not in (b"0", b"1"):
            raise DlibModelError(f"bad bool {ch!r} at byte {self.pos - 1}")
        return ch == b"1"

    # `int` below is the method above, to the checker: the builtin by its full name.
    def _shape(self, version: builtins.int) -> tuple[builtins.int, ...]:
        got = self.int()
        if got != version:
            raise DlibModelError(f"tensor version {got} (expected {version}) at byte {self.pos}")
        shape = (self.int(), self.int(), self.int(), self.int())
        if any(d < 0 for d in shape):
            raise DlibModelError(f"negative tensor size {shape} at byte {self.pos}")
        return shape

    def tensor(self) -> np.ndarray:
        shape = self._shape(2)
        count = int(np.prod(shape, dtype=np.int64))
        raw = self._take(4 * count)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias(self) -> tuple[builtins.int, ...]:
        return self._shape(1)


def _params(params: np.ndarray, *shapes: tuple[int, ...]) -> list[np.ndarray]:
    """Slices of a layer's flat params tensor, in order (how dlib's alias tensors view it)."""
    flat = params.reshape(-1)
    need = sum(int(np.prod(s, dtype=np.int64)) for s in shapes)
    if flat.size != need:
        raise DlibModelError(f"params hold {flat.size} values, the layer needs {need}")
    out, at = [], 0
    for s in shapes:
        n = int(np.prod(s, dtype=np.int64))
        out.append(flat[at : at + n].reshape(s))
        at += n
    return out


def _pool(r: _Reader, kind: str) -> Layer:
    names = ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")
    return Layer(kind, ints={n: r.int() for n in names})


def _con(r: _Reader, version: bytes) -> Layer:
    params = r.tensor()
    ints = {n: r.int() for n in ("filters", "nr", "nc", "stride_y", "stride_x")}
    ints |= {n: r.int() for n in ("padding_y", "padding_x")}
    fshape, bshape = r.alias(), r.alias()
    for _ in range(4):  # learning-rate and weight-decay multipliers
        r.float()
    use_bias = r.bool() if version in (b"con_5", b"con_6") else True
    if version == b"con_6":
        r.bool()  # use_relu: a fused relu dlib adds at run time, never saved as true
    if not use_bias:
        bshape = (0, 0, 0, 0)
    weights, biases = _params(params, fshape, bshape)
    return Layer("con", ints=ints, arrays={"weights": weights, "biases": biases.reshape(-1)})


def _affine(r: _Reader) -> Layer:
    params = r.tensor()
    gshape, bshape = r.alias(), r.alias()
    mode = r.int()
    gamma, beta = _params(params, gshape, bshape)
    return Layer(
        "affine",
        ints={"mode": mode},
        arrays={"gamma": gamma.reshape(-1), "beta": beta.reshape(-1)},
    )


def _bn_con(r: _Reader) -> Layer:
    """A batch-norm layer saved during training, folded into the affine dlib runs it as."""
    params = r.tensor()
    gshape, bshape = r.alias(), r.alias()
    r.tensor()  # means of the last batch
    r.tensor()  # invstds of the last batch
    running_means = r.tensor().reshape(-1)
    running_variances = r.tensor().reshape(-1)
    r.int()  # num_updates
    r.int()  # running_stats_window_size
    for _ in range(4):
        r.float()
    eps = r.float()
    gamma, beta = (a.reshape(-1) for a in _params(params, gshape, bshape))
    scale = gamma / np.sqrt(running_variances + eps)
    return Layer(
        "affine",
        ints={"mode": 0},  # CONV_MODE: one gamma and beta per channel
        arrays={"gamma": scale.astype(np.float32), "beta": (beta - scale * running_means)},
    )


def _fc(r: _Reader, version: bytes) -> Layer:
    outputs, inputs = r.int(), r.int()
    params = r.tensor()
    wshape, bshape = r.alias(), r.alias()
    bias_mode = r.int()
    for _ in range(4):
        r.float()
    if version == b"fc_3":
        r.bool()
    if bias_mode == 1:  # FC_NO_BIAS: the biases alias is there but empty
        bshape = (0, 0, 0, 0)
    weights, biases = _params(params, wshape, bshape)
    return Layer(
        "fc",
        ints={"outputs": outputs, "inputs": inputs},
        arrays={"weights": weights.reshape(inputs, outputs), "biases": biases.reshape(-1)},
    )


def _input(r: _Reader) -> Layer:
    means = {n: r.float() for n in ("red", "green", "blue")}
    ints = {"nr": r.int(), "nc": r.int()}
    return Layer("input_rgb_image_sized", ints=ints, floats=means)


def parse_layers(data: bytes) -> list[Layer]:
    """The layers of a serialised dlib network, in forward order (input first).

    Raises DlibModelError for anything that is not such a file; never another exception.
    """
    layers: list[Layer] = []
    pos = 0
    try:
        while (m := _TAG.search(data, pos)) is not None:
            name = m.group("name")
            if m.group("n")[0] != len(name):  # a prefix of a longer string, e.g. "relu_2"
                pos = m.start() + 1
                continue
            r = _Reader(data, m.end())
            kind = _NAMES[name]
            if kind == "con":
                layer = _con(r, name)
            elif kind == "affine":
                layer = _affine(r)
            elif kind == "bn_con":
                layer = _bn_con(r)
            elif kind == "fc":
                layer = _fc(r, name)
            elif kind in ("max_pool", "avg_pool"):
                layer = _pool(r, kind)
            elif kind == "input_rgb_image_sized":
                layer = _input(r)
            else:
                if kind == "relu" and name == b"relu_2":
                    r.bool()  # disabled
                layer = Layer(kind)
            layers.append(layer)
            pos = r.pos
    except (OverflowError, ValueError, struct.error) as exc:
        if isinstance(exc, DlibModelError):
            raise
        raise DlibModelError(f"model file: {exc}") from None
    if not layers:
        raise DlibModelError("no dlib layers found in the model file")
    return layers


def read_layers(path: Path | str) -> list[Layer]:
    """The layers of the dlib model file at ``path`` (DlibModelError if unreadable)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DlibModelError(f"{path}: {exc.strerror or exc}") from None
    return parse_layers(data)
