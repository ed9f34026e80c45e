"""Smoke test of the check-in fan-out benchmark (bench/checkin_fanout.py): small numbers, correctness only.

It runs the benchmark's entry function in-process and checks that every prompt was posted exactly once and
nothing failed. No timing assertions: the benchmark's numbers are for people to read.
"""

from __future__ import annotations

import pytest

from bench.checkin_fanout import main

FAST = ["--tick-seconds", "0.2", "--lead-seconds", "0.5", "--timeout", "60"]


def last_line(out: str) -> str:
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines, "the benchmark printed nothing"
    return lines[-1]


def fields(line: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in line.split())


def test_fanout_posts_every_prompt_once(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--partnerships", "20", "--latency-ms", "5", "--workers", "4", *FAST])
    line = last_line(capsys.readouterr().out)
    assert line.startswith("duplicates=0 missing=0 failed=0 seconds="), line
    assert set(fields(line)) == {"duplicates", "missing", "failed", "seconds", "limit_ratio", "vs_sequential",
                                 "cpu_ms_per_post"}
    assert float(fields(line)["cpu_ms_per_post"]) > 0
    assert code == 0


def test_fanout_under_the_rate_limit_with_a_high_cap(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--partnerships", "12", "--latency-ms", "5", "--rate-limit", "--cap", "6000", *FAST])
    out = capsys.readouterr().out
    line = last_line(out)
    assert line.startswith("duplicates=0 missing=0 failed=0 seconds="), line
    assert "cap_ratio" in fields(line)
    assert "rate limit switched off" in out  # the sequential baseline runs without it
    assert code == 0
