"""The gallery: every enrolled face as one (N, 128) float32 matrix, matched in one pass.

A person may have several encodings (rows); ``starts`` marks where each person's rows begin,
so the best distance per person is one ``np.minimum.reduceat``. Distances come from
``|g|^2 - 2 g.e + |e|^2`` with ``|g|^2`` computed once at load: one matrix-vector product per
face, about a millisecond per 10,000 rows on a Pi-class CPU, where the library's
``compare_faces`` rebuilds an array from a Python list on every call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DIM = 128


@dataclass(frozen=True, slots=True)
class Match:
    """The gallery's answer for one encoding. ``person`` is None when nobody matched."""

    person: str | None
    distance: float
    second: float
    reason: str  # "match", "too_far", "ambiguous", "empty"
    value: str | None = None  # the matched credential's value (what the door looks up)


class Gallery:
    """``faces``: (person, encodings) or (person, encodings, credential value) rows; a person
    may come in several rows (several credentials), they are grouped into one."""

    def __init__(self, faces: Sequence[tuple[str, np.ndarray] | tuple[str, np.ndarray, str]] = ()):
        grouped: dict[str, list[tuple[np.ndarray, str]]] = {}
        for face in faces:
            person, enc = face[0], face[1]
            value = face[2] if len(face) > 2 else person
            arr = np.asarray(enc, dtype=np.float32).reshape(-1, DIM)
            if len(arr):
                grouped.setdefault(person, []).append((arr, value))
        people: list[str] = []
        blocks: list[np.ndarray] = []
        starts: list[int] = []
        values: list[str] = []
        row = 0
        for person, parts in grouped.items():
            people.append(person)
            starts.append(row)
            for arr, value in parts:
                blocks.append(arr)
                values.extend([value] * len(arr))
                row += len(arr)
        self.people = people
        self.row_values = values
        self.matrix = (
            np.ascontiguousarray(np.vstack(blocks)) if blocks else np.zeros((0, DIM), np.float32)
        )
        self.starts = np.asarray(starts, dtype=np.intp)
        self._sq = np.einsum("ij,ij->i", self.matrix, self.matrix)

    def __len__(self) -> int:
        return len(self.people)

    def distances(self, encoding: np.ndarray) -> np.ndarray:
        """Best (smallest) distance per person, in ``self.people`` order."""
        return self._distances(encoding)[0]

    def _distances(self, encoding: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        e = np.asarray(encoding, dtype=np.float32).reshape(DIM)
        d2 = self._sq - 2.0 * (self.matrix @ e) + float(e @ e)
        # Rounding can push a zero distance a hair below zero.
        np.maximum(d2, 0.0, out=d2)
        return np.sqrt(np.minimum.reduceat(d2, self.starts)), d2

    def match(self, encoding: np.ndarray, tolerance: float, margin: float) -> Match:
        """The best person if within ``tolerance`` and ahead of the second-best person by
        ``margin``; with one person enrolled the margin test is vacuous."""
        if not self.people:
            return Match(None, float("inf"), float("inf"), "empty")
        per_person, d2 = self._distances(encoding)
        if len(per_person) == 1:
            best_i, best, second = 0, float(per_person[0]), float("inf")
        else:
            two = np.argpartition(per_person, 1)[:2]
            a, b = (int(two[0]), int(two[1]))
            if per_person[b] < per_person[a]:
                a, b = b, a
            best_i, best, second = a, float(per_person[a]), float(per_person[b])
        if best > tolerance:
            return Match(None, best, second, "too_far")
        if second - best < margin:
            return Match(None, best, second, "ambiguous")
        start = int(self.starts[best_i])
        end = int(self.starts[best_i + 1]) if best_i + 1 < len(self.starts) else len(d2)
        row = start + int(np.argmin(d2[start:end]))
        return Match(self.people[best_i], best, second, "match", self.row_values[row])
