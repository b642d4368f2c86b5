"""The loyalty programme page of the console (issue 17, CRM-4.2 and CRM-4.5), on SQLite and PostgreSQL: the tiers,
the rewards catalogue and its stock, and the programme report as charts whose tables carry the very numbers
`build_programme_report` (what `sapa report programme` prints) gives for the same period. ManualClock: Monday
2026-01-05 09:00 WIB."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import date, timedelta

from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select

from bot.app import Sapa
from bot.reports.management import local_period, previous_period
from bot.reports.programme import build_programme_report, to_csv
from store import loyalty
from store.customers import get_or_create_identity
from store.models import AuditEntry, Customer, Reward, Transaction
from tests.console.conftest import add_staff, another_browser, csrf, notice, signed_in_client

PAGE = "/console/campaigns/loyalty"


def members(sapa: Sapa) -> None:
    """Ani buys for Rp 6.5 million (650 points) and redeems VCR50 (500 points); Budi buys for Rp 1.2 million."""
    now = sapa.clock.now()
    with sapa.database.unit_of_work() as session:
        for name, amount, address in (("Ani", 6_500_000, "5001"), ("Budi", 1_200_000, "5002")):
            identity, _ = get_or_create_identity(session, "webchat", address, now=now)
            customer = session.get_one(Customer, identity.customer_id)
            customer.name = name
            purchase = Transaction(customer_id=customer.id, external_id=f"trx-{name}", amount=amount,
                                   occurred_at=now - timedelta(days=2), source="api", created_at=now)
            session.add(purchase)
            session.flush()
            loyalty.earn(session, sapa.settings, customer.id, purchase, now - timedelta(days=2))
            if name == "Ani":
                loyalty.sync_rewards(session, sapa.settings, now)
                loyalty.redeem(session, sapa.settings, customer.id, "VCR50", "webchat", "test", now - timedelta(days=1))


def marketer(client: TestClient, sapa: Sapa, role: str = "marketing") -> TestClient:
    add_staff(sapa, "Maya", f"maya.{role}@example.co.id", role)
    return signed_in_client(another_browser(client), f"maya.{role}@example.co.id")


def text_of(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def chart_rows(page: str, caption: str) -> dict[str, list[str]]:
    """The table under the chart captioned `caption`: row label -> its cells' data-value."""
    pattern = r'<figure class="chart"[^>]*>\s*<figcaption>' + re.escape(caption) + r"</figcaption>(.*?)</figure>"
    figure = re.search(pattern, page, re.S)
    assert figure, f"no chart {caption!r}"
    rows = {}
    for row in re.findall(r"<tr><th>(.*?)</th>(.*?)</tr>", figure.group(1), re.S):
        values = re.findall(r'data-value="(-?\d+)"', row[1])
        if values:  # not the header row
            rows[html.unescape(row[0])] = values
    return rows


def test_the_page_shows_tiers_rewards_and_the_programme_report_as_charts_with_report_numbers(
        client: TestClient, sapa: Sapa) -> None:
    members(sapa)
    browser = marketer(client, sapa)
    page = browser.get(PAGE, params={"from": "2026-01-01", "to": "2026-01-05"})
    assert page.status_code == 200
    words = text_of(page.text)
    assert "Periode 2026-01-01 – 2026-01-05, dibandingkan dengan 2025-12-27 – 2025-12-31." in words
    start, end = local_period(sapa.settings, date(2026, 1, 1), date(2026, 1, 5))
    with sapa.database.unit_of_work(read_only=True) as session:
        report = build_programme_report(session, sapa.settings, start, end, compare_to=previous_period(start, end),
                                        now=sapa.clock.now())
    current = report.current
    assert current.points_earned == 770 and current.points_redeemed == 500  # the story, as the report counts it
    points = chart_rows(page.text, "Poin: periode ini dan sebelumnya")
    assert points["poin diperoleh"] == [str(current.points_earned), "0"]
    assert points["poin ditukar"] == [str(current.points_redeemed), "0"]
    tiers = chart_rows(page.text, "Anggota per tingkat (saat ini)")
    assert {tier: int(values[0]) for tier, values in tiers.items()} == current.members_by_tier
    assert f"{current.members} anggota" in words and f"{current.redemptions} penukaran" in words
    # Charts are drawn by the vendored Chart.js from these tables: both scripts are on the page.
    assert "/console/static/vendor/chart-4.6.2.umd.min.js" in page.text and "/console/static/charts.js" in page.text
    # Tiers from the settings, rewards from the catalogue with their stock and how often they were redeemed.
    for tier in sapa.settings.loyalty.tiers:
        assert f'<th scope="row">{tier.name}</th>' in page.text
    assert "VCR50" in page.text and "SERVIS" in page.text and 'id="stock-SERVIS"' in page.text
    assert re.search(r"VCR50</code>.*?<td>500</td><td>semua</td><td>1</td>",
                     page.text, re.S)
    assert "Ani" not in page.text  # nobody is named on this page


def test_the_programme_report_exports_as_the_cli_writes_it(client: TestClient, sapa: Sapa) -> None:
    members(sapa)
    browser = marketer(client, sapa)
    page = browser.get(PAGE, params={"from": "2026-01-01", "to": "2026-01-05"})
    assert "/console/campaigns/loyalty/export?format=xlsx&amp;from=2026-01-01&amp;to=2026-01-05" in page.text
    answer = browser.get(f"{PAGE}/export", params={"format": "csv", "from": "2026-01-01", "to": "2026-01-05"})
    assert answer.status_code == 200
    assert answer.headers["content-disposition"] == \
        'attachment; filename="loyalty-programme-2026-01-01-2026-01-05.csv"'
    start, end = local_period(sapa.settings, date(2026, 1, 1), date(2026, 1, 5))
    with sapa.database.unit_of_work(read_only=True) as session:
        report = build_programme_report(session, sapa.settings, start, end, compare_to=previous_period(start, end),
                                        now=sapa.clock.now())
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert rows[0] == ["period", "section", "group", "metric", "value"]
    assert rows == list(csv.reader(io.StringIO(to_csv(report))))  # the CLI's header and rows, number for number
    assert ["current", "summary", "", "points_earned", "770"] in rows
    book = load_workbook(io.BytesIO(browser.get(f"{PAGE}/export", params={
        "format": "xlsx", "from": "2026-01-01", "to": "2026-01-05"}).content))
    assert [c.value for c in next(book.active.iter_rows())] == ["period", "section", "group", "metric", "value"]
    assert browser.get(f"{PAGE}/export", params={"format": "pdf"}).status_code == 400
    assert browser.get(f"{PAGE}/export", params={"format": "csv", "from": "2026-02-30"}).status_code == 400


def test_a_bad_period_is_explained_and_the_default_used(client: TestClient, sapa: Sapa) -> None:
    browser = marketer(client, sapa)
    page = browser.get(PAGE, params={"from": "2026-02-01", "to": "2026-01-01"})
    assert page.status_code == 200
    assert "Periode tidak dipakai: from: the first day comes after the last" in text_of(page.text)
    assert "Periode 2025-12-07 – 2026-01-05" in text_of(page.text)  # the last 30 days instead


def test_stock_changes_are_saved_audited_and_refused_when_not_a_number(client: TestClient, sapa: Sapa) -> None:
    browser = marketer(client, sapa)
    token = csrf(browser.get(PAGE).text)

    def change(**data: str) -> str:
        answer = browser.post(f"{PAGE}/rewards", data={**data, "csrf_token": token}, follow_redirects=False)
        assert answer.status_code == 303
        return notice(browser.get(answer.headers["location"]).text)

    def servis() -> Reward:
        with sapa.database.unit_of_work(read_only=True) as session:
            found = loyalty.find_reward(session, "SERVIS")
            assert found is not None
            return found

    assert servis().stock == 50
    assert change(code="SERVIS", stock="12", change="stock") == "Stok hadiah diperbarui."
    assert servis().stock == 12
    assert change(code="SERVIS", stock="dua belas", change="stock").startswith("Tidak dilakukan: stock: a whole number")
    assert change(code="SERVIS", stock="-1", change="stock").startswith("Tidak dilakukan: stock:")
    assert servis().stock == 12
    assert change(code="SERVIS", stock="", change="stock") == "Stok hadiah diperbarui."
    assert servis().stock is None  # blank: unlimited
    assert change(code="SERVIS", change="disable").startswith("Hadiah tidak ditawarkan lagi")
    assert servis().active is False
    assert change(code="TIDAKADA", stock="1", change="stock") == "Tidak dilakukan: no reward 'TIDAKADA'"
    with sapa.database.unit_of_work(read_only=True) as session:
        rows = list(session.execute(select(AuditEntry).where(AuditEntry.subject_type == "reward")
                                    .order_by(AuditEntry.id)).scalars())
    assert [r.action for r in rows] == ["loyalty.reward_stock", "loyalty.reward_stock", "loyalty.reward_disabled"]
    assert rows[0].detail["from"] == 50 and rows[0].detail["to"] == 12 and rows[0].actor.startswith("agent:")


def test_only_marketing_and_admin_open_the_loyalty_page(client: TestClient, sapa: Sapa) -> None:
    for role in ("customer_service", "supervisor", "management"):
        other = marketer(client, sapa, role)
        assert other.get(PAGE).status_code == 403, role
        assert other.get(f"{PAGE}/export", params={"format": "csv"}).status_code == 403, role
        token = csrf(other.get("/console/password").text)
        refused = other.post(f"{PAGE}/rewards", data={"code": "SERVIS", "stock": "0", "change": "stock",
                                                     "csrf_token": token}, follow_redirects=False)
        assert refused.status_code == 403
    assert marketer(client, sapa, "admin").get(PAGE).status_code == 200
    with sapa.database.unit_of_work(read_only=True) as session:
        found = loyalty.find_reward(session, "SERVIS")
        assert found is None or found.stock == 50
