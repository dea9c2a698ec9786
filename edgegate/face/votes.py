"""One face in front of the door, frame by frame: k-of-n votes, tries, liveness, cool-down.

Pure (``now`` passed in) so every rule is tested without a camera. The pipeline calls one of
``absent`` / ``poor`` / ``vote`` / ``seen`` per processed frame and gets back outcomes:

* ``Grant``: the same person named in ``k`` of the last ``n`` frames with a face (and a blink
  when liveness is on). The face is then not decided again while it stays in view, for
  ``redecide_seconds``: someone waiting at the door is one decision, not one per frame.
* ``Failed``: a try (``n`` frames with a face) ended without a grant; a denial comes as soon
  as no grant is possible any more in the try (with k=2 of n=3: two frames naming nobody).
  ``poor`` when no frame of the try could be encoded (blurred, cut off, two people side by
  side): a retry signal; else a denial, after which the face is left alone for
  ``retry_seconds`` before the next try. The daemon counts both towards
  ``assist_requested`` (retries, then staff).

A face that leaves for ``ABSENT_FRAMES`` frames ends the presentation and clears everything.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass

from edgegate.face.gallery import Match
from edgegate.face.liveness import BlinkDetector

ABSENT_FRAMES = 3


@dataclass(frozen=True, slots=True)
class Grant:
    person: str
    distance: float  # the worst of the confirming frames: all k were at least this close
    frames: int
    value: str | None = None  # the credential matched last (what the door looks up)


@dataclass(frozen=True, slots=True)
class Failed:
    reason: str
    poor: bool
    distance: float | None = None


Outcome = Grant | Failed


class Presentation:
    def __init__(
        self,
        k: int,
        n: int,
        *,
        redecide_seconds: float = 5.0,
        retry_seconds: float = 1.0,
        liveness: bool = False,
        liveness_frames: int = 30,
        blink_ear: float = 0.21,
    ) -> None:
        if not 1 <= k <= n:
            raise ValueError(f"need 1 <= k <= n, got k={k} n={n}")
        self.k = k
        self.n = n
        self.redecide_seconds = redecide_seconds
        self.retry_seconds = retry_seconds
        self.liveness = liveness
        self.liveness_frames = liveness_frames
        self._value: str | None = None
        self.blinker = BlinkDetector(blink_ear)
        self._window: deque[Match | str] = deque(maxlen=n)
        self._try_frames = 0
        self._absent = 0
        self._quiet_until: float | None = None
        self._pending: tuple[str, float] | None = None  # identity confirmed, waiting for a blink
        self._pending_frames = 0

    # --- what the pipeline asks ------------------------------------------------------------
    def quiet(self, now: float) -> bool:
        """Decided already and the face is still in view: detect only, do not encode."""
        return self._quiet_until is not None and now < self._quiet_until

    def wants_encoding(self, now: float) -> bool:
        return not self.quiet(now) and self._pending is None

    def eyes(self, ear: float) -> None:
        """The eye aspect ratio of this frame's face (liveness)."""
        self.blinker.update(ear)

    @property
    def blinked(self) -> bool:
        return self.blinker.blinked

    # --- per frame -------------------------------------------------------------------------
    def absent(self) -> list[Outcome]:
        self._absent += 1
        if self._absent >= ABSENT_FRAMES:
            self.reset()
        return []

    def reset(self) -> None:
        self._window.clear()
        self._try_frames = 0
        self._absent = 0
        self._quiet_until = None
        self._pending = None
        self._pending_frames = 0
        self.blinker.reset()

    def poor(self, reason: str, now: float) -> list[Outcome]:
        self._absent = 0
        if self.quiet(now):
            return []
        if self._pending is not None:
            return self._wait_blink(now)
        self._window.append(reason)
        return self._end_of_try(now)

    def seen(self, now: float) -> list[Outcome]:
        """A usable face on a frame that was not encoded (quiet, or waiting for a blink)."""
        self._absent = 0
        if self._pending is not None and not self.quiet(now):
            return self._wait_blink(now)
        return []

    def vote(self, match: Match, now: float) -> list[Outcome]:
        self._absent = 0
        if self.quiet(now):
            return []
        self._window.append(match)
        named = Counter(m.person for m in self._window if isinstance(m, Match) and m.person)
        if named:
            person, count = named.most_common(1)[0]
            if count >= self.k:
                mine = [m for m in self._window if isinstance(m, Match) and m.person == person]
                worst = max(m.distance for m in mine)
                self._value = mine[-1].value
                if self.liveness and not self.blinked:
                    self._pending = (person, worst)
                    self._pending_frames = 0
                    return []
                return [self._grant(person, worst, now)]
        return self._end_of_try(now)

    # --- internals -------------------------------------------------------------------------
    def _grant(self, person: str, distance: float, now: float) -> Grant:
        frames = len(self._window)
        self._window.clear()
        self._try_frames = 0
        self._pending = None
        self._quiet_until = now + self.redecide_seconds
        self.blinker.reset()  # the next decision of this face needs a blink of its own
        return Grant(person, distance, frames, self._value or person)

    def _wait_blink(self, now: float) -> list[Outcome]:
        assert self._pending is not None
        if self.blinked:
            return [self._grant(*self._pending, now)]
        self._pending_frames += 1
        if self._pending_frames < self.liveness_frames:
            return []
        distance = self._pending[1]
        self._pending = None
        self._pending_frames = 0
        self._window.clear()
        self._try_frames = 0
        return [Failed("no_blink", poor=False, distance=distance)]

    def _grant_still_possible(self) -> bool:
        """Could this try still end in a grant? A person needs ``k`` of the last ``n`` frames;
        by the try's end its ``left`` more frames will have pushed out the oldest ones, so
        the best any person can reach is their count in the newest ``n - left`` frames plus
        ``left`` (and a face not named yet reaches ``left``)."""
        left = self.n - self._try_frames
        if left >= self.k:
            return True
        recent = list(self._window)[len(self._window) - (self.n - left) :]
        named = Counter(m.person for m in recent if isinstance(m, Match) and m.person)
        return any(count + left >= self.k for count in named.values())

    def _end_of_try(self, now: float) -> list[Outcome]:
        self._try_frames += 1
        matches = [m for m in self._window if isinstance(m, Match)]
        # A denial is said as soon as it is certain: with k=2 of n=3, two frames that name
        # nobody cannot be outvoted by the third. The rule for a grant is unchanged (the
        # remaining frames could not have granted), only the refusal comes a frame sooner.
        # A try of poor frames keeps its n frames: that is a retry signal.
        if self._try_frames < self.n and (not matches or self._grant_still_possible()):
            return []
        self._try_frames = 0
        if not matches:
            reasons = Counter(m for m in self._window if isinstance(m, str))
            return [Failed(reasons.most_common(1)[0][0], poor=True)]
        best = min(m.distance for m in matches)
        misses = {m.reason for m in matches if m.person is None}
        reason = "ambiguous" if misses == {"ambiguous"} else "unrecognised"
        # The person has just been refused (red light): give them a moment before the next
        # try instead of encoding every frame of someone the door does not know.
        self._window.clear()
        self._quiet_until = now + self.retry_seconds
        return [Failed(reason, poor=False, distance=None if best == float("inf") else best)]
