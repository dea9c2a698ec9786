"""Simulated Wiegand wires: realistic edge timelines and an edge source fed by a pipe.

There is no gpio-sim (configfs) in the kernels this project is tested on, so the simulated
source stands in for the GPIO character device: it hands the reader a real file descriptor
that turns readable when edges wait, exactly the contract of a libgpiod line request, and the
edges carry CLOCK_MONOTONIC nanosecond timestamps like the kernel's. It is injected, never
looked up: hand it to the daemon as ``Daemon(config, edge_sources={reader_name: wires})``,
as gpiozero is handed a ``MockFactory``.
"""

from __future__ import annotations

import contextlib
import os
import struct
import time
from collections.abc import Iterable, Sequence

from edgegate.hardware.wiegand.decoder import Edge
from edgegate.hardware.wiegand.formats import encode_card, encode_key

PULSE_NS = 50_000  # 50 us low pulse
INTERVAL_NS = 2_000_000  # one bit every 2 ms
KEY_GAP_NS = 150_000_000  # a person presses a key every few hundred ms
_RECORD = struct.Struct("<qB?")


def frame_edges(
    bits: Sequence[int],
    t0_ns: int = 0,
    *,
    pulse_ns: int = PULSE_NS,
    interval_ns: int = INTERVAL_NS,
) -> list[Edge]:
    """The edges a reader produces sending ``bits``: one low pulse per bit on D0 or D1."""
    edges: list[Edge] = []
    for i, bit in enumerate(bits):
        start = t0_ns + i * interval_ns
        edges += [Edge(start, bit, False), Edge(start + pulse_ns, bit, True)]
    return edges


def card_edges(bits: int, facility: int, number: int, t0_ns: int = 0, **kw: int) -> list[Edge]:
    return frame_edges(encode_card(bits, facility, number), t0_ns, **kw)


def key_edges(keys: str, t0_ns: int = 0, *, bits: int = 4, gap_ns: int = KEY_GAP_NS) -> list[Edge]:
    edges: list[Edge] = []
    for i, key in enumerate(keys):
        edges += frame_edges(encode_key(key, bits), t0_ns + i * gap_ns)
    return edges


def end_ns(edges: Sequence[Edge]) -> int:
    return max(e.ts_ns for e in edges) if edges else 0


class SimulatedWiegand:
    """The wires of one simulated reader. ``send`` replays a timeline starting now."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.unplugged = False
        self._r: int | None = None
        self._w: int | None = None

    # -- the EdgeSource side (what the reader uses) --------------------------------------------
    def open(self) -> int:
        if self.unplugged:
            raise OSError(f"simulated Wiegand lines {self.name!r} are not available")
        self.close()
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        return self._r

    def read(self) -> list[Edge]:
        if self._r is None:
            raise OSError("not open")
        try:
            data = os.read(self._r, 65536 - 65536 % _RECORD.size)
        except BlockingIOError:
            return []
        if not data:
            raise OSError("GPIO lines went away")
        return [Edge(*rec) for rec in _RECORD.iter_unpack(data)]

    def close(self) -> None:
        for fd in (self._r, self._w):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._r = self._w = None

    # -- the test side ------------------------------------------------------------------------
    def send(self, edges: Iterable[Edge], *, shift_to_now: bool = True) -> None:
        edges = list(edges)
        if self._w is None:
            raise OSError("no reader is listening")
        offset = time.monotonic_ns() - min(e.ts_ns for e in edges) if shift_to_now and edges else 0
        data = b"".join(_RECORD.pack(e.ts_ns + offset, e.line, e.rising) for e in edges)
        view = memoryview(data)
        while view:
            n = os.write(self._w, view)
            view = view[n:]

    def card(self, bits: int, facility: int, number: int) -> None:
        self.send(card_edges(bits, facility, number))

    def keys(self, keys: str, bits: int = 4) -> None:
        self.send(key_edges(keys, bits=bits))

    def unplug(self) -> None:
        """The reader's lines vanish: the reader sees its source end."""
        self.unplugged = True
        if self._w is not None:
            with contextlib.suppress(OSError):
                os.close(self._w)
            self._w = None

    def replug(self) -> None:
        self.unplugged = False

    def forget(self) -> None:
        self.close()

    def __enter__(self) -> SimulatedWiegand:
        return self

    def __exit__(self, *exc: object) -> None:
        self.forget()
