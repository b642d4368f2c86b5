"""One computation, two faces: the dashboard's numbers equal `sapa report --format json`'s for the same period, for
everyone and for VIPs (VIP-5.2), with the previous period (CRM-5.5). `sapa report` runs as a real process on the
same database; the dashboard is read both as data (bot/reports/dashboard.py) and as the page a manager sees."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bot.app import Sapa
from bot.clock import ManualClock
from bot.console.dashboard_tables import View
from bot.console.web import translator
from bot.reports import dashboard, management
from tests.console.conftest import add_staff, another_browser, signed_in_client
from tests.reports.dashboard_data import seed
from tests.support.server import sapa_command

ROOT = Path(__file__).resolve().parents[2]


def sapa_report(db_url: str, first: str, last: str, *extra: str) -> dict[str, Any]:
    done = subprocess.run([*sapa_command(), "--config", str(ROOT / "config.yml"), "report", "--from", first, "--to",
                           last, "--compare-previous", "--format", "json", *extra],
                          env={"DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def without_clock(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k != "generated_at"}


@pytest.fixture
def built(sapa: Sapa, clock: ManualClock) -> dashboard.Dashboard:
    clock.set(datetime.now(UTC).replace(microsecond=0))  # `sapa report` judges SLAs by the system clock
    with sapa.database.unit_of_work() as session:
        seed(session, clock.now())
    period = dashboard.choose_period(sapa.settings, clock.now())
    with sapa.database.unit_of_work(read_only=True) as session:
        return dashboard.build(session, sapa.settings, period, now=clock.now())


def test_the_dashboards_numbers_are_sapa_reports(db_url: str, built: dashboard.Dashboard) -> None:
    period = built.period
    for section, extra in ((built.everyone, ()), (built.vip, ("--vip",))):
        cli = sapa_report(db_url, period.first.isoformat(), period.last.isoformat(), *extra)
        assert without_clock(cli) == without_clock(json.loads(management.to_json(section.report)))
        # The charts add up to the report's totals: messages per channel, CSAT answers.
        by_channel = {ch: d["in"] + d["out"] for ch, d in cli["current"]["messages_by_channel"].items()}
        assert section.messages.totals == by_channel
        assert sum(p.csat.answered for p in section.trend) == cli["current"]["csat"]["answered"]
        assert sum(p.nps.answered for p in section.trend) == cli["current"]["nps"]["answered"]
    everyone = sapa_report(db_url, period.first.isoformat(), period.last.isoformat())["current"]
    assert (everyone["tickets_opened"], everyone["first_response_sla"]["breached"],
            everyone["escalations"]) == (4, 2, 2)


def test_the_page_shows_sapa_reports_numbers(db_url: str, sapa: Sapa, client: TestClient,
                                             built: dashboard.Dashboard) -> None:
    add_staff(sapa, "Putri", "putri@contoh.example", "management")
    manager = signed_in_client(another_browser(client), "putri@contoh.example")
    html = manager.get("/console/dashboard").text
    period = built.period
    cli = sapa_report(db_url, period.first.isoformat(), period.last.isoformat())
    view = View(sapa.settings, period, translator("id"), "id")
    shown = {m: " ".join(unescape(re.sub(r"<[^>]+>", " ", cell)).split()) for m, cell in re.findall(
        r'<tr data-metric="([a-z0-9_]+)">.*?<td class="current">(.*?)</td>', html.split('id="part-vip"')[0], re.S)}
    for delta in cli["deltas"]:
        assert shown[delta["metric"]] == view.value(delta["metric"], delta["after"]), delta["metric"]
    assert len(cli["deltas"]) == 16
    assert (shown["tickets_opened"], shown["first_response_sla_percent"]) == ("4", "33.3%")
