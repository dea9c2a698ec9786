"""From D0/D1 edge events to bit frames. Pure: no IO, timestamps come with the edges.

Both Wiegand lines idle high. A reader sends a 0 as a low pulse on D0 and a 1 as a low pulse
on D1, typically 50 us wide (20-100 us) every 1-2 ms, and a frame ends with silence. The
decoder is fed kernel-timestamped edges (falling and rising, per line) and checks what the
wires really did rather than trusting every falling edge:

* a pulse narrower than ``min_pulse_ns`` is a glitch (counted ``short_pulses``, dropped);
* a pulse wider than ``max_pulse_ns`` is not data (``long_pulses``, dropped);
* a pulse starting less than ``min_interval_ns`` after the previous bit's start is too fast
  for any reader (``too_fast``, dropped): crosstalk and ringing look like this;
* both lines low at once is impossible for a reader (``overlaps``): both pulses dropped;
* a rising edge with no falling edge before it (``unmatched``) is dropped.

A frame ends when no bit follows within ``frame_gap_ns``: either the next edge shows the gap
(``feed``) or the caller's timer says so (``flush``). What a frame means (26/34-bit card,
keypad key) is decided in ``formats``; the decoder only delivers bits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

D0, D1 = 0, 1


class Edge(NamedTuple):
    """One edge on one line: ``line`` 0 is D0, 1 is D1; ``rising`` False is a falling edge."""

    ts_ns: int
    line: int
    rising: bool


@dataclass(frozen=True, slots=True)
class Timing:
    min_pulse_ns: int = 10_000
    max_pulse_ns: int = 500_000
    min_interval_ns: int = 200_000
    frame_gap_ns: int = 25_000_000

    @classmethod
    def from_us(
        cls, min_pulse: float, max_pulse: float, min_interval: float, frame_gap_ms: float
    ) -> Timing:
        return cls(
            int(min_pulse * 1000),
            int(max_pulse * 1000),
            int(min_interval * 1000),
            int(frame_gap_ms * 1_000_000),
        )


@dataclass
class DecoderCounters:
    bits: int = 0
    frames: int = 0
    short_pulses: int = 0
    long_pulses: int = 0
    too_fast: int = 0
    overlaps: int = 0
    unmatched: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class WiegandDecoder:
    def __init__(self, timing: Timing | None = None) -> None:
        self.timing = timing or Timing()
        self.counters = DecoderCounters()
        self._bits: list[int] = []
        self._low_since: list[int | None] = [None, None]
        self._spoiled = [False, False]  # this line's current pulse overlapped the other's
        self._last_start: int | None = None
        self._last_end: int | None = None

    @property
    def pending(self) -> bool:
        """Bits are waiting for the frame to end."""
        return bool(self._bits)

    def feed(self, edge: Edge) -> list[list[int]]:
        """Take one edge; return the frames it completed (at most one, a list for ease)."""
        out: list[list[int]] = []
        ts, line, rising = edge
        if line not in (D0, D1):
            self.counters.unmatched += 1
            return out
        gap = self.timing.frame_gap_ns
        if self._bits and self._last_end is not None and ts - self._last_end > gap:
            out.append(self._end())
        if not rising:
            other = 1 - line
            if self._low_since[other] is not None:
                # Both wires low: a short, a loose ground or noise on the cable.
                self.counters.overlaps += 1
                self._spoiled = [True, True]
            elif self._low_since[line] is not None:
                self.counters.unmatched += 1  # a rising edge was lost; restart the pulse
            self._low_since[line] = ts
            return out
        start = self._low_since[line]
        self._low_since[line] = None
        if start is None:
            self.counters.unmatched += 1
            return out
        if self._spoiled[line]:
            self._spoiled[line] = False
            return out
        width = ts - start
        if width < self.timing.min_pulse_ns:
            self.counters.short_pulses += 1
            return out
        if width > self.timing.max_pulse_ns:
            self.counters.long_pulses += 1
            return out
        if (
            self._bits
            and self._last_start is not None
            and start - self._last_start < self.timing.min_interval_ns
        ):
            self.counters.too_fast += 1
            return out
        self._bits.append(line)
        self.counters.bits += 1
        self._last_start, self._last_end = start, ts
        return out

    def flush(self, now_ns: int | None = None) -> list[int] | None:
        """End the frame if the line has been quiet for the frame gap at ``now_ns`` (or
        unconditionally without it). Returns the frame's bits or None."""
        if not self._bits:
            return None
        last = self._last_end
        if now_ns is not None and last is not None and now_ns - last <= self.timing.frame_gap_ns:
            return None
        return self._end()

    def _end(self) -> list[int]:
        bits, self._bits = self._bits, []
        self._last_start = self._last_end = None
        self.counters.frames += 1
        return bits
