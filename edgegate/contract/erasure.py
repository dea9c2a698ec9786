"""What erasing a person changes in a recorded event or a free text: the one rule the office
(its archive, alarms, commands, notes) and a door (its own journal) both apply.

* ``replace_strings``: events are JSON; every string equal to a key of the mapping (the
  person's id, their credential values) is replaced. Only whole strings are replaced, so
  nothing else of an event (door, time, result, reason) changes. Given a function instead,
  it rewrites every string with it (the office's free text inside JSON records).
* ``event_mapping``: what to replace in one event.
* ``scrub_text``: free text an operator typed (an alarm note, a command's reason, a visit's
  reason) may name the person inside a sentence: every occurrence of a term as a whole word
  (case-insensitive) is replaced; the rest of the text is unchanged.

A door never learns the office's pseudonym of the person (the removal it receives says only
"erase"), so it writes ``ERASED`` where the office writes the pseudonym: nothing on a door
links the two.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

ERASED = "erased"


def replace_strings(value: Any, mapping: Mapping[str, str] | Callable[[str], str]) -> Any:
    """``value`` (decoded JSON) with every string replaced, at any depth (dict values and
    list items; dict keys stay): by ``mapping[string]`` when it is a key of the mapping, or
    by ``mapping(string)`` when it is a function (free text rewritten inside the strings).
    Everything else is unchanged."""
    if not callable(mapping):
        table = mapping
        return _map_strings(value, lambda text: table.get(text, text))
    return _map_strings(value, mapping)


def _map_strings(value: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {k: _map_strings(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_strings(v, fn) for v in value]
    return value


def event_mapping(
    person: str, replacement: str, held: Iterable[str], event_person: str | None
) -> dict[str, str]:
    """What to replace in one event: the person's id always; their credential values only in
    an event that names them or nobody (a card reassigned later is someone else's in the
    events that name that someone)."""
    mapping = dict.fromkeys(held, ERASED) if event_person in (person, None) else {}
    mapping[person] = replacement  # after the values: an id that is also a value is the person
    return mapping


def text_pattern(terms: Iterable[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern (``re.IGNORECASE``: simple case folding) matching any of
    ``terms`` as a whole word (not inside a
    longer word: "Ann" leaves "Annual" alone), longest first so "Ann Lee" wins over "Ann".
    None when no term is left after dropping blanks."""
    words = sorted({t.strip() for t in terms if t.strip()}, key=lambda t: (-len(t), t))
    if not words:
        return None
    alternatives = "|".join(re.escape(w) for w in words)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def scrub_text(text: str, pattern: re.Pattern[str] | None, replacement: str) -> str:
    """``text`` with every match of ``pattern`` (``text_pattern``) replaced."""
    if pattern is None or not text:
        return text
    return pattern.sub(replacement, text)


def name_terms(person: str, name: str) -> list[str]:
    """What names the person in free text: their id, their display name, and each part of
    the display name (a note says "Alice lost her card", not "Alice Martin"). Parts shorter
    than 3 characters are left out: an initial would hit every other word starting a
    sentence."""
    parts = [p for p in re.split(r"\s+", name.strip()) if len(p) >= 3]
    return [person, name.strip(), *parts]
