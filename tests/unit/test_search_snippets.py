"""Search's pure parts: the words of a query, the snippet around a match with its highlights,
and the time in a transcript where the match is said."""

from __future__ import annotations

import pytest

from voxbox.core.errors import Invalid
from voxbox.core.search import cut_snippet, offset_of, query_terms


def test_a_query_is_its_folded_words_each_once() -> None:
    assert query_terms("Café  CAFE, naïve!") == ["cafe", "naive"]
    assert query_terms('NEAR("a" OR b*)') == ["near", "a", "or", "b"]
    for bad in ("", "?!", "x" * 201, " ".join(f"w{i}" for i in range(9))):
        with pytest.raises(Invalid):
            query_terms(bad)


def test_a_short_text_is_its_own_snippet_with_each_matched_word_marked() -> None:
    snippet, highlights, first = cut_snippet("Meet me at Café Olé, by the café door", ["cafe"])
    assert snippet == "Meet me at Café Olé, by the café door"
    assert [snippet[a:b] for a, b in highlights] == ["Café", "café"]
    assert first == 11


def test_a_single_letter_marks_only_itself() -> None:
    snippet, highlights, _ = cut_snippet("plan a walk at eight", ["a"])
    assert [snippet[a:b] for a, b in highlights] == ["a"]


def test_a_long_text_is_cut_around_the_first_match() -> None:
    words = [f"w{i}" for i in range(100)]
    words[50] = "address"
    body = " ".join(words)
    snippet, highlights, first = cut_snippet(body, ["addr"])
    assert snippet.startswith("…w42 ") and snippet.endswith(" w71…")
    [(a, b)] = highlights
    assert snippet[a:b] == "address" and body[first : first + 7] == "address"


def test_the_offset_is_when_the_matched_word_is_said() -> None:
    timed = [
        {"w": "the", "start_ms": 100, "end_ms": 300},
        {"w": "address", "start_ms": 320, "end_ms": 900},
        {"w": "is", "start_ms": 950, "end_ms": 1100},
    ]
    body = "the address is"
    assert offset_of(body, timed, body.index("address")) == 320
    assert offset_of(body, timed, body.index("is")) == 950
    assert offset_of(body, timed, 0) == 100
    assert offset_of(body, [], 0) is None
