"""CSV exports: what people typed can never run as a spreadsheet formula, and reads back as typed."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from services.export import csv_bytes


def read(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")  # Excel needs the byte order mark to read UTF-8
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def test_text_that_a_spreadsheet_would_run_is_written_as_text() -> None:
    typed = ['=HYPERLINK("http://evil","click")', "+1+2", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "plain", "a=b"]
    rows = read(csv_bytes(["answer"], [[t] for t in typed]))
    assert rows[0] == ["answer"]
    cells = [r[0] for r in rows[1:]]
    assert cells == ["'" + t for t in typed[:6]] + ["plain", "a=b"]
    assert not any(c.startswith(("=", "+", "-", "@")) for c in cells)


def test_numbers_dates_quotes_newlines_and_other_scripts_survive_the_round_trip() -> None:
    at = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    rows = read(csv_bytes(["time", "score", "text", "side"], [
        [at, -3, 'she said "no",\nthen yes', None],
        [at, 9, "合作伙伴 — ok", True],
    ]))
    assert rows[1:] == [["2026-03-02T09:30:00+00:00", "-3", 'she said "no",\nthen yes', ""],
                        ["2026-03-02T09:30:00+00:00", "9", "合作伙伴 — ok", "yes"]]
