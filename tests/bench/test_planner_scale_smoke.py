"""Smoke test of the planner scale benchmark (bench/planner_scale.py): tiny numbers, correctness only.

It runs the benchmark in-process at two sizes and checks the last line's format, that the planners planned what
every partnership needs, and that a planning pass, a pass with nothing changed and a tick send as many SQL
statements for 40 partnerships as for 20 (batched, not one per partnership or per row). No timing assertions:
the benchmark's numbers are for people to read.
"""

from __future__ import annotations

import re

import pytest

from bench.planner_scale import main, run_benchmark

LAST_LINE = re.compile(
    r"partnerships=(\d+) plan_s=\d+\.\d{3} replan_s=\d+\.\d{3} tick_ms=\d+\.\d rss_mb=\d+\.\d statements=(\d+)")


def test_the_last_line_says_what_was_measured(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--partnerships", "20", "--ticks", "1"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    found = LAST_LINE.fullmatch(lines[-1])
    assert found is not None, lines[-1]
    assert found[1] == "20" and int(found[2]) > 0


def test_statements_do_not_grow_with_the_number_of_partnerships() -> None:
    small, large = (run_benchmark(n, ticks=1, out=lambda _line: None) for n in (20, 40))
    # Every partnership: today's and tomorrow's check-in, tomorrow's pulse round, its milestone's two reminders and
    # overdue note, the month's recap; its poll's close and its reminder were planned when it was created; its five
    # open issues, one SLA timer each (the earliest next level: the acknowledge clock's 80 % reminder).
    per_partnership = {"checkin_prompt": 2, "pulse_open": 1, "milestone_remind": 2, "milestone_overdue": 1,
                       "wins_recap": 1, "poll_close": 1, "poll_remind": 1, "issue_sla": 5}
    for result, n in ((small, 20), (large, 40)):
        assert {kind: result.planned.get(kind) for kind in per_partnership} == {
            kind: per * n for kind, per in per_partnership.items()}
    assert large.plan.statements == small.plan.statements
    assert large.replan.statements == small.replan.statements
    assert large.tick.statements == small.tick.statements
    assert small.replan.statements < small.plan.statements  # nothing changed: nothing is written
