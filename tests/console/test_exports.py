"""Console exports (bot/console/exports.py): what a manager opens in a spreadsheet is what the page showed, names in
Indonesian survive, and a customer's words never run as a formula."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from fastapi import HTTPException
from openpyxl import load_workbook

from bot.console.exports import csv_bytes, download, export_format, xlsx_bytes

HEADER = ["customer", "channel", "opened", "csat"]
ROWS = [
    ["Siti Nurhaliza", "whatsapp", datetime(2026, 12, 1, 9, 30, tzinfo=UTC), 5],
    ["=HYPERLINK(\"http://evil.example\",\"klik\")", "telegram", None, None],
    ["-12", "sms", datetime(2026, 12, 2, 10, 0, tzinfo=UTC), 3],
    ["@SUM(A1)", "webchat", None, 4],
]


def test_csv_opens_with_the_header_accented_names_and_quoted_formulas() -> None:
    body = csv_bytes(HEADER, ROWS + [["Dédé Rahmawati", "webchat", None, 2]])
    assert body.startswith("\ufeff".encode())  # Excel reads UTF-8 only with the BOM
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0] == HEADER
    assert rows[1] == ["Siti Nurhaliza", "whatsapp", "2026-12-01T09:30:00+00:00", "5"]
    assert rows[2][0].startswith("'=HYPERLINK")  # shown as text, never run
    assert rows[3][0] == "-12"  # a signed number stays a number
    assert rows[4][0] == "'@SUM(A1)"
    assert rows[5][0] == "Dédé Rahmawati"


def test_xlsx_has_the_same_rows_with_real_numbers_and_dates() -> None:
    book = load_workbook(io.BytesIO(xlsx_bytes(HEADER, ROWS, sheet="tickets breached")))
    sheet = book.active
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert values[0] == HEADER
    assert values[1] == ["Siti Nurhaliza", "whatsapp", datetime(2026, 12, 1, 9, 30), 5]
    assert values[2][0].startswith("'=HYPERLINK") and values[2][2] is None
    assert sheet.title == "tickets breached"


def test_download_names_the_file_and_forbids_caching() -> None:
    response = download("sla breached/2026-12", "xlsx", HEADER, ROWS)
    assert response.headers["content-disposition"] == 'attachment; filename="sla-breached-2026-12.xlsx"'
    assert response.headers["cache-control"] == "no-store"
    assert response.media_type.startswith("application/vnd.openxmlformats")
    assert download("x", "csv", HEADER, []).media_type.startswith("text/csv")


@pytest.mark.parametrize("raw", [None, "", "pdf", "CSV", "xlsx "])
def test_an_unknown_format_is_a_clear_400(raw: str | None) -> None:
    with pytest.raises(HTTPException) as refused:
        export_format(raw)
    assert refused.value.status_code == 400 and "csv, xlsx" in str(refused.value.detail)
