"""The erasure's free-text rule (edgegate/contract/erasure.py ``scrub_text``), property-based:
a name inside a sentence is replaced wherever it stands as a whole word, whatever its case,
and nothing else of the text changes; a text that does not name the person is returned as
it is."""

from __future__ import annotations

import json
import re

from hypothesis import assume, given
from hypothesis import strategies as st

from edgegate.central.services import erasure_sweep
from edgegate.contract import erasure

NAMES = st.text(st.characters(categories=["L", "Nd"]), min_size=3, max_size=12)
TEXT = st.text(max_size=60)
REPL = "erased-0123456789ab"


def _names(text: str, term: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(term)}(?!\w)", text, re.IGNORECASE) is not None


@given(TEXT, NAMES)
def test_text_not_naming_the_person_is_unchanged(text: str, name: str) -> None:
    assume(not _names(text, name))
    assert erasure.scrub_text(text, erasure.text_pattern([name]), REPL) == text


@given(st.lists(TEXT, min_size=2, max_size=4), NAMES, st.sampled_from([str.lower, str.upper, str]))
def test_a_name_inside_text_is_replaced_and_nothing_else(
    pieces: list[str], name: str, case
) -> None:
    # Pieces joined by the name between spaces (so it stands as a word there); no piece
    # names the person by itself.
    assume(not any(_names(p, name) for p in pieces))
    # "Any case" is simple case folding (re.IGNORECASE): "ŉ".upper() is two characters.
    assume(re.fullmatch(re.escape(name), case(name), re.IGNORECASE) is not None)
    text = f" {case(name)} ".join(pieces)
    expected = f" {REPL} ".join(pieces)
    assume(not _names(expected.replace(REPL, ""), name))  # joining made no new occurrence
    got = erasure.scrub_text(text, erasure.text_pattern([name]), REPL)
    assert got == expected
    assert not _names(got, name)


@given(NAMES, NAMES)
def test_a_name_inside_a_longer_word_is_kept(name: str, tail: str) -> None:
    word = name + tail  # e.g. "Ann" inside "Annual"
    assume(not _names(word, name))
    assert erasure.scrub_text(f"the {word} report", erasure.text_pattern([name]), REPL) == (
        f"the {word} report"
    )


def test_the_full_name_wins_over_its_parts() -> None:
    terms = erasure.name_terms("p-17", "Alice Martin")
    pattern = erasure.text_pattern(terms)
    text = "Alice Martin (p-17) lost her card; alice called. Alicea stays. Martina too."
    assert erasure.scrub_text(text, pattern, "X") == (
        "X (X) lost her card; X called. Alicea stays. Martina too."
    )
    assert erasure.text_pattern(["", "  "]) is None


SUBJECT = erasure_sweep.Subject("p-17", "Alice Martin", REPL, frozenset({"0F00BC614E"}))
TERMS = ["p-17", "Alice Martin", "Alice", "Martin", "0F00BC614E"]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


@given(JSON)
def test_the_sweep_leaves_what_does_not_name_the_person_alone(value) -> None:
    """The office's sweep (free text and JSON columns) changes nothing that names none of
    the person's terms, at any depth; dict keys are never touched."""
    assume(not any(_names(json.dumps(value, ensure_ascii=False), t) for t in TERMS))
    assert SUBJECT.json(value) == value
    text = json.dumps(value)
    assert SUBJECT.json_text(text) == text  # byte for byte, formatting included


@given(st.lists(TEXT, min_size=2, max_size=3), st.sampled_from(TERMS))
def test_the_sweep_replaces_every_term_inside_text(pieces: list[str], term: str) -> None:
    assume(not any(_names(p, t) for p in pieces for t in TERMS))
    out = SUBJECT.text(f" {term} ".join(pieces))
    want = erasure.ERASED if term == "0F00BC614E" else REPL
    assert out == f" {want} ".join(pieces)
    assert not any(_names(out, t) for t in TERMS)


@given(JSON, st.dictionaries(TEXT, TEXT, max_size=4))
def test_replace_strings_by_a_mapping_or_a_function_is_one_rule(value, mapping) -> None:
    """The contract's one traversal: a mapping replaces whole strings, a function rewrites
    every string (the sweep's free text inside JSON), at any depth, dict keys never."""
    by_map = erasure.replace_strings(value, mapping)
    assert by_map == erasure.replace_strings(value, lambda s: mapping.get(s, s))
    seen: list[str] = []
    erasure.replace_strings(value, lambda s: seen.append(s) or s)
    assert seen == [s for s in _leaves(value) if isinstance(s, str)]


def _leaves(value):
    if isinstance(value, dict):
        return [x for v in value.values() for x in _leaves(v)]
    if isinstance(value, list):
        return [x for v in value for x in _leaves(v)]
    return [value]


def test_the_sweep_compiles_its_patterns_once_not_per_row(monkeypatch) -> None:
    """A Subject is made once per erasure or preview; the rows it rewrites reuse its
    patterns (before, every row built two or three patterns again)."""
    made: list[object] = []
    real = erasure.text_pattern
    monkeypatch.setattr(erasure, "text_pattern", lambda terms: made.append(1) or real(terms))
    subject = erasure_sweep.Subject("p-17", "Alice Martin", REPL, frozenset({"0F00BC614E"}))
    at_start = len(made)
    rows = [f"row {i}: Alice Martin lost 0F00BC614E" for i in range(50)]
    assert {subject.text(r) for r in rows} == {f"row {i}: {REPL} lost erased" for i in range(50)}
    assert all(subject.names(r) for r in rows)
    assert subject.json_text(json.dumps({"note": rows[0], "person": "p-17"})) == json.dumps(
        {"note": f"row 0: {REPL} lost erased", "person": REPL}, separators=(",", ":")
    )
    assert len(made) == at_start
