"""Rating statistics, pure (no database, no Slack): averages, distributions, the per-side breakdown with a
minimum number of respondents per side, the perception gap between the two sides, and the trend against an
earlier value. Pulse surveys use it; feedback polls can use the same functions.

The per-side rule (`models.poll.sides_shown`, shared with polls) protects anonymity: a side's average is shown
only when the audience spans both sides and *each* of them has at least `min_per_side` respondents. Showing
one side's average next to the overall one would otherwise give away the other side's answers whenever that
side has only one or two respondents (overall x n = ours x a + theirs x b).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from models.poll import sides_shown

S = TypeVar("S", bound=Hashable)

GAP_THRESHOLD = 1.0  # sides whose averages differ by this much or more see the partnership differently
SAME_WITHIN = 0.05  # averages closer than this count as the same for the trend (they round alike)


def average(values: Iterable[float | int | None]) -> float | None:
    """The mean of the given values (None values skipped); None when there are none."""
    xs = [float(v) for v in values if v is not None]
    return sum(xs) / len(xs) if xs else None


def distribution(values: Iterable[int | None], low: int = 1, high: int = 5) -> list[int]:
    """How many answers gave each rating from `low` to `high` (values outside the scale are ignored)."""
    counts = [0] * (high - low + 1)
    for v in values:
        if v is not None and low <= v <= high:
            counts[v - low] += 1
    return counts


@dataclass(frozen=True)
class SideFigure:
    respondents: int
    average: float | None  # None when hidden (too few respondents on some side) or nobody answered


@dataclass(frozen=True)
class Breakdown(Generic[S]):
    """One question's figures: overall, and per side when each side asked has enough respondents."""

    overall: float | None
    respondents: int
    sides: dict[S, SideFigure]
    sides_shown: bool  # False: one side asked, or some side has fewer than the minimum: no side average is shown


def breakdown(ratings: Iterable[tuple[S, int | None]], sides: Sequence[S], min_per_side: int) -> Breakdown[S]:
    """Figures for one question from (side, rating) pairs; a None rating is "not answered"."""
    by_side: dict[S, list[int]] = {side: [] for side in sides}
    for side, rating in ratings:
        if rating is not None:
            by_side.setdefault(side, []).append(rating)
    counts = {side: len(values) for side, values in by_side.items()}
    # The rule polls use too: each side asked needs enough respondents (a side that gave none included).
    shown = sides_shown({side: counts.get(side, 0) for side in {*sides, *counts}}, min_per_side)
    everything = [v for values in by_side.values() for v in values]
    figures = {side: SideFigure(counts[side], average(values) if shown and values else None)
               for side, values in by_side.items()}
    return Breakdown(average(everything), len(everything), figures, shown)


@dataclass(frozen=True)
class Gap:
    difference: float  # first side's average minus the second's
    flagged: bool  # |difference| >= the threshold: the two sides see it differently


def perception_gap(first: float | None, second: float | None, threshold: float = GAP_THRESHOLD) -> Gap | None:
    """The gap between two sides' averages; None when either is unknown (hidden or nobody answered)."""
    if first is None or second is None:
        return None
    diff = first - second
    # Rounded first, so 1.0 shown as the difference is flagged whatever the float error.
    return Gap(diff, round(abs(diff), 6) >= threshold)


def side_gap(b: Breakdown[S], first: S, second: S, threshold: float = GAP_THRESHOLD) -> Gap | None:
    a, c = b.sides.get(first), b.sides.get(second)
    return perception_gap(a.average if a else None, c.average if c else None, threshold)


class Trend(StrEnum):
    UP = "up"
    DOWN = "down"
    SAME = "same"


def trend(current: float | None, previous: float | None, same_within: float = SAME_WITHIN) -> Trend | None:
    """Up, down or the same against the previous value; None when either is unknown."""
    if current is None or previous is None:
        return None
    if abs(current - previous) < same_within:
        return Trend.SAME
    return Trend.UP if current > previous else Trend.DOWN


def participation(answered: Mapping[S, int], expected: Mapping[S, int]) -> dict[S, tuple[int, int]]:
    """Per side: (answered, expected)."""
    return {side: (answered.get(side, 0), n) for side, n in expected.items()}


@dataclass(frozen=True)
class RatingSummary(Generic[S]):
    """Everything shown about one rating question: the breakdown, the distribution, the gap between two sides
    and the trend of the overall average against an earlier one."""

    breakdown: Breakdown[S]
    distribution: list[int]
    gap: Gap | None
    previous: float | None
    trend: Trend | None


def summarize(
    ratings: Sequence[tuple[S, int | None]], sides: Sequence[S], *, min_per_side: int, previous: float | None = None,
    low: int = 1, high: int = 5, threshold: float = GAP_THRESHOLD,
) -> RatingSummary[S]:
    """`sides`: the sides that were asked; the gap is between the first two (none when only one was asked)."""
    b = breakdown(ratings, sides, min_per_side)
    gap = side_gap(b, sides[0], sides[1], threshold) if len(sides) >= 2 else None
    return RatingSummary(b, distribution((r for _, r in ratings), low, high), gap, previous,
                         trend(b.overall, previous))
