"""Every table the console shows can be taken away: one function turns a header and rows into a CSV or XLSX download.

CSV is UTF-8 with a byte-order mark so Excel opens Indonesian names correctly; XLSX is written by openpyxl in
write-only mode (constant memory, so a year of conversations streams without holding a workbook in memory).
A cell that starts with =, +, - or @ is prefixed with a quote in both formats: a customer's words must never run
as a spreadsheet formula when a manager opens the file (CSV/formula injection).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any, Literal

from fastapi import HTTPException
from fastapi.responses import Response

Format = Literal["csv", "xlsx"]
FORMATS: tuple[Format, ...] = ("csv", "xlsx")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def export_format(raw: str | None) -> Format:
    """The format a request asked for; anything else is a 400 that names the choices."""
    if raw in FORMATS:
        return raw
    raise HTTPException(400, f"format: use one of {', '.join(FORMATS)}")


def _safe(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        # A number written with a sign is still a number; anything else that looks like a formula is quoted.
        try:
            float(value)
        except ValueError:
            return "'" + value
    return value


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    return str(_safe(value))


def _xlsx_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None) if value.tzinfo else value  # Excel has no time zones; shown as written
    if isinstance(value, (int, float, date)) or value is None:
        return value
    return _safe(str(value))


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([_cell_text(h) for h in header])
    for row in rows:
        writer.writerow([_cell_text(v) for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def xlsx_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]], sheet: str = "Sapa") -> bytes:
    from openpyxl import Workbook  # imported here: only exports need it

    book = Workbook(write_only=True)
    worksheet = book.create_sheet(title=_UNSAFE_NAME.sub(" ", sheet)[:31] or "Sapa")
    worksheet.append([_xlsx_value(h) for h in header])
    for row in rows:
        worksheet.append([_xlsx_value(v) for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def download(name: str, fmt: Format, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Response:
    """The response for an export: `name` becomes the file name (made safe), `fmt` picks the writer."""
    base = _UNSAFE_NAME.sub("-", name).strip("-") or "sapa-export"
    if fmt == "xlsx":
        body, media = xlsx_bytes(header, rows, sheet=base), XLSX_TYPE
    else:
        body, media = csv_bytes(header, rows), "text/csv; charset=utf-8"
    return Response(body, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="{base}.{fmt}"',
        "Cache-Control": "no-store",  # exports hold personal data
    })
