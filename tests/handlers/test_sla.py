"""SLA due times and the escalation ladder, end to end: web chat in, signed Slack requests, fake Slack out.

The clock is moved by hand; task checks are run by two Sapa instances (their own engines and worker
names) sharing one database, racing in threads, to show each escalation happens exactly once.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.app import Sapa, build
from store import create_database
from store.models import Customer, Task, Ticket, TicketEvent
from tests.support.providers import drain
from tests.support.slack import Slack, conversation_of, desk_sapa, desk_settings
from tests.support.webchat import WebchatUser


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database) -> Iterator[Sapa]:
    yield from desk_sapa(desk_settings(db_url, fakes), clock, interpreter, database)


@pytest.fixture
def second(db_url, fakes, clock, interpreter) -> Iterator[Sapa]:
    """Another Sapa on the same database, as a second process would be: its own engine and worker name."""
    other = build(desk_settings(db_url, fakes), clock=clock, interpreter=interpreter,
                  database=create_database(db_url), model_cache=None)
    other.runner.worker = "second-process"
    yield other
    other.stop_background()
    other.database.engine.dispose()


def race(*instances: Sapa, rounds: int = 3) -> None:
    """Every instance runs its due tasks at the same moment, several times over."""
    errors: list[BaseException] = []

    def run(instance: Sapa) -> None:
        try:
            instance.runner.run_due()
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    for _ in range(rounds):
        threads = [threading.Thread(target=run, args=(instance,)) for instance in instances]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not errors, errors


def escalations(sapa: Sapa) -> list[dict]:
    with sapa.database.unit_of_work(read_only=True) as session:
        return [e.detail for e in session.execute(
            select(TicketEvent).where(TicketEvent.kind == "escalated").order_by(TicketEvent.id)).scalars()]


def made_vip(customer: WebchatUser, slack: Slack, sapa: Sapa) -> Customer:
    customer.say("halo")
    customer.say("Budi")
    with sapa.database.unit_of_work(read_only=True) as session:
        budi = session.execute(select(Customer)).scalar_one()
    answer = slack.command("U0AMGR", f"vip add #{budi.id} key account, 10 years")
    assert "VIP" in answer["text"], answer
    return budi


def test_vip_4_3_unanswered_vip_complaint_escalates_to_supervisor_then_management_exactly_once(
    customer, slack, sapa, second, clock, fakes
):
    """VIP-4.3 (and VIP-4.1, VIP-4.2, VIP-2.2): nobody answers a VIP complaint; two Sapa instances run the checks."""
    made_vip(customer, slack, sapa)
    opened = clock.now()
    replies = customer.say("pesanan saya datang rusak parah, saya sangat kecewa")
    # VIP-4.1 / VIP-4.2: empathy, the ticket number and the VIP promise (30 minutes, round the clock).
    assert replies == [
        "Mohon maaf atas ketidaknyamanan ini, Budi. Keluhan Anda sudah kami catat dengan nomor tiket "
        "TKT-000001. Petugas kami akan menindaklanjutinya dan membalas di sini paling lambat 5 Jan 09.30 WIB."
    ]
    slack.settle()
    with sapa.database.unit_of_work(read_only=True) as session:
        ticket = session.execute(select(Ticket)).scalar_one()
    assert ticket.first_response_due_at == opened + timedelta(minutes=30)
    assert ticket.resolution_due_at == opened + timedelta(minutes=240)
    # VIP-2.2: VIP work goes to the VIP channel with the account manager mentioned.
    assert "<@U0AMGR>" in json.dumps(slack.card("C0VIP")["blocks"])

    clock.set(opened + timedelta(minutes=23))  # past 75% of the first-response time: the queue is reminded
    race(sapa, second)
    drain(sapa, clock)
    # In the thread of the VIP card, in the VIP channel where the card is.
    reminders = [p for p in slack.posts("C0VIP") if p.get("text", "").startswith("⏰ TKT-000001")]
    assert len(reminders) == 1 and reminders[0].get("thread_ts")
    assert escalations(sapa) == []

    clock.set(opened + timedelta(minutes=31))  # first response missed -> supervisor, once
    race(sapa, second)
    race(sapa, second)
    drain(sapa, clock)
    assert [(e["role"], e["by"]) for e in escalations(sapa)] == [("supervisor", "SLA")]
    to_supervisor = [p for p in slack.posts("C0ESC") if "Escalation level 1" in p.get("text", "")]
    assert len(to_supervisor) == 1
    assert "<@U0SUPER>" in json.dumps(to_supervisor[0]["blocks"])
    assert "first response SLA (vip) missed" in to_supervisor[0]["text"]

    clock.set(opened + timedelta(minutes=241))  # resolution missed -> management, once
    race(sapa, second)
    clock.set(opened + timedelta(days=2))
    race(sapa, second)
    drain(sapa, clock)
    assert [(e["role"], e["level"]) for e in escalations(sapa)] == [("supervisor", 1), ("management", 2)]
    to_management = [p for p in slack.posts("C0ESC") if "Escalation level 2" in p.get("text", "")]
    assert len(to_management) == 1 and "<@U0BOSS>" in json.dumps(to_management[0]["blocks"])
    with sapa.database.unit_of_work(read_only=True) as session:
        ticket = session.execute(select(Ticket)).scalar_one()
        checks = session.execute(select(Task).where(Task.kind == "sla.check")).scalars().all()
    assert ticket.escalation_level == 2
    assert sorted((t.payload["stage"], t.status) for t in checks) == [
        ("first_response", "done"), ("resolution", "done"), ("warn", "done")]
    # Both instances took part: the checks were not all run by one process.
    assert {t.claimed_by for t in checks} <= {sapa.runner.worker, "second-process"}
    told = [m["text"] for m in customer.history() if m["text"].startswith("Permasalahan Anda kami teruskan")]
    assert len(told) == 2


def test_crm_3_4_an_answered_ticket_is_not_escalated(customer, slack, sapa, second, clock):
    """CRM-3.4 / VIP-4.2: the agent answers in time, so the reminder and the first-response check are cancelled."""
    made_vip(customer, slack, sapa)
    opened = clock.now()
    customer.say("barang saya rusak, saya mau komplain")
    slack.settle()
    conversation = conversation_of(sapa)
    clock.set(opened + timedelta(minutes=10))
    assert slack.reply("U0RINA", conversation.desk_ts, "Mohon maaf Pak Budi, kami cek sekarang.") == 200
    slack.settle()
    clock.set(opened + timedelta(minutes=60))
    race(sapa, second)
    drain(sapa, clock)
    assert escalations(sapa) == []
    with sapa.database.unit_of_work(read_only=True) as session:
        ticket = session.execute(select(Ticket)).scalar_one()
        stages = {t.payload["stage"]: t.status for t in session.execute(
            select(Task).where(Task.kind == "sla.check")).scalars()}
    assert ticket.first_responded_at == opened + timedelta(minutes=10)
    assert stages == {"warn": "cancelled", "first_response": "cancelled", "resolution": "pending"}

    # Resolving it cancels the resolution check too: nothing fires later.
    assert slack.press("U0RINA", "resolve", conversation.id, conversation.desk_ts) == 200
    slack.settle()
    clock.set(opened + timedelta(days=3))
    race(sapa, second)
    assert escalations(sapa) == []


def test_regular_tickets_count_business_hours_and_holidays(customer, slack, sapa, clock):
    """CRM-3.1: a regular complaint on a Friday evening before a holiday weekend is due the next working morning."""
    clock.set(datetime(2026, 12, 24, 11, 0, tzinfo=UTC))  # Thursday 18:00 WIB, Christmas Eve
    customer.say("halo")
    customer.say("Budi")
    replies = customer.say("paket saya hilang, saya kecewa")
    # Closed at 18:00; the 25th is a holiday, then Saturday (a working day in config.yml) from 08:00.
    assert replies[0].endswith("paling lambat 26 Des 12.00 WIB.")
    with sapa.database.unit_of_work(read_only=True) as session:
        ticket = session.execute(select(Ticket)).scalar_one()
    assert ticket.first_response_due_at == datetime(2026, 12, 26, 5, 0, tzinfo=UTC)
