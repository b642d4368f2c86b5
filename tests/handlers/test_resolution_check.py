"""CRM-3.5: after resolution a scheduled check asks the customer; "not solved" reopens with a higher priority.

Web chat customer, agents pressing Resolve through signed Slack requests, the check run by the task
runner after the clock moves past `sla.confirm_resolution_after_minutes`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.app import Sapa
from store.models import Task, Ticket, TicketEvent
from tests.support.slack import Slack, complained, conversation_of, desk_sapa, desk_settings
from tests.support.webchat import WebchatUser


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database) -> Iterator[Sapa]:
    yield from desk_sapa(desk_settings(db_url, fakes), clock, interpreter, database)


def resolved_and_asked(customer: WebchatUser, slack: Slack, sapa: Sapa, clock) -> Ticket:
    conversation = complained(customer, slack, "kulkas yang saya beli tidak dingin sama sekali, saya kecewa")
    assert slack.reply("U0RINA", conversation.desk_ts, "Teknisi kami datang besok pagi, Pak Budi.") == 200
    assert slack.press("U0RINA", "resolve", conversation.id, conversation.desk_ts) == 200
    slack.settle()
    clock.advance(timedelta(minutes=sapa.settings.sla.confirm_resolution_after_minutes - 1))
    slack.settle()
    assert not customer.history()[-1]["text"].startswith("Halo Budi, kami ingin memastikan")  # not yet
    clock.advance(timedelta(minutes=2))
    slack.settle()
    with sapa.database.unit_of_work(read_only=True) as session:
        return session.execute(select(Ticket)).scalar_one()


def test_crm_3_5_not_solved_reopens_the_ticket_with_higher_priority_and_a_new_sla(customer, slack, sapa, clock):
    ticket = resolved_and_asked(customer, slack, sapa, clock)
    question = customer.history()[-1]
    assert question["text"] == ("Halo Budi, kami ingin memastikan: apakah masalah pada tiket TKT-000001 sudah "
                                "benar-benar selesai?")
    assert question["buttons"] == [{"title": "Ya, sudah selesai", "payload": f"resolution:yes:{ticket.id}"},
                                   {"title": "Belum selesai", "payload": f"resolution:no:{ticket.id}"}]
    priority_before = ticket.priority

    replies = customer.say("Belum selesai", payload=f"resolution:no:{ticket.id}")
    assert len(replies) == 1 and replies[0].startswith(
        "Mohon maaf masalahnya belum selesai, Budi. Tiket TKT-000001 kami buka kembali dengan prioritas lebih "
        "tinggi; petugas kami akan membalas di sini paling lambat ")
    slack.settle()
    with sapa.database.unit_of_work(read_only=True) as session:
        ticket = session.execute(select(Ticket)).scalar_one()
        events = [e.kind for e in session.execute(select(TicketEvent).order_by(TicketEvent.id)).scalars()]
        checks = {t.dedupe_key: t.status for t in session.execute(select(Task).where(Task.kind == "sla.check"))
                  .scalars()}
    assert (ticket.status, ticket.reopened_count, ticket.resolved_at) == ("open", 1, None)
    assert ticket.priority == priority_before + 1
    assert events[-2:] == ["confirmation_asked", "reopened"]
    # A fresh round of SLA checks for the reopened ticket, next to the finished first round.
    assert {key: status for key, status in checks.items() if ":r1:" in key} == {
        f"sla:{ticket.id}:r1:warn": "pending", f"sla:{ticket.id}:r1:first_response": "pending",
        f"sla:{ticket.id}:r1:resolution": "pending"}
    # The agents get the conversation back as a new card.
    assert conversation_of(sapa).status == "waiting"
    assert sum(1 for p in slack.posts("C0QUEUE") if p.get("blocks") and not p.get("thread_ts")) == 2


def test_crm_3_5_solved_in_words_closes_the_ticket(customer, slack, sapa, clock):
    resolved_and_asked(customer, slack, sapa, clock)
    replies = customer.say("iya sudah beres kak, makasih")
    assert replies == ["Terima kasih atas konfirmasinya, Budi. Tiket TKT-000001 kami tutup. Senang bisa membantu!"]
    with sapa.database.unit_of_work(read_only=True) as session:
        ticket = session.execute(select(Ticket)).scalar_one()
    assert ticket.status == "closed" and ticket.reopened_count == 0


def test_a_reopened_ticket_is_not_asked_about_its_old_resolution(customer, slack, sapa, clock):
    """The check scheduled for an earlier resolution round does nothing once the ticket was reopened."""
    ticket = resolved_and_asked(customer, slack, sapa, clock)
    customer.say("Belum selesai", payload=f"resolution:no:{ticket.id}")
    slack.settle()
    before = len(customer.history())
    clock.advance(timedelta(days=3))
    slack.settle()
    asked = [m for m in customer.history()[before:] if "kami ingin memastikan" in m["text"]]
    assert asked == []


def test_check_status_tells_open_tickets_in_plain_words(customer, slack, sapa, clock):
    """CRM-2.5 / VIP-3.3: the customer asks where things stand and hears each open ticket's status."""
    conversation = complained(customer, slack, "kulkas yang saya beli tidak dingin sama sekali, saya kecewa")
    assert slack.press("U0RINA", "back_to_bot", conversation.id, conversation.desk_ts) == 200
    slack.settle()
    replies = customer.say("komplain saya kemarin udah diproses belum ya?")
    assert replies == [
        "Berikut status tiket Anda, Budi:\n- TKT-000001 (keluhan \"kulkas yang saya beli tidak dingin sama sekali, "
        "saya kecewa\"): sudah kami terima dan menunggu petugas, target 5 Jan 13.00 WIB"
    ]
    english = WebchatUser(customer.client, sapa, language="en")
    english.say("hello")
    english.say("Sarah")
    assert english.say("where is my order? any update?") == [
        "There are no open tickets under your name right now, Sarah. For an order's status, one of our agents "
        "can check it for you."]
