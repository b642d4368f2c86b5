"""The managers' dashboard (issue 17) on SQLite and PostgreSQL: what a supervisor sees for the last 7 days and now,
that every number opens the tickets or conversations behind it, the exports (CSV and XLSX, audited), and that other
roles get 403. The timeline is tests/reports/dashboard_data.py's."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from html import unescape

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select

from bot.app import Sapa
from bot.clock import ManualClock
from store.models import AuditEntry
from tests.console.conftest import add_staff, another_browser, signed_in_client
from tests.reports.dashboard_data import Seeded, seed


@pytest.fixture
def seeded(sapa: Sapa, clock: ManualClock) -> Seeded:
    clock.set(datetime(2026, 12, 6, 14, 0, tzinfo=UTC))  # Sunday 21:00 in Jakarta
    with sapa.database.unit_of_work() as session:
        return seed(session, clock.now())


@pytest.fixture
def manager(client: TestClient, sapa: Sapa, seeded: Seeded) -> TestClient:
    add_staff(sapa, "Putri", "putri@contoh.example", "supervisor")
    return signed_in_client(another_browser(client), "putri@contoh.example")


def text_of(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def row(html: str, metric: str) -> str:
    found = re.search(rf'<tr data-metric="{metric}">(.*?)</tr>', html, re.S)
    assert found, f"no summary row {metric}"
    return text_of(found.group(1))


def test_a_supervisor_sees_the_week_against_the_week_before_and_the_queue_now(manager: TestClient) -> None:
    page = manager.get("/console/dashboard")
    assert page.status_code == 200
    html = page.text
    assert "2026-11-29 s.d. 2026-12-05 (7 hari), dibandingkan dengan 2026-11-22 s.d. 2026-11-28" in text_of(html)
    assert row(html, "tickets_opened") == "Tiket dibuka 1 4 ▲ +3 (lebih buruk)"
    assert row(html, "escalations").startswith("Eskalasi 0 2")
    assert row(html, "first_response_sla_percent").startswith("SLA respons pertama 100.0% 33.3%")
    # The findings `sapa report` computes, beside the charts, in the page's language.
    assert "2 tiket melewati SLA respons pertama" in html
    assert "1 detraktor VIP dalam survei NPS" in html
    # Now: Joko (ticket due 3 days ago) and Sri (due an hour ago) are past their deadline in the queue.
    live = re.search(r'data-live="breached">(.*?)</li>', html, re.S)
    assert live and text_of(live.group(1)) == "2 Lewat SLA"
    # The VIP section counts Wati only.
    vip = html.split('id="part-vip"')[1]
    assert row(vip, "tickets_opened").startswith("Tiket dibuka 0 1")


def test_every_number_drills_down_to_what_it_counts(manager: TestClient, seeded: Seeded) -> None:
    html = manager.get("/console/dashboard").text
    breached = re.search(r'<tr data-sla="first_response">.*?<td>.*?</td>\s*<td><a href="([^"]+)">2</a>', html, re.S)
    assert breached, "the breached first-response count is not a link"
    drill = manager.get(unescape(breached.group(1)))
    assert drill.status_code == 200
    words = text_of(drill.text)
    assert "Respons pertama melewati SLA" in words and "Angka di dasbor: 2" in words
    assert f'href="/console/tickets/{seeded.tickets["Wati"]}"' in drill.text
    assert f'href="/console/tickets/{seeded.tickets["Joko"]}"' in drill.text
    assert f'href="/console/conversations/{seeded.conversations["Wati"]}"' in drill.text
    assert "Budi" not in words  # answered in time: not behind this number
    live = manager.get("/console/dashboard/drill?metric=live_breached")
    assert f'/console/conversations/{seeded.conversations["Sri"]}' in live.text
    assert "Angka di dasbor: 2" in text_of(live.text)
    messages = manager.get("/console/dashboard/drill", params={
        "metric": "messages", "from": "2026-11-29", "to": "2026-12-05", "group": "channel", "key": "whatsapp"})
    assert "Angka di dasbor: 3" in text_of(messages.text)  # Wati: her message, the bot's and Sari's reply; no note


def test_exports_in_csv_and_xlsx_are_audited(manager: TestClient, sapa: Sapa, seeded: Seeded) -> None:
    answer = manager.get("/console/dashboard/drill/export?metric=fr_breached&from=2026-11-29&to=2026-12-05&format=csv")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert sorted(r["customer"] for r in rows) == ["Joko", "Wati"]
    book = manager.get("/console/dashboard/export?table=conversation_list&days=7&format=xlsx")
    assert book.status_code == 200
    sheet = load_workbook(io.BytesIO(book.content), read_only=True).active
    table = [list(r) for r in sheet.iter_rows(values_only=True)]
    header = table[0]
    lines = {r[header.index("customer")]: dict(zip(header, r, strict=True)) for r in table[1:]}
    assert sorted(lines) == ["Ani", "Budi", "Joko", "Wati"]
    assert (lines["Wati"]["tier"], lines["Wati"]["channel"], lines["Wati"]["agents"], lines["Wati"]["csat"],
            lines["Wati"]["categories"], lines["Wati"]["first_reply_minutes"]) == (
        "gold", "whatsapp", "Sari", "2", "damaged_item", 120)
    with sapa.database.unit_of_work(read_only=True) as session:
        audited = list(session.execute(select(AuditEntry.action, AuditEntry.detail)
                                       .where(AuditEntry.action == "dashboard.exported")))
    assert [d["table"] for _, d in audited] == ["drill", "conversation_list"]


@pytest.mark.parametrize("role", ["marketing", "customer_service"])
def test_other_roles_get_403_on_the_dashboard_and_its_exports(client: TestClient, sapa: Sapa, seeded: Seeded,
                                                              role: str) -> None:
    add_staff(sapa, "Maya", "maya@contoh.example", role)
    other = signed_in_client(another_browser(client), "maya@contoh.example")
    for path in ("/console/dashboard", "/console/dashboard/drill?metric=opened",
                 "/console/dashboard/export?table=conversation_list&format=csv",
                 "/console/dashboard/drill/export?metric=fr_breached&format=xlsx"):
        answer = other.get(path)
        assert answer.status_code == 403, path
        assert "Budi" not in answer.text and "Wati" not in answer.text


def test_an_anonymous_visitor_gets_the_sign_in_page(client: TestClient) -> None:
    answer = client.get("/console/dashboard/export?table=conversation_list&format=csv")
    assert "Masuk" in answer.text and "csv" not in answer.headers.get("content-type", "")


def test_bad_periods_and_formats_are_refused_with_the_reason(manager: TestClient) -> None:
    assert manager.get("/console/dashboard?days=8").status_code == 400
    assert manager.get("/console/dashboard?from=2026-12-05&to=2026-11-01").status_code == 400
    assert manager.get("/console/dashboard?from=2026-12-05").status_code == 400
    assert manager.get("/console/dashboard/export?table=summary&format=pdf").status_code == 400
    assert manager.get("/console/dashboard/drill?metric=nonsense").status_code == 404
    assert manager.get("/console/dashboard?days=30").status_code == 200
    assert manager.get("/console/dashboard?days=365").status_code == 200


def test_the_findings_are_sapa_reports_in_the_pages_language(manager: TestClient) -> None:
    """The same findings, sentence for sentence: English as `sapa report` prints them, Indonesian on an Indonesian
    page."""
    english = manager.get("/console/dashboard", params={"lang": "en"}).text
    indonesian = manager.get("/console/dashboard", params={"lang": "id"}).text
    assert "2 tickets missed the first-response SLA" in english and "1 VIP detractor in the NPS survey" in english
    assert "2 tiket melewati SLA respons pertama" in indonesian
    assert "1 detraktor VIP dalam survei NPS" in indonesian
    assert "Tiket dibuka naik dari 1 menjadi 4" in indonesian and "Tickets opened rose from 1 to 4" in english
    assert "missed the first-response SLA" not in indonesian
