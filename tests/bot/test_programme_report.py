"""CRM-4.5: the loyalty programme report, January 2026 against December 2025.

The programme's rows (accounts, ledger, redemptions, transactions, messages, broadcasts) are written straight
into the database as the loyalty and broadcast code leaves them; the report is read back through
`build_programme_report`, `sapa programme report` (the real CLI on the test database, JSON and CSV), and the
monthly post to the management channel in Slack (the scheduler's timer, the runner and the fake Slack).

The story, in WIB:
- Ani joined in November (600 points), earned 400 on 5 Dec, redeemed 500 on 10 Jan after the January
  broadcast, and earned 2000 on 20 Jan (a purchase); she is gold since 15 Jan.
- Budi joined on 3 Dec (a purchase, 300 points), redeemed 200 on 20 Dec; his last 100 expired on 5 Jan.
- Citra joined on 12 Jan with a purchase of 1200 points, silver from the start.
- Dedi has no account; he wrote to us in December and in January. Eko joined only in February.
- December's broadcast reached Budi (read, replied); January's reached Ani (read, replied, redeemed) and Budi.

December: 2 members, 700 points earned, 200 redeemed; of the 2 who could redeem (Ani had points on 1 Dec,
Budi earned) one did: 50%. January: 3 members, 3200 earned, 500 redeemed, 100 expired; of the 3 who could
(Ani and Budi had points on 1 Jan, Citra earned) one did: 33%.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import delete
from sqlalchemy.orm import Session

from bot.app import Sapa, build
from bot.cli import main
from bot.config import Settings
from bot.reports.management import local_period, previous_period
from bot.reports.programme import build_programme_report, completed_month, render_text, to_csv, to_json
from handlers.analysis import PROGRAMME_REPORT
from store import Database
from store.models import (
    Broadcast,
    BroadcastRecipient,
    ChannelIdentity,
    Conversation,
    Customer,
    LoyaltyAccount,
    LoyaltyEntry,
    Message,
    OutboxItem,
    Redemption,
    Reward,
    Task,
    Transaction,
)
from store.scores import compute_scores
from tests.support.slack import Slack, desk_settings

ROOT = Path(__file__).resolve().parents[2]
WIB = ZoneInfo("Asia/Jakarta")
JANUARY = (datetime(2026, 1, 1).date(), datetime(2026, 1, 31).date())


def wib(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=WIB)


class Programme:
    """Writes the programme's rows for one customer at a time."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.reward = Reward(code="VCR50", names={"id": "Voucher", "en": "Voucher"}, points_cost=500, stock=None,
                             active=True, created_at=wib(2025, 11, 1), updated_at=wib(2025, 11, 1))
        session.add(self.reward)
        session.flush()

    def customer(self, name: str, at: datetime) -> int:
        row = Customer(name=name, source="whatsapp", is_vip=False, created_at=at, updated_at=at)
        self.session.add(row)
        self.session.flush()
        return row.id

    def account(self, customer_id: int, tier: str, created: datetime, tier_since: datetime) -> None:
        self.session.add(LoyaltyAccount(customer_id=customer_id, balance=0, lifetime_points=0, tier=tier,
                                        tier_since=tier_since, created_at=created, updated_at=created))
        self.session.flush()

    def ledger(self, customer_id: int, kind: str, points: int, balance_after: int, at: datetime) -> None:
        self.session.add(LoyaltyEntry(customer_id=customer_id, kind=kind, points=points, balance_after=balance_after,
                                      remaining=max(points, 0), reason=kind, actor="system", created_at=at))
        self.session.flush()

    def redeem(self, customer_id: int, points: int, at: datetime, broadcast_id: int | None = None) -> None:
        self.session.add(Redemption(customer_id=customer_id, reward_id=self.reward.id, points=points,
                                    voucher_code=f"V-{uuid.uuid4().hex[:8]}", status="issued", channel="whatsapp",
                                    actor="customer", broadcast_id=broadcast_id, created_at=at))
        self.session.flush()

    def buy(self, customer_id: int, amount: int, at: datetime) -> None:
        self.session.add(Transaction(customer_id=customer_id, external_id=f"trx-{uuid.uuid4().hex}", amount=amount,
                                     occurred_at=at, source="api", created_at=at))
        self.session.flush()

    def conversation(self, customer_id: int, channel: str, at: datetime) -> int:
        identity = ChannelIdentity(customer_id=customer_id, channel=channel,
                                   address=f"{channel}-{uuid.uuid4().hex[:10]}", created_at=at)
        self.session.add(identity)
        self.session.flush()
        row = Conversation(customer_id=customer_id, identity_id=identity.id, channel=channel, status="bot",
                           language="id", opened_at=at, last_message_at=at, pending_data={})
        self.session.add(row)
        self.session.flush()
        return row.id

    def writes(self, customer_id: int, at: datetime) -> None:
        self.session.add(Message(conversation_id=self.conversation(customer_id, "whatsapp", at),
                                 customer_id=customer_id, channel="whatsapp", direction="in", sender="customer",
                                 text="halo kak", created_at=at))
        self.session.flush()

    def broadcast(self, name: str, started: datetime) -> int:
        row = Broadcast(name=name, filters={}, messages={"id": "Promo!"}, channels=["whatsapp", "sms"],
                        status="done", created_by="marketing", created_at=started, updated_at=started,
                        started_at=started, finished_at=started + timedelta(minutes=30))
        self.session.add(row)
        self.session.flush()
        return row.id

    def reached(self, broadcast_id: int, customer_id: int, channel: str, delivery: str, sent: datetime) -> None:
        conversation_id = self.conversation(customer_id, channel, sent)
        message = Message(conversation_id=conversation_id, customer_id=customer_id, channel=channel, direction="out",
                          sender="system", text="Promo!", delivery_status=delivery, created_at=sent)
        self.session.add(message)
        self.session.flush()
        item = OutboxItem(message_id=message.id, conversation_id=conversation_id, channel=channel,
                          recipient=f"addr-{customer_id}", payload={}, status="sent", attempts=1, next_attempt_at=sent,
                          created_at=sent, sent_at=sent)
        self.session.add(item)
        self.session.flush()
        self.session.add(BroadcastRecipient(broadcast_id=broadcast_id, customer_id=customer_id, channel=channel,
                                            status="queued", outbox_id=item.id, message_id=message.id, queued_at=sent,
                                            created_at=sent))
        self.session.flush()


def story(database: Database, settings: Settings) -> dict[str, int]:
    with database.unit_of_work() as session:
        p = Programme(session)
        ani, budi, citra, dedi, eko = (p.customer(n, wib(2025, 11, 1)) for n in ("Ani", "Budi", "Citra", "Dedi", "Eko"))
        p.account(ani, "gold", wib(2025, 11, 10), tier_since=wib(2026, 1, 15))
        p.ledger(ani, "earn", 600, 600, wib(2025, 11, 10))
        p.ledger(ani, "earn", 400, 1000, wib(2025, 12, 5))
        january = p.broadcast("Promo Januari", wib(2026, 1, 8))
        p.reached(january, ani, "whatsapp", "read", wib(2026, 1, 8, 10, 5))
        p.writes(ani, wib(2026, 1, 8, 11))
        p.ledger(ani, "redeem", -500, 500, wib(2026, 1, 10))
        p.redeem(ani, 500, wib(2026, 1, 10), broadcast_id=january)
        p.buy(ani, 20_000_000, wib(2026, 1, 20))
        p.ledger(ani, "earn", 2000, 2500, wib(2026, 1, 20))

        p.account(budi, "member", wib(2025, 12, 3), tier_since=wib(2025, 12, 3))
        p.buy(budi, 3_000_000, wib(2025, 12, 3))
        p.ledger(budi, "earn", 300, 300, wib(2025, 12, 3))
        december = p.broadcast("Promo Desember", wib(2025, 12, 10))
        p.reached(december, budi, "sms", "read", wib(2025, 12, 10, 10, 5))
        p.writes(budi, wib(2025, 12, 10, 12))
        p.ledger(budi, "redeem", -200, 100, wib(2025, 12, 20))
        p.redeem(budi, 200, wib(2025, 12, 20))
        p.ledger(budi, "expire", -100, 0, wib(2026, 1, 5))
        p.reached(january, budi, "sms", "delivered", wib(2026, 1, 8, 10, 6))

        p.account(citra, "silver", wib(2026, 1, 12), tier_since=wib(2026, 1, 12))
        p.buy(citra, 12_000_000, wib(2026, 1, 12))
        p.ledger(citra, "earn", 1200, 1200, wib(2026, 1, 12))

        p.writes(dedi, wib(2025, 12, 15))
        p.writes(dedi, wib(2026, 1, 15))
        p.account(eko, "member", wib(2026, 2, 3), tier_since=wib(2026, 2, 3))

        compute_scores(session, settings, wib(2026, 2, 1))
    return {"ani": ani, "budi": budi, "citra": citra, "dedi": dedi, "eko": eko, "january": january,
            "december": december}


FINDINGS = [
    "Members rose from 2 to 3",
    "Active customers rose from 2 to 3",
    "Points earned rose from 700 to 3,200",
    "Points redeemed rose from 200 to 500",
    "Points expired rose from 0 to 100",
    "Redemption rate fell from 50% to 33%",
    "Broadcast messages sent rose from 1 to 2",
    "Broadcast read rate fell from 100% to 50%",
    "Broadcast reply rate fell from 100% to 50%",
    "Broadcast redemption rate rose from 0% to 50%",
    "100 points expired unused",
]


def test_crm_4_5_programme_report_compares_january_with_december(database, settings):
    ids = story(database, settings)
    start, end = local_period(settings, *JANUARY)
    with database.unit_of_work(read_only=True) as session:
        report = build_programme_report(session, settings, start, end, compare_to=previous_period(start, end),
                                        now=wib(2026, 2, 2))
    now, before = report.current, report.previous
    assert before is not None
    assert (now.members, now.new_members, now.tier_changes) == (3, 1, 1)  # Eko joined in February
    assert now.members_by_tier == {"member": 1, "silver": 1, "gold": 1, "platinum": 0}
    assert (now.points_earned, now.earners, now.points_redeemed, now.points_expired) == (3200, 2, 500, 100)
    assert (now.redemptions, now.redeemers, now.could_redeem, now.redemption_rate) == (1, 1, 3, 33.3)
    assert (now.active_customers, now.purchasers, now.writers) == (3, 2, 2)  # Ani, Citra bought; Ani, Dedi wrote
    assert [(b.broadcast_id, b.sent, b.delivered, b.read, b.replies, b.redemptions) for b in now.broadcasts] == [
        (ids["january"], 2, 2, 1, 1, 1)]
    assert (before.members, before.points_earned, before.points_redeemed, before.redemption_rate) == (2, 700, 200, 50.0)
    assert (before.active_customers, before.could_redeem) == (2, 2)
    assert report.findings == FINDINGS
    # Segments as computed on 1 Feb: Ani and Citra bought for the first time in January, Budi long ago.
    assert {k: v for k, v in report.segments.items() if v} == {"new": 2, "hibernating": 1, "prospect": 1,
                                                                "inactive": 1}
    assert [(s.segment, s.customers, s.points_earned, s.redemptions) for s in now.by_segment] == [
        ("new", 2, 3200, 1), ("hibernating", 1, 0, 0), ("prospect", 1, 0, 0), ("inactive", 1, 0, 0)]

    text = render_text(report)
    assert text.startswith("Loyalty programme report: 2026-01-01 to 2026-01-31\n\nSummary\n"
                           "- Members: 3 (1 new; tier changes: 1); by tier now: member 1, silver 1, gold 1, "
                           "platinum 0\n"
                           "- Points: 3200 earned by 2 customers, 500 redeemed, 100 expired, +0 adjusted\n"
                           "- Redemptions: 1 by 1 customers; redemption rate 33.3% of 3 customers with points\n"
                           "- Active customers: 3 (2 bought, 2 wrote)\n"
                           "- Broadcasts: 1 started, 2 messages sent; delivered 100.0%, read 50.0%, replied 50.0%, "
                           "opted out 0.0%, redeemed 50.0%\n")
    assert "Findings\n- Members rose from 2 to 3\n" in text
    assert "Compared with 2025-12-01 to 2025-12-31\n- Members: 2 -> 3 (+1)\n" in text
    assert "- Redemption rate: 50.0% -> 33.3% (-16.7)" in text
    assert "Customers per segment (computed 2026-02-01 10:00)\n- new 2, hibernating 1, prospect 1, inactive 1" in text
    assert "- new: 2 customers, 3200 points earned by 2, 1 redemptions by 1 (500 points)" in text
    assert (f"Broadcasts\n- #{ids['january']} Promo Januari: 2 sent, delivered 100.0%, read 50.0%, replied 50.0%, "
            "0 opt-outs, 1 redemptions, 0 failed") in text


def test_crm_4_5_a_period_without_activity_says_so(database, settings):
    start, end = local_period(settings, *JANUARY)
    with database.unit_of_work(read_only=True) as session:
        report = build_programme_report(session, settings, start, end, now=wib(2026, 2, 2))
    assert report.previous is None and report.deltas == []
    assert report.current.redemption_rate is None and report.current.members_by_tier == {
        "member": 0, "silver": 0, "gold": 0, "platinum": 0}
    assert report.findings == ["No points were earned in this period",
                               "Customer segments have not been computed yet (sapa analysis scores --recompute)"]
    assert "- Redemptions: 0 by 0 customers; redemption rate - of 0 customers with points" in render_text(report)
    assert json.loads(to_json(report))["current"]["broadcast_rates"]["reply"] is None
    assert to_csv(report).splitlines()[0] == "period,section,group,metric,value"


def run_cli(db_url: str, *args: str) -> str:
    result = CliRunner().invoke(main, ["--config", str(ROOT / "config.yml"), "programme", "report", *args],
                                env={"DATABASE_URL": db_url})
    assert result.exit_code == 0, result.output
    return result.output


def test_crm_4_5_programme_report_export_json_and_csv(db_url, database, settings, tmp_path):
    ids = story(database, settings)
    out = tmp_path / "programme.json"
    said = run_cli(db_url, "--from", "2026-01-01", "--to", "2026-01-31", "--compare-previous", "--format", "json",
                   "--out", str(out))
    assert f"Loyalty programme report for 2026-01-01 to 2026-01-31 written to {out}" in said
    exported = json.loads(out.read_text())
    current, previous = exported["current"], exported["previous"]
    assert (current["start"], current["end"]) == ("2026-01-01T00:00:00+07:00", "2026-02-01T00:00:00+07:00")
    assert (previous["start"], previous["end"]) == ("2025-12-01T00:00:00+07:00", "2026-01-01T00:00:00+07:00")
    assert current["members_by_tier"] == {"member": 1, "silver": 1, "gold": 1, "platinum": 0}
    assert (current["points_earned"], current["points_redeemed"], current["redemption_rate"]) == (3200, 500, 33.3)
    assert current["broadcast_rates"] == {"delivered": 100.0, "read": 50.0, "reply": 50.0, "opt_out": 0.0,
                                          "redemption": 50.0}
    [january] = current["broadcasts"]
    assert (january["broadcast_id"], january["name"], january["redemptions"]) == (ids["january"], "Promo Januari", 1)
    assert january["by_channel"]["sms"]["delivered"] == 1
    assert {"metric": "redemption_rate", "before": 50.0, "after": 33.3, "change": -16.7} in exported["deltas"]
    assert exported["findings"] == FINDINGS

    rows = list(csv.reader(io.StringIO(run_cli(db_url, "--from", "2026-01-01", "--to", "2026-01-31",
                                               "--compare-previous", "--format", "csv"))))
    assert rows[0] == ["period", "section", "group", "metric", "value"]
    assert ["current", "summary", "", "redemption_rate", "33.3"] in rows
    assert ["previous", "summary", "", "redemption_rate", "50.0"] in rows
    assert ["current", "members_by_tier", "gold", "members", "1"] in rows
    assert ["current", "by_segment", "new", "points_earned", "3200"] in rows
    assert ["current", "broadcasts", f"#{ids['january']} Promo Januari", "reply_rate", "50.0"] in rows
    assert ["now", "segments", "hibernating", "customers", "1"] in rows
    assert ["current", "findings", "", "finding", "Redemption rate fell from 50% to 33%"] in rows

    text = run_cli(db_url, "--from", "2026-01-01", "--to", "2026-01-31")
    assert text.startswith("Loyalty programme report: 2026-01-01 to 2026-01-31\n") and "Compared with" not in text


def test_crm_4_5_programme_report_rejects_a_backwards_period(db_url):
    result = CliRunner().invoke(main, ["--config", str(ROOT / "config.yml"), "programme", "report",
                                       "--from", "2026-02-01", "--to", "2026-01-01"], env={"DATABASE_URL": db_url})
    assert result.exit_code == 2 and "--from 2026-02-01 is after --to 2026-01-01" in result.output
    result = CliRunner().invoke(main, ["--config", str(ROOT / "config.yml"), "programme", "report",
                                       "--from", "1 Jan"], env={"DATABASE_URL": db_url})
    assert result.exit_code == 2 and "'1 Jan' does not match the format '%Y-%m-%d'" in result.output


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database) -> Iterator[Sapa]:
    settings = desk_settings(db_url, fakes)
    settings = settings.model_copy(update={
        "reports": settings.reports.model_copy(update={"management_channel": "C0MGMT"})})
    sapa = build(settings, clock=clock, interpreter=interpreter, database=database, model_cache=None)
    yield sapa
    sapa.stop_background()


def test_crm_4_5_monthly_programme_report_posted_to_management(client, slack: Slack, sapa: Sapa, clock):
    assert sapa.scheduler is not None
    assert sapa.scheduler._scheduler.get_job(f"periodic:{PROGRAMME_REPORT}") is not None  # on the hourly timer
    sapa.scheduler.schedule_periodic(PROGRAMME_REPORT)  # 5 Jan: December, before the programme had anyone
    slack.settle()
    assert slack.posts("C0MGMT") == []
    with sapa.database.unit_of_work() as session:  # that month's task is done: the story below is new data
        session.execute(delete(Task).where(Task.kind == PROGRAMME_REPORT))
    story(sapa.database, sapa.settings)
    clock.set(wib(2026, 1, 31, 23))  # January is not over yet: the last whole month is December
    sapa.scheduler.schedule_periodic(PROGRAMME_REPORT)
    slack.settle()
    [december] = [p["text"] for p in slack.posts("C0MGMT")]
    assert december.startswith("*Loyalty programme report: 2025-12-01 to 2025-12-31*\n\n*Summary*\n")
    assert "*Compared with 2025-11-01 to 2025-11-30*" in december

    clock.set(wib(2026, 2, 1, 6))  # January is over: two replicas look at the timer at the same moment
    sapa.scheduler.schedule_periodic(PROGRAMME_REPORT)
    sapa.scheduler.schedule_periodic(PROGRAMME_REPORT)
    slack.settle()
    posts = [p["text"] for p in slack.posts("C0MGMT")]
    assert len(posts) == 2
    january = posts[1]
    assert january.startswith("*Loyalty programme report: 2026-01-01 to 2026-01-31*\n\n*Summary*\n"
                              "• Members: 3 (1 new; tier changes: 1)")
    assert "*Compared with 2025-12-01 to 2025-12-31*\n• Members: 2 -> 3 (+1)" in january
    assert "• Redemption rate fell from 50% to 33%" in january

    clock.set(wib(2026, 2, 20, 9))  # later in February: no second January report
    sapa.scheduler.schedule_periodic(PROGRAMME_REPORT)
    slack.settle()
    assert len(slack.posts("C0MGMT")) == 2
    assert completed_month(sapa.settings, wib(2026, 3, 1, 0, 30)) == local_period(
        sapa.settings, datetime(2026, 2, 1).date(), datetime(2026, 2, 28).date())
