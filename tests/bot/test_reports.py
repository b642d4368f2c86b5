"""Service reports (CRM-5.1, CRM-5.3, CRM-5.4, CRM-5.5, VIP-5.2, VIP-5.3), built from data made through the
product: customers complain on web chat and SMS, agents answer and resolve in Slack, customers rate the
service, the clock is moved by hand. The numbers asserted are worked out from that timeline.

Regular SLA (config.yml): first response 240 and resolution 1440 business minutes (Mon-Fri 08:00-17:00 WIB);
VIP: 30 and 240 minutes round the clock. ManualClock starts Monday 2026-01-05 09:00 WIB.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from bot.app import Sapa, build
from bot.cli import main
from bot.reports.management import (
    Report,
    build_report,
    local_period,
    previous_period,
    render_markdown,
    render_text,
    to_csv,
    to_json,
)
from handlers import nps
from store.models import Conversation, Customer
from tests.support.providers import ProviderCustomer
from tests.support.slack import Slack, desk_settings
from tests.support.webchat import WebchatUser

ROOT = Path(__file__).resolve().parents[2]
WIB = ZoneInfo("Asia/Jakarta")
WEEK_1 = (datetime(2026, 1, 5).date(), datetime(2026, 1, 11).date())
WEEK_2 = (datetime(2026, 1, 12).date(), datetime(2026, 1, 18).date())


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database) -> Iterator[Sapa]:
    settings = desk_settings(db_url, fakes)
    settings = settings.model_copy(update={
        "reports": settings.reports.model_copy(update={"management_channel": "C0MGMT"}),
        "surveys": settings.surveys.model_copy(update={"nps": settings.surveys.nps.model_copy(
            update={"sample_percent": 100})})})  # every NPS round asks everyone eligible
    sapa = build(settings, clock=clock, interpreter=interpreter, database=database, model_cache=None)
    yield sapa
    sapa.stop_background()


def at(clock, day: int, hour: int, minute: int = 0) -> None:
    """Move the clock to January `day`, 2026, hh:mm WIB (the outbox may have nudged it by seconds)."""
    when = datetime(2026, 1, day, hour, minute, tzinfo=WIB)
    assert clock.now() <= when
    clock.set(when)


def complains(user: WebchatUser, slack: Slack, name: str, text: str) -> Conversation:
    user.say("halo")
    user.say(name)
    user.say(text)
    slack.settle()
    with slack.sapa.database.unit_of_work(read_only=True) as session:
        return session.execute(select(Conversation).where(Conversation.desk_ts.is_not(None))
                               .order_by(Conversation.id.desc())).scalars().first()


def report(sapa: Sapa, week: tuple, *, vip_only: bool = False, compare_week: tuple | None = None) -> Report:
    start, end = local_period(sapa.settings, *week)
    with sapa.database.unit_of_work(read_only=True) as session:
        return build_report(session, sapa.settings, start, end, vip_only=vip_only, now=sapa.clock.now(),
                            compare_to=local_period(sapa.settings, *compare_week) if compare_week else None)


def vip(slack: Slack, sapa: Sapa, name: str) -> None:
    with sapa.database.unit_of_work(read_only=True) as session:
        customer_id = session.execute(select(Customer.id).where(Customer.name == name)).scalar_one()
    assert "VIP" in slack.command("U0AMGR", f"vip add #{customer_id} top buyer")["text"]


def test_crm_5_1_first_response_and_resolution_times_and_sla_compliance(client, slack, sapa, clock):
    budi, siti, ani = (WebchatUser(client, sapa) for _ in range(3))
    first = complains(budi, slack, "Budi", "mesin cuci saya bocor terus, saya kecewa")  # Mon 09:00, due 13:00
    at(clock, 5, 9, 30)
    slack.reply("U0RINA", first.desk_ts, "Maaf Pak Budi, teknisi kami datang hari ini.")  # 30 min: met
    slack.settle()
    at(clock, 5, 11, 0)
    slack.press("U0RINA", "resolve", first.id, first.desk_ts)  # resolved after 120 min: met
    slack.settle()
    second = complains(siti, slack, "Siti", "kulkas tidak dingin, saya kecewa")  # Mon 11:00, due 15:00
    at(clock, 5, 16, 0)
    slack.reply("U0RINA", second.desk_ts, "Maaf Bu Siti, kami cek kulkasnya.")  # 300 min: late, escalated at 15:00
    slack.settle()
    assert budi.say("5")[0].startswith("Terima kasih atas penilaian Anda")  # the CSAT question came at 16:00
    complains(ani, slack, "Ani", "AC yang dipasang kemarin bocor, saya kecewa")  # Mon 16:00, due Tue 11:00
    at(clock, 6, 12, 0)  # Tuesday noon: nobody has answered Ani
    slack.settle()

    numbers = report(sapa, WEEK_1).current
    assert (numbers.opened_by_kind, numbers.resolved_by_kind) == ({"complaint": 3}, {"complaint": 1})
    assert (numbers.first_response.count, numbers.first_response.median, numbers.first_response.p90) == (2, 165, 300)
    assert (numbers.resolution.count, numbers.resolution.median, numbers.resolution.p90) == (1, 120, 120)
    # Siti answered late, Ani not answered and past due: both breached.
    sla = numbers.first_response_sla
    assert (sla.met, sla.breached, sla.pending, sla.percent) == (1, 2, 0, 33.3)
    # Budi resolved in time; Siti's (due Wed 17:00) and Ani's are not due yet.
    sla = numbers.resolution_sla
    assert (sla.met, sla.breached, sla.pending, sla.percent) == (1, 0, 2, 100.0)
    assert numbers.unanswered_past_due == 1
    assert numbers.escalations_by_level == {1: 2}  # the first-response breaches went to the supervisor
    assert (numbers.csat_asked, numbers.csat.answered, numbers.csat.average, numbers.csat.satisfied_percent) == (
        1, 1, 5.0, 100.0)
    text = render_text(report(sapa, WEEK_1))
    assert "- First response: median 2.8 h, p90 5.0 h (2 answered)" in text
    assert "- SLA first response: 33.3% (1 met, 2 breached, 0 not due yet)" in text
    assert report(sapa, WEEK_1).findings == [
        "2 tickets missed the first-response SLA",
        "1 ticket still waits for a first answer past the due time",
        "2 escalations: 2 to supervisor (level 1)",
    ]
    assert report(sapa, WEEK_2).current.tickets_opened == 0  # the next week is its own period


def sms_complaint_rated(client, fakes, slack: Slack, sapa: Sapa, clock) -> None:
    """Budi on web chat (Rina, rated 5) and Dewi on SMS (Sari, rated 1 in words) on Monday."""
    budi = WebchatUser(client, sapa)
    first = complains(budi, slack, "Budi", "mesin cuci saya bocor terus, saya kecewa")  # 09:00
    dewi = ProviderCustomer(client, fakes, "sms", "+6281234500001", name="Dewi")
    for text in ("halo", "Dewi", "kulkas tidak dingin, saya kecewa"):
        assert dewi.write(text) == 200
    slack.settle()
    with sapa.database.unit_of_work(read_only=True) as session:
        second = session.execute(select(Conversation).where(Conversation.channel == "sms")).scalar_one()
    at(clock, 5, 9, 20)
    slack.reply("U0RINA", first.desk_ts, "Maaf Pak Budi, teknisi kami datang hari ini.")  # 20 min
    slack.reply("U0SUPER", second.desk_ts, "Maaf Bu Dewi, kami cek kulkasnya.")  # 20 min
    slack.settle()
    at(clock, 5, 10, 0)
    slack.press("U0RINA", "resolve", first.id, first.desk_ts)
    slack.press("U0SUPER", "resolve", second.id, second.desk_ts)
    slack.settle()
    at(clock, 5, 11, 30)  # the CSAT questions went out at 11:00
    slack.settle()
    assert budi.say("5")[0].startswith("Terima kasih atas penilaian Anda")
    assert dewi.write("kecewa, teknisinya telat dua kali") == 200
    slack.settle()


def test_crm_5_3_breakdowns_by_category_channel_agent_and_low_scores_flagged(client, fakes, slack, sapa, clock):
    sms_complaint_rated(client, fakes, slack, sapa, clock)
    numbers = report(sapa, WEEK_1).current

    def table(groups):
        return {g.key: (g.tickets_opened, g.first_response.median, g.first_response_sla.percent, g.csat.answered,
                        g.csat.average) for g in groups}

    # Dewi's low score opened a service-recovery ticket (category service_recovery, on SMS, nobody assigned yet).
    assert numbers.opened_by_kind == {"complaint": 2, "recovery": 1}
    # Both complaints ("bocor", "tidak dingin") are read as damaged_item (config.yml complaints.categories).
    assert table(numbers.by_category) == {"damaged_item": (2, 20, 100.0, 2, 3.0),
                                          "service_recovery": (1, None, None, 0, None)}
    assert table(numbers.by_channel) == {"sms": (2, 20, 100.0, 1, 1.0), "webchat": (1, 20, 100.0, 1, 5.0)}
    assert table(numbers.by_agent) == {"(unassigned)": (1, None, None, 0, None), "Rina": (1, 20, 100.0, 1, 5.0),
                                       "Sari": (1, 20, 100.0, 1, 1.0)}
    assert table(numbers.by_tier) == {"regular": (3, 20, 100.0, 2, 3.0)}
    [low] = numbers.low_scores
    assert (low.score, low.ticket, low.customer, low.channel, low.agent, low.tier, low.comment) == (
        1, "TKT-000002", "Dewi", "sms", "Sari", "regular", "kecewa, teknisinya telat dua kali")
    findings = report(sapa, WEEK_1).findings
    assert findings == ["Channel sms has the lowest CSAT (1.0)", "Agent Sari has the lowest CSAT (1.0)",
                        "1 low CSAT score needs follow-up"]
    markdown = render_markdown(report(sapa, WEEK_1))
    assert "*Low CSAT scores to follow up*\n• 1/5 TKT-000002 Dewi (regular, sms, Sari): " \
           "\"kecewa, teknisinya telat dua kali\"" in markdown


def run_cli(db_url: str, *args: str):
    result = CliRunner().invoke(main, ["--config", str(ROOT / "config.yml"), "report", *args],
                                env={"DATABASE_URL": db_url})
    assert result.exit_code == 0, result.output
    return result


def test_crm_5_4_report_export_json_and_csv(db_url, client, fakes, slack, sapa, clock, tmp_path):
    sms_complaint_rated(client, fakes, slack, sapa, clock)
    out = tmp_path / "report.json"
    result = run_cli(db_url, "--from", "2026-01-05", "--to", "2026-01-11", "--format", "json", "--out", str(out))
    assert f"Service report for 2026-01-05 to 2026-01-11 written to {out}" in result.output
    exported = json.loads(out.read_text())
    current = exported["current"]
    assert (current["start"], current["end"]) == ("2026-01-05T00:00:00+07:00", "2026-01-12T00:00:00+07:00")
    assert (current["tickets_opened"], current["tickets_resolved"]) == (3, 2)
    assert current["first_response"] == {"count": 2, "median": 20.0, "p90": 20.0}
    assert current["first_response_sla"] == {"met": 2, "breached": 0, "pending": 0, "percent": 100.0}
    assert current["csat"] == {"answered": 2, "average": 3.0, "satisfied_percent": 50.0}
    assert [low["ticket"] for low in current["low_scores"]] == ["TKT-000002"]
    assert "1 low CSAT score needs follow-up" in exported["findings"]
    assert exported["previous"] is None

    rows = list(csv.reader(io.StringIO(run_cli(db_url, "--from", "2026-01-05", "--to", "2026-01-11",
                                               "--compare-previous", "--format", "csv").output)))
    assert rows[0] == ["period", "section", "group", "metric", "value"]
    assert ["current", "summary", "", "csat_average", "3.0"] in rows
    assert ["current", "by_channel", "sms", "csat_average", "1.0"] in rows
    assert ["current", "by_agent", "Rina", "first_response_median_min", "20.0"] in rows
    assert ["previous", "summary", "", "tickets_opened", "0"] in rows
    assert ["current", "low_scores", "TKT-000002", "score", "1"] in rows
    assert ["current", "findings", "", "finding", "Tickets opened rose from 0 to 3"] in rows
    # Without dates: the last 30 days up to today in the company time zone.
    today = datetime.now(WIB).date()
    assert run_cli(db_url).output.splitlines()[0] == f"Service report: {today - timedelta(days=29)} to {today}"


def test_crm_5_5_before_after_comparison(client, slack, sapa, clock):
    budi = WebchatUser(client, sapa)
    first = complains(budi, slack, "Budi", "mesin cuci saya bocor terus, saya kecewa")  # Mon 5 Jan 09:00
    at(clock, 5, 14, 0)
    slack.reply("U0RINA", first.desk_ts, "Maaf Pak Budi, teknisi kami datang hari ini.")  # 300 min, late
    slack.settle()
    at(clock, 5, 14, 30)
    slack.press("U0RINA", "resolve", first.id, first.desk_ts)  # 330 min
    slack.settle()
    at(clock, 5, 15, 30)
    slack.settle()
    budi.say("3")
    # The improvement: the next week a complaint is answered in 10 minutes.
    at(clock, 12, 9, 0)
    slack.settle()
    siti = WebchatUser(client, sapa)
    second = complains(siti, slack, "Siti", "kulkas tidak dingin, saya kecewa")
    at(clock, 12, 9, 10)
    slack.reply("U0RINA", second.desk_ts, "Maaf Bu Siti, kami cek kulkasnya.")
    slack.settle()
    at(clock, 12, 10, 0)
    slack.press("U0RINA", "resolve", second.id, second.desk_ts)  # 60 min
    slack.settle()
    at(clock, 12, 11, 30)
    slack.settle()
    siti.say("5")

    compared = report(sapa, WEEK_2, compare_week=WEEK_1)
    assert compared.previous is not None and compared.previous.start == local_period(sapa.settings, *WEEK_1)[0]
    deltas = {d.metric: (d.before, d.after, d.change) for d in compared.deltas}
    assert deltas["tickets_opened"] == (1, 1, 0)
    assert deltas["first_response_median_min"] == (300, 10, -290)
    assert deltas["first_response_sla_percent"] == (0.0, 100.0, 100.0)
    assert deltas["resolution_median_min"] == (330, 60, -270)
    assert deltas["resolution_sla_percent"] == (100.0, 100.0, 0.0)
    assert deltas["escalations"] == (1, 0, -1)
    assert deltas["csat_average"] == (3.0, 5.0, 2.0)
    assert deltas["csat_satisfied_percent"] == (0.0, 100.0, 100.0)
    assert compared.findings == [
        "First-response SLA compliance rose from 0% to 100%",
        "Median first response improved: 5.0 h -> 10 min",
        "Median resolution time improved: 5.5 h -> 60 min",
        "Average CSAT rose from 3.0 to 5.0",
    ]
    text = render_text(compared)
    assert "Compared with 2026-01-05 to 2026-01-11\n- Tickets opened: 1 -> 1 (0)" in text
    assert "- First-response SLA compliance (%): 0 -> 100 (+100)" in text
    assert previous_period(*local_period(sapa.settings, *WEEK_2)) == local_period(sapa.settings, *WEEK_1)


def test_vip_5_2_vip_only_report(client, slack, sapa, clock):
    budi, siti = WebchatUser(client, sapa), WebchatUser(client, sapa)
    budi.say("halo")
    budi.say("Budi")
    vip(slack, sapa, "Budi")
    first = complains(budi, slack, "Budi", "AC yang dipasang kemarin bocor, saya kecewa")  # VIP: due 09:30
    second = complains(siti, slack, "Siti", "kulkas tidak dingin, saya kecewa")  # regular: due 13:00
    at(clock, 5, 9, 45)  # the VIP check escalated at 09:30
    slack.reply("U0RINA", first.desk_ts, "Maaf Pak Budi, teknisi kami segera datang.")  # 45 min: late
    slack.reply("U0RINA", second.desk_ts, "Maaf Bu Siti, kami cek kulkasnya.")  # 45 min: in time
    slack.settle()
    at(clock, 5, 11, 0)
    slack.press("U0RINA", "resolve", first.id, first.desk_ts)  # 120 min, VIP due 13:00: met
    slack.press("U0RINA", "resolve", second.id, second.desk_ts)
    slack.settle()
    at(clock, 5, 12, 30)
    slack.settle()
    budi.say("4")
    siti.say("2")  # a low score, but not a VIP's
    slack.settle()

    vip_only = report(sapa, WEEK_1, vip_only=True)
    numbers = vip_only.current
    assert vip_only.title == "VIP service report" and vip_only.scope == "vip"
    assert numbers.opened_by_kind == {"complaint": 1} and numbers.resolved_by_kind == {"complaint": 1}
    assert (numbers.first_response.median, numbers.resolution.median) == (45, 120)
    assert (numbers.first_response_sla.percent, numbers.first_response_sla.breached) == (0.0, 1)
    assert numbers.resolution_sla.percent == 100.0
    assert numbers.escalations_by_level == {1: 1}
    assert (numbers.csat.answered, numbers.csat.average, numbers.low_scores) == (1, 4.0, [])
    assert [g.key for g in numbers.by_tier] == ["vip"]
    history = budi.history()
    assert numbers.messages_by_channel == {"webchat": {
        "in": sum(1 for m in history if m["direction"] == "in"),
        "out": sum(1 for m in history if m["direction"] == "out")}}
    assert vip_only.findings == ["1 ticket missed the first-response SLA", "1 escalation: 1 to supervisor (level 1)"]
    everyone = report(sapa, WEEK_1).current
    assert (everyone.tickets_opened, len(everyone.low_scores), everyone.first_response_sla.percent) == (3, 1, 50.0)


def test_vip_5_3_vip_report_posted_to_management_on_schedule(client, slack, sapa, clock):
    assert sapa.scheduler._scheduler.get_job("periodic:report.vip") is not None  # on the hourly timer
    budi = WebchatUser(client, sapa)
    budi.say("halo")
    budi.say("Budi")
    vip(slack, sapa, "Budi")
    first = complains(budi, slack, "Budi", "AC yang dipasang kemarin bocor, saya kecewa")
    at(clock, 5, 9, 10)
    slack.reply("U0RINA", first.desk_ts, "Maaf Pak Budi, teknisi kami segera datang.")
    slack.settle()
    at(clock, 5, 10, 0)
    slack.press("U0RINA", "resolve", first.id, first.desk_ts)
    slack.settle()
    at(clock, 5, 11, 30)
    slack.settle()
    budi.say("5")
    slack.settle()
    assert slack.posts("C0MGMT") == []

    at(clock, 12, 6, 0)  # the week is over: two replicas look at the timer at the same moment
    sapa.scheduler.schedule_periodic()
    sapa.scheduler.schedule_periodic()
    slack.settle()
    [post] = [p["text"] for p in slack.posts("C0MGMT")]
    assert post.startswith("*VIP service report: 2026-01-05 to 2026-01-11*\n\n*Summary*\n"
                           "• Tickets opened: 1 (complaint 1); resolved: 1 (complaint 1)\n"
                           "• First response: median 10 min, p90 10 min (1 answered)\n"
                           "• Resolution: median 60 min, p90 60 min (1 resolved)\n"
                           "• SLA first response: 100.0% (1 met, 0 breached, 0 not due yet)\n")
    assert "• CSAT: 1 answered of 1 asked, average 5.00, satisfied (4-5) 100.0%" in post
    assert "*Compared with 2025-12-29 to 2026-01-04*\n• Tickets opened: 0 -> 1 (+1)" in post
    assert "*Findings*\n• Tickets opened rose from 0 to 1\n" in post

    at(clock, 13, 9, 0)  # later in the same period, another pass of the timer and the runner
    sapa.scheduler.schedule_periodic()
    slack.settle()
    assert len(slack.posts("C0MGMT")) == 1


def test_crm_5_2_nps_summary_and_breakdowns_from_stored_answers(client, slack, sapa, clock):
    """Five customers answer the NPS round: 10, 10, 9 (promoters), 7 (passive), 3 (a VIP detractor).
    Promoters 60%, passives 20%, detractors 20%: NPS = 60 - 20 = +40. The VIP report sees only the VIP: -100."""
    people = {}
    for name in ("Ani", "Budi", "Citra", "Dodi", "Eka"):
        people[name] = WebchatUser(client, sapa)
        people[name].say("halo")
        people[name].say(name)
    vip(slack, sapa, "Eka")
    at(clock, 6, 9, 0)
    sapa.scheduler.schedule_periodic(nps.ROUND)
    slack.settle()
    for name, answer in (("Ani", "10"), ("Budi", "sepuluh"), ("Citra", "9"), ("Dodi", "nilai 7 deh"), ("Eka", "3")):
        assert people[name].say(answer) == [f"Terima kasih, {name}! Apa alasan utama nilai Anda?"]
    people["Eka"].say("teknisinya datang terlambat")
    slack.settle()

    everyone = report(sapa, WEEK_1)
    numbers = everyone.current
    assert (numbers.nps_asked, numbers.nps.answered, numbers.nps.score) == (5, 5, 40.0)
    assert (numbers.nps.promoters_percent, numbers.nps.passives_percent, numbers.nps.detractors_percent) == (
        60.0, 20.0, 20.0)
    text = render_text(everyone)
    assert "- NPS +40 (5 answered of 5 asked: promoters 60.0%, passives 20.0%, detractors 20.0%)" in text
    assert "By tier\n- regular: 0 opened, first response median -, SLA - first response / - resolution, CSAT -, " \
           "NPS +75 (4)\n- vip: 0 opened, first response median -, SLA - first response / - resolution, CSAT -, " \
           "NPS -100 (1)" in text
    assert "- webchat: 0 opened" in text and "NPS +40 (5)" in text.split("By channel")[1]
    assert "NPS detractors\n- 3/10 Eka (vip, webchat, Andi): \"teknisinya datang terlambat\"" in text
    assert "1 VIP detractor in the NPS survey" in everyone.findings
    exported = json.loads(to_json(everyone))["current"]
    assert exported["nps"] == {"answered": 5, "promoters_percent": 60.0, "passives_percent": 20.0,
                               "detractors_percent": 20.0, "score": 40.0}
    assert [row["nps"]["score"] for row in exported["by_tier"]] == [75.0, -100.0]  # 10, 10, 9, 7 | 3
    rows = list(csv.reader(io.StringIO(to_csv(everyone))))
    assert ["current", "summary", "", "nps", "40.0"] in rows
    assert ["current", "by_channel", "webchat", "nps", "40.0"] in rows
    assert ["current", "nps", "", "passives_percent", "20.0"] in rows

    vip_only = report(sapa, WEEK_1, vip_only=True)
    assert "• NPS -100 (1 answered of 1 asked: promoters 0.0%, passives 0.0%, detractors 100.0%)" in \
        render_markdown(vip_only)
