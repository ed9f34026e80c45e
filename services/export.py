"""CSV exports that people open in spreadsheets. Any feature's export goes through `csv_bytes`.

A cell that starts with `=`, `+`, `-`, `@` (or a tab or carriage return, which some spreadsheets skip
before one of those) is a formula to Excel, LibreOffice and Google Sheets; text people typed is written
with a leading apostrophe instead, so it shows as typed and never runs (OWASP's advice for CSV injection).
Numbers are written as numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Cell = str | int | float | datetime | None


def spreadsheet_safe(value: Cell) -> str | int | float:
    """The cell as written: text that a spreadsheet would run as a formula gets a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> bytes:
    """A CSV file (UTF-8 with a byte order mark, so that Excel reads non-Latin text right)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([spreadsheet_safe(h) for h in header])
    writer.writerows([spreadsheet_safe(cell) for cell in row] for row in rows)
    return out.getvalue().encode("utf-8-sig")
