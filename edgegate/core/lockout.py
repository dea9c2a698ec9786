"""Reader lockout: N denials within T seconds on one reader lock it out for M seconds.

Against card and biometric guessing. Pure apart from its own memory; time is passed in.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class LockoutTracker:
    attempts: int
    window_seconds: float
    lockout_seconds: float
    _denials: dict[str, deque[float]] = field(default_factory=dict)
    _until: dict[str, float] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return self.attempts > 0

    def locked_until(self, reader: str, now: float) -> float | None:
        """When the reader's lockout ends, or None when it is not locked out now."""
        until = self._until.get(reader)
        if until is None or now >= until:
            return None
        return until

    def denied(self, reader: str, now: float) -> float | None:
        """Count a denial. Returns the lockout's end when this denial starts one (once)."""
        if not self.enabled or self.locked_until(reader, now) is not None:
            return None
        recent = self._denials.setdefault(reader, deque())
        recent.append(now)
        while recent and now - recent[0] > self.window_seconds:
            recent.popleft()
        if len(recent) >= self.attempts:
            recent.clear()
            self._until[reader] = now + self.lockout_seconds
            return self._until[reader]
        return None

    def restore(self, reader: str, until: float, now: float) -> None:
        """Re-arm a lockout journaled before a restart, so a restart does not end it."""
        if self.enabled and until > now:
            self._until[reader] = max(until, self._until.get(reader, 0.0))

    def state(self, now: float) -> dict[str, float]:
        return {r: u for r, u in self._until.items() if u > now}
