"""Cutting escaped user text to a limit (blocks.text.escape_within)."""

from __future__ import annotations

import itertools

from blocks.text import escape, escape_within


def cut_one_by_one(text: str, limit: int) -> str:
    """The plain definition: drop characters from the end until the escaped rest and the mark fit."""
    if len(escape(text)) <= limit:
        return escape(text)
    raw = text[:limit]
    while raw:
        raw = raw[:-1]
        if len(escape(raw) + "…") <= limit:
            return escape(raw) + "…"
    return ""


def test_the_cut_is_the_longest_escaped_prefix_that_fits_with_its_mark() -> None:
    assert escape_within("a&b", 5) == "a&amp;b"[:1] + "…"  # "a&amp;…" would be 7: the entity is not split
    assert escape_within("ab<c", 6) == "ab…"
    assert escape_within("ab<c", 7) == "ab&lt;c"  # fits whole: no mark
    assert escape_within("<<<", 3) == "…"
    assert escape_within("abc", 0) == ""


def test_the_cut_agrees_with_dropping_one_character_at_a_time() -> None:
    for length in range(6):
        for chars in itertools.product("a&<>", repeat=length):
            text = "".join(chars)
            for limit in range(-1, 5 * length + 2):
                assert escape_within(text, limit) == cut_one_by_one(text, limit), (text, limit)
