"""The erasure's free-text rule (edgegate/contract/erasure.py ``scrub_text``), property-based:
a name inside a sentence is replaced wherever it stands as a whole word, whatever its case,
and nothing else of the text changes; a text that does not name the person is returned as
it is."""

from __future__ import annotations

import re

from hypothesis import assume, given
from hypothesis import strategies as st

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
