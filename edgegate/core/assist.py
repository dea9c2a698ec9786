"""Retries, then staff: counting failed biometric attempts per reader.

After ``threshold`` failures within ``window`` seconds the door raises ``assist_requested``
once; it is raised again only after a success or once the window has passed with no failure.
Pure: ``now`` is passed in.
"""

from __future__ import annotations

from collections import deque


class AssistTracker:
    def __init__(self, threshold: int, window: float) -> None:
        self.threshold = threshold
        self.window = window
        self._failures: deque[float] = deque()
        self._raised = False

    def failure(self, now: float) -> bool:
        """Record a failure; True when this one should raise ``assist_requested``."""
        while self._failures and now - self._failures[0] > self.window:
            self._failures.popleft()
        if not self._failures:
            self._raised = False
        self._failures.append(now)
        if len(self._failures) >= self.threshold and not self._raised:
            self._raised = True
            return True
        return False

    def success(self) -> None:
        self._failures.clear()
        self._raised = False

    @property
    def count(self) -> int:
        return len(self._failures)
