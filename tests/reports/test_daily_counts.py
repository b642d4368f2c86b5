"""Completed days' counts kept in daily_counts (issue 17): the dashboard reads them instead of scanning a year, and
every number stays the one a live count gives, whatever happened to the customers since the day was kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from bot.app import Sapa
from bot.clock import ManualClock
from bot.reports import daily_counts, dashboard
from scheduler.jobs import DAILY_COUNTS, daily_counts_task
from store.merge import merge_customers
from store.models import Customer, DailyCount, Message, Task
from store.privacy import erase_customer
from tests.console.conftest import add_staff, signed_in_client
from tests.reports.dashboard_data import Seeded, seed

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)  # Sunday 10:00 in Jakarta


@pytest.fixture
def seeded(sapa: Sapa, clock: ManualClock) -> Seeded:
    clock.set(NOW)
    with sapa.database.unit_of_work() as session:
        return seed(session, NOW)


def counts(sapa: Sapa, period: dashboard.Period, what: str) -> tuple[daily_counts.Counts, daily_counts.Counts]:
    """(what the dashboard reads, a live count of the rows) for the period."""
    with sapa.database.unit_of_work(read_only=True) as session:
        return (daily_counts.per_day(session, sapa.settings, period.start, period.end, what, NOW),
                daily_counts.live(session, sapa.settings, period.start, period.end, what))


def keep(sapa: Sapa, period: dashboard.Period) -> int:
    with sapa.database.unit_of_work() as session:
        return daily_counts.fill(session, sapa.settings, period.previous_first, period.last, NOW)


def customer_id(sapa: Sapa, name: str) -> int:
    with sapa.database.unit_of_work(read_only=True) as session:
        return session.execute(select(Customer.id).where(Customer.name == name)).scalar_one()


def test_a_completed_days_counts_come_from_the_table_and_equal_a_live_count(sapa: Sapa, seeded: Seeded) -> None:
    period = dashboard.choose_period(sapa.settings, NOW, days="7")
    assert keep(sapa, period) == 2 * 14  # this week and the one before, each day once per count
    assert keep(sapa, period) == 0
    for what in daily_counts.WHAT:
        kept, live = counts(sapa, period, what)
        assert kept == live and live
    # Read from the table: a stored count is what the dashboard shows (here altered on purpose).
    day = min(d for (d, _, _, _) in counts(sapa, period, "messages")[1])
    with sapa.database.unit_of_work() as session:
        stored = session.execute(select(DailyCount).where(DailyCount.what == "messages", DailyCount.day == day,
                                                          DailyCount.channel != "")).scalars().first()
        assert stored is not None
        stored.count += 100
        channel = stored.channel
    kept, live = counts(sapa, period, "messages")
    assert sum(n for (d, ch, _, _), n in kept.items() if (d, ch) == (day, channel)) == \
        sum(n for (d, ch, _, _), n in live.items() if (d, ch) == (day, channel)) + 100


def test_today_is_counted_live(sapa: Sapa, seeded: Seeded) -> None:
    today = NOW.astimezone(sapa.settings.tz).date()
    period = dashboard.choose_period(sapa.settings, NOW, first=(today - timedelta(days=3)).isoformat(),
                                     last=today.isoformat())
    keep(sapa, period)
    with sapa.database.unit_of_work(read_only=True) as session:
        assert not session.execute(select(DailyCount).where(DailyCount.day == today)).first()
    before, _ = counts(sapa, period, "messages")
    with sapa.database.unit_of_work() as session:
        sri = session.execute(select(Message).where(Message.customer_id == customer_id(sapa, "Sri"))).scalars().first()
        assert sri is not None
        session.add(Message(conversation_id=sri.conversation_id, customer_id=sri.customer_id, channel=sri.channel,
                            direction="in", sender="customer", text="halo?", created_at=NOW - timedelta(minutes=5)))
    after, live = counts(sapa, period, "messages")
    assert after == live
    assert sum(after.values()) == sum(before.values()) + 1


def test_vip_changes_merges_and_erasure_leave_the_numbers_equal_to_a_live_count(sapa: Sapa, seeded: Seeded) -> None:
    """The VIP share is never stored (who is a VIP changes); erasure keeps the rows it anonymises; a merge moves
    rows between customers, which changes no count for everyone."""
    period = dashboard.choose_period(sapa.settings, NOW, days="7")
    keep(sapa, period)
    budi, wati, joko = (customer_id(sapa, name) for name in ("Budi", "Wati", "Joko"))
    with sapa.database.unit_of_work() as session:
        session.execute(update(Customer).where(Customer.id == budi).values(is_vip=True))
    with sapa.database.unit_of_work() as session:
        merge_customers(session, joko, wati, now=NOW, actor="test", reason="same person")
    with sapa.database.unit_of_work() as session:
        erase_customer(session, budi, now=NOW, actor="test", reason="asked")
    for what in daily_counts.WHAT:
        kept, live = counts(sapa, period, what)
        assert kept == live
        assert any(vip for (_, _, _, vip) in kept)


def test_the_dashboard_is_the_same_read_from_the_table(sapa: Sapa, seeded: Seeded) -> None:
    period = dashboard.choose_period(sapa.settings, NOW, days="30")
    with sapa.database.unit_of_work(read_only=True) as session:
        live = dashboard.build(session, sapa.settings, period, now=NOW)
    keep(sapa, period)
    with sapa.database.unit_of_work(read_only=True) as session:
        assert dashboard.build(session, sapa.settings, period, now=NOW) == live


def test_opening_the_dashboard_keeps_its_completed_days(sapa: Sapa, seeded: Seeded, client: TestClient) -> None:
    add_staff(sapa, "Putri", "putri@contoh.example", "management")
    manager = signed_in_client(client, "putri@contoh.example")
    assert manager.get("/console/dashboard?days=7").status_code == 200
    with sapa.database.unit_of_work(read_only=True) as session:
        days = set(session.execute(select(DailyCount.day).where(DailyCount.what == "conversations")).scalars())
    assert len(days) == 14  # the week shown and the one it is compared with


def test_the_nightly_task_keeps_yesterday_once_it_is_complete(sapa: Sapa, seeded: Seeded) -> None:
    task = daily_counts_task(sapa.settings)
    local_midnight = datetime(2026, 12, 6, tzinfo=sapa.settings.tz)
    assert task.bucket(local_midnight + timedelta(minutes=10)) == (f"{DAILY_COUNTS}:2026-12-04", {"day": "2026-12-04"})
    named = task.bucket(local_midnight + timedelta(hours=2))
    assert named is not None
    key, payload = named
    assert key == f"{DAILY_COUNTS}:2026-12-05"
    with sapa.database.unit_of_work() as session:
        task(session, Task(kind=DAILY_COUNTS, payload=payload), NOW)
    with sapa.database.unit_of_work(read_only=True) as session:
        days = set(session.execute(select(DailyCount.day).where(DailyCount.what == "messages")).scalars())
    assert max(days).isoformat() == "2026-12-05" and len(days) == 7
