"""Smoke test of the poll vote benchmark (bench/poll_votes.py): small numbers, correctness only.

It runs the benchmark's entry function in-process and checks the last line's format, that every click was
counted once with the person's last choice, and that the live message was updated. No timing assertions: the
benchmark's numbers are for people to read.
"""

from __future__ import annotations

import gc

import pytest

from bench.poll_votes import main


def last_line(out: str) -> str:
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines, "the benchmark printed nothing"
    return lines[-1]


def fields(line: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in line.split())


def test_votes_and_changes_are_counted_once(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = main(["--voters", "12", "--latency-ms", "5", "--concurrency", "4", "--tick-seconds", "0.2",
                     "--timeout", "60"])
    finally:
        gc.unfreeze()  # the benchmark settles the heap as a bot process does; this test process goes on
    out = capsys.readouterr().out
    line = last_line(out)
    assert line.startswith("votes=24 counted=12 lost=0 double=0 ack_p50_ms="), line
    got = fields(line)
    assert list(got) == ["votes", "counted", "lost", "double", "ack_p50_ms", "ack_p99_ms", "bare_p99_ms",
                         "ack_ratio", "updates"]
    assert int(got["updates"]) >= 1
    assert "closed message shows the same tally: yes" in out
    assert code == 0
