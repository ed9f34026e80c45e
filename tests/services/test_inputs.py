"""The shared command-text helpers: quoted arguments (straight and curly quotes) and dates as typed."""

from __future__ import annotations

from datetime import date

import pytest

from services.inputs import looks_like_date, parse_date, split_quoted


@pytest.mark.parametrize(("text", "tokens"), [
    ('"Pilot live" 2026-03-20', ["Pilot live", "2026-03-20"]),
    ("\u201cPilot live\u201d 2026-03-20", ["Pilot live", "2026-03-20"]),  # “…” as phones type them
    ("\u201ePilot live\u201c next", ["Pilot live", "next"]),  # „…“ (German)
    ("\u201dPilot live\u201d x", ["Pilot live", "x"]),  # ”…” (some keyboards use the closing mark twice)
    ('"Which day?" "Mon" \u201cTue\u201d', ["Which day?", "Mon", "Tue"]),
    ("<@U1|ana maria> <@U2> thanks", ["<@U1|ana maria>", "<@U2>", "thanks"]),  # entities stay whole
    ('  spaced   out  ', ["spaced", "out"]),
    ('"unclosed title 2026-03-20', ["unclosed title 2026-03-20"]),
    ('"" empty', ["empty"]),
    ("", []),
])
def test_split_quoted(text: str, tokens: list[str]) -> None:
    assert split_quoted(text) == tokens


def test_dates_as_typed() -> None:
    assert parse_date("2026-3-5") == date(2026, 3, 5)
    assert looks_like_date("2026-03-20") and not looks_like_date("20/03/2026") and not looks_like_date("2026-03")
    for bad in ("2026-02-30", "2026-13-01", "tomorrow"):
        with pytest.raises(ValueError, match="use YYYY-MM-DD"):
            parse_date(bad)
