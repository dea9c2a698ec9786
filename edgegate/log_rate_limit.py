"""Repeated warnings, rate-limited per reason, saying how many were left out.

A flood of bad input (20,000 forged MQTT messages, a reader spewing garbage) would otherwise
write one warning per item, trip journald's own rate limiter (which drops lines blindly, the
important ones included) and hide what matters. Here each warning or error is keyed by its
event name and ``reason`` (or ``error``): the first ``burst`` lines of a key in a window of
``window_seconds`` are written, the rest are counted and dropped, and the next line of that
key written after the window carries ``suppressed`` (how many were dropped) and
``suppressed_seconds``. The counters the door reports (telemetry ``rejected``, reader
counters) are kept apart and stay exact; only the log is thinned.

Runs inside structlog's processor chain, which may be called from several threads (reader
threads, the store thread): a lock guards the table.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import structlog

LIMITED_LEVELS = frozenset({"warning", "error"})


@dataclass
class _Window:
    start: float
    written: int = 0
    dropped: int = 0


class RepeatLimiter:
    """A structlog processor (see the module docstring)."""

    def __init__(
        self,
        burst: int = 10,
        window_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.window = window_seconds
        self.clock = clock
        self._keys: dict[tuple[str, str], _Window] = {}
        self._lock = threading.Lock()

    def __call__(
        self, _logger: Any, method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        level = str(event_dict.get("level", method))
        if self.burst <= 0 or level not in LIMITED_LEVELS:
            return event_dict
        reason = event_dict.get("reason", event_dict.get("error", ""))
        key = (str(event_dict.get("event", "")), str(reason))
        now = self.clock()
        with self._lock:
            w = self._keys.get(key)
            if w is None or now - w.start >= self.window:
                dropped, since = (w.dropped, now - w.start) if w is not None else (0, 0.0)
                w = self._keys[key] = _Window(now)
                if dropped:
                    event_dict["suppressed"] = dropped
                    event_dict["suppressed_seconds"] = round(since, 1)
            if w.written >= self.burst:
                w.dropped += 1
                raise structlog.DropEvent
            w.written += 1
            if w.written == self.burst:
                event_dict["repeats_suppressed_for"] = round(self.window - (now - w.start), 1)
        return event_dict

    def pending(self) -> dict[tuple[str, str], int]:
        """Lines dropped and not yet reported, per (event, reason)."""
        with self._lock:
            return {k: w.dropped for k, w in self._keys.items() if w.dropped}
