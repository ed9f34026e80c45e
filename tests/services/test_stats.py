"""Rating statistics: averages, distribution, the per-side rule, the perception gap and the trend."""

from __future__ import annotations

import pytest

from services.stats import (
    Trend,
    average,
    breakdown,
    distribution,
    participation,
    perception_gap,
    side_gap,
    summarize,
    trend,
)

SIDES = ("ours", "partner")


def test_average_and_distribution_skip_what_was_not_answered() -> None:
    assert average([4, 5, None, 3]) == 4.0
    assert average([None]) is None and average([]) is None
    assert distribution([1, 5, 5, None, 3, 9]) == [1, 0, 1, 0, 2]


def test_sides_are_shown_only_when_each_side_asked_has_enough_respondents() -> None:
    enough = breakdown([("ours", 5), ("ours", 4), ("ours", 5), ("partner", 2), ("partner", 3), ("partner", 3)],
                       SIDES, min_per_side=3)
    assert enough.sides_shown and enough.respondents == 6
    assert enough.sides["ours"].average == pytest.approx(14 / 3)
    assert enough.sides["partner"].average == pytest.approx(8 / 3)
    assert enough.overall == pytest.approx(22 / 6)

    # One partner answer: showing our average next to the overall one would give it away, so neither side shows.
    few = breakdown([("ours", 5), ("ours", 4), ("ours", 5), ("partner", 1)], SIDES, min_per_side=3)
    assert not few.sides_shown
    assert few.sides["ours"].average is None and few.sides["partner"].average is None
    assert few.sides["partner"].respondents == 1 and few.overall == pytest.approx(15 / 4)

    # Nobody on the partner's side answered: the same rule as polls, a side with none is below the minimum too.
    one_side = breakdown([("ours", 2), ("ours", 4), ("ours", 3), ("partner", None)], SIDES, min_per_side=3)
    assert not one_side.sides_shown and one_side.sides["ours"].average is None
    assert one_side.sides["partner"] == one_side.sides["partner"].__class__(0, None)

    # Only one side asked: no breakdown by side.
    asked_ours = breakdown([("ours", 2), ("ours", 4), ("ours", 3)], ["ours"], min_per_side=3)
    assert not asked_ours.sides_shown and asked_ours.overall == 3.0


def test_perception_gap_is_flagged_from_one_point_on() -> None:
    assert perception_gap(4.5, 3.5).flagged  # type: ignore[union-attr]
    assert perception_gap(4.4, 3.5).flagged is False  # type: ignore[union-attr]
    assert perception_gap(2.0, 3.2).flagged  # type: ignore[union-attr]  # either way round
    assert perception_gap(4.0, None) is None
    b = breakdown([("ours", 5)] * 3 + [("partner", 3)] * 3, SIDES, min_per_side=3)
    gap = side_gap(b, "ours", "partner")
    assert gap is not None and gap.difference == 2.0 and gap.flagged
    hidden = breakdown([("ours", 5)] * 3 + [("partner", 1)], SIDES, min_per_side=3)
    assert side_gap(hidden, "ours", "partner") is None


def test_a_summary_of_one_side_has_no_gap_and_compares_with_the_previous_value() -> None:
    sm = summarize([("partner", 2), ("partner", 4), ("partner", 3)], ["partner"], min_per_side=3, previous=2.0)
    assert sm.gap is None and list(sm.breakdown.sides) == ["partner"] and sm.trend == Trend.UP
    assert sm.distribution == [0, 1, 1, 1, 0]


def test_trend_against_the_previous_round() -> None:
    assert trend(4.2, 3.6) == Trend.UP
    assert trend(3.0, 3.5) == Trend.DOWN
    assert trend(3.51, 3.5) == Trend.SAME
    assert trend(3.0, None) is None and trend(None, 3.0) is None


def test_participation_per_side() -> None:
    assert participation({"ours": 2}, {"ours": 3, "partner": 2}) == {"ours": (2, 3), "partner": (0, 2)}
