"""A door that has not heard from the office for too long: a policy per group.

A door keeps deciding from its cached credentials while the office is away; that is its whole
point. But a revocation issued at the office cannot reach a door that hears nothing, so after
``[offline] after_minutes`` without the office a site may want only some groups to keep
working (staff keep their access, visitors are refused with reason ``offline``). Pure: the
caller passes how long it has been since the office was last heard (monotonic seconds).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class OfflinePolicy:
    """After ``after_seconds`` (0: never) without the office, only ``allowed_groups`` pass
    (empty: everyone still passes, the door only says it is offline)."""

    after_seconds: float = 0.0
    allowed_groups: frozenset[str] = frozenset()

    def too_long(self, silent_for: float | None) -> bool:
        """True when the office has been silent longer than the policy allows. ``None``: the
        office was never heard since start, which counts from the start (the caller passes
        the time since start then)."""
        if self.after_seconds <= 0 or silent_for is None:
            return False
        return silent_for >= self.after_seconds

    def refuses(self, groups: frozenset[str], silent_for: float | None) -> bool:
        """True when a person of ``groups`` is refused now for the office's silence."""
        if not self.too_long(silent_for) or not self.allowed_groups:
            return False
        return not groups & self.allowed_groups
