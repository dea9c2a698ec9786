"""dlib's face descriptor network, run in NumPy: the same weights and the same 128 numbers.

Why: dlib-bin (the prebuilt wheel, so nothing compiles on a Pi) is built without AVX, and its
network is 80-90% of each face's time. Here every convolution is one matrix product in
NumPy's OpenBLAS, which picks the CPU's vector unit at run time (AVX2 on a PC, NEON on a Pi),
and each batch-norm (affine) layer is folded into the convolution before it. The result is
checked against dlib's own ``compute_face_descriptor`` in tests/face/test_resnet.py.

The topology is dlib's dnn_face_recognition_ex.cpp (``anet_type``): a 7x7 stem, then
residual blocks of two 3x3 convolutions; a block that halves the size adds the 2x2
average-pooled input. dlib's ``add_prev`` adds tensors of different sizes by treating what is
outside the smaller one as zero (more channels after a widening block, one more row and
column where a stride-2 convolution and a 2x2 pool round differently); so does
:func:`_add`. The layers are taken from the model file by edgegate/face/dlib_model.py and
:func:`build` refuses any file whose layers do not follow that pattern.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgegate.face.dlib_model import DlibModelError, Layer, read_layers

CHIP_SIZE = 150
CHIP_PADDING = 0.25  # what dlib's compute_face_descriptor uses to cut the face chip


@dataclass(frozen=True)
class Conv:
    """A convolution with the following affine layer folded in: y = w * x + b."""

    weights: np.ndarray  # (filters, channels * nr * nc), rows in (c, y, x) order
    bias: np.ndarray  # (filters, 1)
    size: int
    stride: int
    padding: int


@dataclass(frozen=True)
class Block:
    first: Conv
    second: Conv
    down: bool  # stride 2, and the shortcut is the 2x2 average pool of the input


@dataclass(frozen=True)
class Net:
    mean: np.ndarray  # (3, 1, 1): dlib's average red, green, blue
    stem: Conv
    pool: int  # max pool size (stride 2)
    blocks: tuple[Block, ...]
    fc: np.ndarray  # (inputs, 128)


def _at(layers: list[Layer], i: int) -> Layer:
    """Layer ``i``, or a layer of kind "the end" past the last one (so a short file is a
    DlibModelError naming what is missing, not an IndexError)."""
    return layers[i] if i < len(layers) else Layer("the end")


def _fold(layers: list[Layer], at: int) -> Conv:
    """The convolution at ``at`` with the affine layer after it folded in."""
    con, affine = _at(layers, at), _at(layers, at + 1)
    if con.kind != "con" or affine.kind != "affine":
        raise DlibModelError(f"expected con then affine, found {con.kind} then {affine.kind}")
    w = con.arrays["weights"]
    gamma, beta = affine.arrays["gamma"], affine.arrays["beta"]
    if gamma.shape != (w.shape[0],):
        raise DlibModelError(f"affine of {gamma.shape} after a con of {w.shape[0]} filters")
    bias = con.arrays["biases"]
    if bias.size == 0:
        bias = np.zeros(w.shape[0], np.float32)
    nr, nc = con.ints["nr"], con.ints["nc"]
    sy, sx = con.ints["stride_y"], con.ints["stride_x"]
    py, px = con.ints["padding_y"], con.ints["padding_x"]
    if nr != nc or sy != sx or py != px:
        raise DlibModelError(f"non-square convolution {nr}x{nc} stride {sy},{sx}")
    folded = (w * gamma[:, None, None, None]).reshape(w.shape[0], -1)
    return Conv(
        weights=np.ascontiguousarray(folded, dtype=np.float32),
        bias=(bias * gamma + beta).astype(np.float32).reshape(-1, 1),
        size=nr,
        stride=sy,
        padding=py,
    )


def _expect(layers: list[Layer], at: int, kind: str) -> Layer:
    layer = _at(layers, at)
    if layer.kind != kind:
        raise DlibModelError(f"layer {at}: expected {kind}, found {layer.kind}")
    return layer


def build(layers: list[Layer]) -> Net:
    """The runnable network from the model file's layers (DlibModelError if not a dlib
    face-descriptor ResNet)."""
    inp = _expect(layers, 0, "input_rgb_image_sized")
    if (inp.ints["nr"], inp.ints["nc"]) != (CHIP_SIZE, CHIP_SIZE):
        raise DlibModelError(f"input of {inp.ints['nr']}x{inp.ints['nc']}, expected 150x150")
    mean = np.array([inp.floats["red"], inp.floats["green"], inp.floats["blue"]], np.float32)
    stem = _fold(layers, 1)
    _expect(layers, 3, "relu")
    mp = _expect(layers, 4, "max_pool")
    if mp.ints["nr"] != 3 or mp.ints["stride_y"] != 2 or mp.ints["padding_y"] != 0:
        raise DlibModelError(f"unexpected max pool {mp.ints}")
    at = 5
    blocks: list[Block] = []
    while at < len(layers) and layers[at].kind == "con":
        first = _fold(layers, at)
        _expect(layers, at + 2, "relu")
        second = _fold(layers, at + 3)
        at += 5
        down = _at(layers, at).kind == "avg_pool"
        if down:
            ints = layers[at].ints
            if (ints["nr"], ints["stride_y"], ints["padding_y"]) != (2, 2, 0):
                raise DlibModelError(f"unexpected shortcut pool {ints}")
            at += 1
        if first.stride != (2 if down else 1) or second.stride != 1:
            raise DlibModelError(f"block {len(blocks)}: strides do not match its shortcut")
        _expect(layers, at, "add_prev")
        _expect(layers, at + 1, "relu")
        at += 2
        blocks.append(Block(first, second, down))
    gp = _expect(layers, at, "avg_pool")
    if gp.ints["nr"] != 0 or gp.ints["nc"] != 0:
        raise DlibModelError(f"expected a global average pool, found {gp.ints}")
    fc = _expect(layers, at + 1, "fc")
    if at + 2 != len(layers) or not blocks:
        raise DlibModelError(f"{len(layers) - at - 2} unexpected layers after the fc layer")
    if fc.arrays["biases"].size:
        raise DlibModelError("fc layer with a bias; the descriptor network has none")
    return Net(
        mean=mean.reshape(3, 1, 1),
        stem=stem,
        pool=3,
        blocks=tuple(blocks),
        fc=np.ascontiguousarray(fc.arrays["weights"], dtype=np.float32),
    )


def load(path: Path | str) -> Net:
    return build(read_layers(path))


def _conv(x: np.ndarray, c: Conv) -> np.ndarray:
    """(C, H, W) -> (F, H', W'): im2col then one matrix product (BLAS does the work).

    The im2col matrix is filled by one strided slice copy per kernel tap (9 for 3x3) into a
    preallocated array: 3x faster than np.pad plus a transposed sliding-window view.
    """
    ch, h, w = x.shape
    k, s, p = c.size, c.stride, c.padding
    if p:
        padded = np.zeros((ch, h + 2 * p, w + 2 * p), np.float32)
        padded[:, p : p + h, p : p + w] = x
        x, h, w = padded, h + 2 * p, w + 2 * p
    ho, wo = (h - k) // s + 1, (w - k) // s + 1
    cols = np.empty((ch, k, k, ho, wo), np.float32)
    for dy in range(k):
        for dx in range(k):
            cols[:, dy, dx] = x[:, dy : dy + s * (ho - 1) + 1 : s, dx : dx + s * (wo - 1) + 1 : s]
    y = c.weights @ cols.reshape(ch * k * k, ho * wo)
    y += c.bias
    return y.reshape(-1, ho, wo)


def _add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """dlib's add_prev: the elementwise sum, the smaller tensor zero-extended."""
    if a.shape == b.shape:
        return a + b
    shape = tuple(max(i, j) for i, j in zip(a.shape, b.shape, strict=True))
    out = np.zeros(shape, np.float32)
    out[: a.shape[0], : a.shape[1], : a.shape[2]] += a
    out[: b.shape[0], : b.shape[1], : b.shape[2]] += b
    return out


def _avg_pool2(x: np.ndarray) -> np.ndarray:
    """2x2 average pool, stride 2, no padding (a trailing odd row or column is dropped)."""
    ho, wo = (x.shape[1] - 2) // 2 + 1, (x.shape[2] - 2) // 2 + 1
    out = x[:, 0 : 2 * ho : 2, 0 : 2 * wo : 2] + x[:, 1 : 2 * ho : 2, 0 : 2 * wo : 2]
    out += x[:, 0 : 2 * ho : 2, 1 : 2 * wo : 2]
    out += x[:, 1 : 2 * ho : 2, 1 : 2 * wo : 2]
    out *= np.float32(0.25)
    return out


def _max_pool(x: np.ndarray, size: int) -> np.ndarray:
    """size x size max pool, stride 2, no padding: the maximum of size**2 strided views
    (25 times faster than reducing a sliding-window view over its two small axes)."""
    ho, wo = (x.shape[1] - size) // 2 + 1, (x.shape[2] - size) // 2 + 1
    out = x[:, 0 : 2 * ho : 2, 0 : 2 * wo : 2].copy()
    for dy in range(size):
        for dx in range(size):
            if dy or dx:
                np.maximum(out, x[:, dy : dy + 2 * ho : 2, dx : dx + 2 * wo : 2], out=out)
    return out


def forward(net: Net, chip: np.ndarray) -> np.ndarray:
    """The 128-d descriptor of one 150x150 RGB uint8 face chip."""
    if chip.shape != (CHIP_SIZE, CHIP_SIZE, 3):
        raise ValueError(f"face chip must be 150x150x3, not {chip.shape}")
    x = (chip.transpose(2, 0, 1).astype(np.float32) - net.mean) / np.float32(256.0)
    x = _max_pool(np.maximum(_conv(x, net.stem), 0), net.pool)
    for b in net.blocks:
        y = _conv(x, b.first)
        y = _conv(np.maximum(y, 0, out=y), b.second)
        if b.down:
            x = _add(_avg_pool2(x), y)
        else:
            y += x  # same shape: add in place
            x = y
        np.maximum(x, 0, out=x)
    return (x.mean(axis=(1, 2)) @ net.fc).astype(np.float32)
