"""The 128-d face descriptor, by one of two engines computing the same network.

* ``blas`` (default): dlib's ResNet weights run in NumPy (edgegate/face/resnet.py), on the
  same 150x150 face chip dlib cuts (``dlib.get_face_chip``, padding 0.25). Its descriptors
  equal dlib's to ~1e-6 (tests/face/test_resnet.py), so galleries, thresholds and encodings
  from either engine mix freely. 4-7x faster than dlib-bin on the dev VM (docs/benchmarks.md).
* ``dlib``: ``face_recognition``'s encoder as is; kept for a CPU where the BLAS engine is
  not faster, and as the reference the tests compare against.

The BLAS engine runs on one thread. Thread hazard: OpenBLAS's default is a thread per core,
and with these small matrices its threads spin against each other and against the daemon;
on the 2-core dev VM that made a descriptor 10x slower (420 ms instead of 40). One thread
also leaves the other cores to the card readers, which is the face process's place (niced).
"""

from __future__ import annotations

import threading
from typing import Any, Literal

import numpy as np
import structlog

log = structlog.get_logger(__name__)

Engine = Literal["blas", "dlib"]
ENGINES: tuple[str, ...] = ("blas", "dlib")


class BlasDescriptor:
    """dlib's face recognition network in NumPy, one BLAS thread."""

    def __init__(self) -> None:
        import face_recognition_models
        from threadpoolctl import ThreadpoolController

        from edgegate.face import resnet

        path = face_recognition_models.face_recognition_model_location()
        self.net = resnet.load(path)
        self._threads = ThreadpoolController()
        log.info("face_descriptor_loaded", engine="blas", model=path)

    def __call__(self, rgb: np.ndarray, shape: object) -> np.ndarray:
        import dlib

        from edgegate.face import resnet

        chip = dlib.get_face_chip(rgb, shape, size=resnet.CHIP_SIZE, padding=resnet.CHIP_PADDING)
        # limit() is a context of ~30 us: the process's BLAS setting is left as it was.
        with self._threads.limit(limits=1, user_api="blas"):
            return resnet.forward(self.net, np.asarray(chip))


class DlibDescriptor:
    """face_recognition's own encoder (dlib's C++ network)."""

    def __init__(self) -> None:
        from face_recognition import api

        self.encoder = api.face_encoder

    def __call__(self, rgb: np.ndarray, shape: object) -> np.ndarray:
        return np.asarray(self.encoder.compute_face_descriptor(rgb, shape, 1), dtype=np.float32)


_engines: dict[str, Any] = {}
_lock = threading.Lock()  # enrolment may encode from executor threads


def descriptor(engine: str = "blas") -> BlasDescriptor | DlibDescriptor:
    """The process's descriptor for ``engine``, loaded on first use (~0.2 s for blas)."""
    if engine not in ENGINES:
        raise ValueError(f"unknown face descriptor engine {engine!r}; use one of {ENGINES}")
    with _lock:
        found = _engines.get(engine)
        if found is None:
            found = BlasDescriptor() if engine == "blas" else DlibDescriptor()
            _engines[engine] = found
    return found
