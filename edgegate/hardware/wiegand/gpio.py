"""Kernel-timestamped D0/D1 edges from the GPIO character device (libgpiod v2, PyPI gpiod).

Why not pigpio: it does not run on a Pi 5 (RP1). Why not gpiozero callbacks: they arrive on
a thread with a user-space timestamp taken whenever that thread ran, which at 50 us pulses
is worse than the pulse itself. The kernel stamps each edge in the interrupt handler and
queues it; we read the queue when its file descriptor is readable, on the event loop, so
there is no thread and no polling. The timestamps are CLOCK_MONOTONIC nanoseconds.
"""

from __future__ import annotations

import contextlib
from typing import Any, Protocol

from edgegate.hardware.wiegand.decoder import D0, D1, Edge


class EdgeSource(Protocol):
    """Where a Wiegand reader's edges come from: a descriptor to watch and a way to read."""

    def open(self) -> int:
        """Start listening; return a file descriptor that turns readable when edges wait.
        Raise ``OSError`` when the lines cannot be had."""
        ...

    def read(self) -> list[Edge]:
        """The edges waiting now (call when the descriptor is readable). ``OSError`` when
        the source is gone."""
        ...

    def close(self) -> None: ...


class GpiodEdgeSource:
    # A 34-bit frame is 68 edges; room for a few frames in case the loop is late.
    EVENT_BUFFER = 1024

    def __init__(self, chip: str, d0: int, d1: int, consumer: str = "edgegate-wiegand") -> None:
        self.chip = chip
        self.d0, self.d1 = d0, d1
        self.consumer = consumer
        self._request: Any = None

    def open(self) -> int:
        try:
            import gpiod
            from gpiod.line import Bias, Clock, Direction
            from gpiod.line import Edge as LineEdge
        except ImportError as exc:  # a clear fault, not a crash, on a door without the package
            raise OSError(f"python gpiod (libgpiod v2) is not installed: {exc}") from exc
        settings = gpiod.LineSettings(
            direction=Direction.INPUT,
            edge_detection=LineEdge.BOTH,
            bias=Bias.PULL_UP,  # both lines idle high; a cut wire then reads idle, not noise
            event_clock=Clock.MONOTONIC,
        )
        try:
            self._request = gpiod.request_lines(
                self.chip,
                config={(self.d0, self.d1): settings},
                consumer=self.consumer,
                event_buffer_size=self.EVENT_BUFFER,
            )
        except (OSError, ValueError) as exc:
            raise OSError(
                f"cannot request lines {self.d0},{self.d1} on {self.chip}: {exc}"
            ) from exc
        self._rising = gpiod.EdgeEvent.Type.RISING_EDGE
        return int(self._request.fd)

    def read(self) -> list[Edge]:
        request = self._request
        if request is None:
            raise OSError(f"{self.chip} is not open")
        events = request.read_edge_events()
        return [
            Edge(
                ev.timestamp_ns,
                D0 if ev.line_offset == self.d0 else D1,
                ev.event_type == self._rising,
            )
            for ev in events
        ]

    def close(self) -> None:
        request, self._request = self._request, None
        if request is not None:
            with contextlib.suppress(OSError):
                request.release()
