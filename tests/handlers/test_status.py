"""check_status (CRM-2.5) when Sapa has no ticket for what is asked about: an order or tracking number is
recorded and checked by operations (a `delivery` request), and a late delivery told with impatience is a
complaint (ticket, handoff), never "you have no open tickets". Through the web chat API, the real database
(SQLite and PostgreSQL) and the fake Slack; the clock starts Monday 5 Jan 2026 09:00 WIB.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from bot.app import Sapa
from handlers.status import impatient
from store.models import Conversation, Ticket, TicketEvent
from tests.support.slack import desk_sapa, desk_settings
from tests.support.webchat import WebchatUser


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database) -> Iterator[Sapa]:
    yield from desk_sapa(desk_settings(db_url, fakes), clock, interpreter, database)


def introduced(customer: WebchatUser, name: str = "Budi") -> None:
    customer.say("halo")
    customer.say(name)


def tickets(sapa: Sapa) -> list[Ticket]:
    with sapa.database.unit_of_work(read_only=True) as session:
        return list(session.execute(select(Ticket).order_by(Ticket.id)).scalars())


def opened_entities(sapa: Sapa, ticket: Ticket) -> list[tuple[str, object]]:
    with sapa.database.unit_of_work(read_only=True) as session:
        opened = session.execute(select(TicketEvent).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "opened")).scalar_one()
    return [(e["entity"], e["value"]) for e in opened.detail["entities"]]


def conversation_status(sapa: Sapa) -> str:
    with sapa.database.unit_of_work(read_only=True) as session:
        return session.execute(select(Conversation).order_by(Conversation.id.desc())).scalars().first().status


def test_crm_2_5_a_tracking_number_with_no_ticket_is_recorded_and_checked_by_operations(customer, slack, sapa):
    introduced(customer)
    replies = customer.say("cek resi JP1234567890 dong")
    assert replies == [
        "Baik, Budi. Nomor JP1234567890 sudah kami catat dengan tiket TKT-000001 dan kami teruskan ke tim "
        "operasional untuk dicek. Petugas kami akan mengabari posisi pesanan Anda di sini paling lambat "
        "5 Jan 13.00 WIB."
    ]
    (ticket,) = tickets(sapa)
    assert (ticket.kind, ticket.category, ticket.status, ticket.description) == (
        "request", "delivery", "open", "cek resi JP1234567890 dong")
    assert opened_entities(sapa, ticket) == [("order_id", "JP1234567890")]
    assert conversation_status(sapa) == "bot"  # back-office work: the customer keeps the bot
    slack.settle()
    (card,) = slack.posts("C0OPS")
    assert "*Category:* delivery" in card["text"] and "*Details:* order_id JP1234567890" in card["text"]

    # Asked again about the same number: its ticket's status, not a second ticket.
    assert customer.say("status resi JP1234567890 gimana?") == [
        "Berikut status tiket Anda, Budi:\n- TKT-000001 (permintaan \"cek resi JP1234567890 dong\"): sudah kami "
        "terima dan menunggu petugas, target 5 Jan 13.00 WIB"
    ]
    assert len(tickets(sapa)) == 1


def test_crm_2_5_an_order_number_in_english_gets_the_english_answer(client, slack, sapa):
    sarah = WebchatUser(client, sapa, language="en")
    introduced(sarah, "Sarah")
    assert sarah.say("where is my parcel SPXID012345678901?") == [
        "Certainly, Sarah. We have recorded SPXID012345678901 as ticket TKT-000001 and asked our operations team "
        "to check it. One of our agents will tell you here where your order is by 5 Jan 13:00 WIB."
    ]
    (ticket,) = tickets(sapa)
    assert (ticket.kind, ticket.category) == ("request", "delivery")


def test_crm_3_1_a_late_delivery_told_with_impatience_is_a_complaint_with_the_number(customer, slack, sapa):
    introduced(customer)
    text = "paket sy blm nyampe udh seminggu, resi JNE JP1234567890"
    replies = customer.say(text)
    assert replies == [
        "Mohon maaf atas ketidaknyamanan ini, Budi. Keluhan Anda sudah kami catat dengan nomor tiket TKT-000001. "
        "Petugas kami akan menindaklanjutinya dan membalas di sini paling lambat 5 Jan 13.00 WIB."
    ]
    (ticket,) = tickets(sapa)
    assert (ticket.kind, ticket.category, ticket.root_cause, ticket.description) == (
        "complaint", "late_delivery", "courier_delay", text)
    assert opened_entities(sapa, ticket) == [("order_id", "JP1234567890")]
    assert conversation_status(sapa) == "waiting"  # a complaint goes to a person
    slack.settle()
    assert slack.posts("C0OPS") == []  # not a request as well


def test_while_waiting_for_a_person_an_unknown_number_is_left_to_them(customer, slack, sapa):
    introduced(customer)
    customer.say("saya mau bicara dengan petugas")
    assert conversation_status(sapa) == "waiting"
    assert customer.say("cek resi JP1234567890 dong") == []  # relayed to the agent's thread, no second ticket
    assert tickets(sapa) == []


def test_a_status_question_with_no_number_and_no_ticket_offers_an_agent(customer, sapa):
    introduced(customer)
    assert customer.say("pesanan saya sudah sampai mana ya?") == [
        "Saat ini tidak ada tiket yang masih terbuka atas nama Anda, Budi. Untuk status pesanan, petugas kami bisa "
        "membantu memeriksanya."
    ]
    assert customer.buttons() == [{"title": "Bicara dengan petugas", "payload": "intent:talk_to_agent"}]
    assert tickets(sapa) == []


@pytest.mark.parametrize("text", [
    "paket sy blm nyampe udh seminggu, resi JNE JP1234567890",
    "pesanan INV-2026-00123 kok belum sampai juga",
    "udah 5 hari blm dtg resi 000123456789",
    "resi JP1234567890 masih belum gerak",
    "lama banget paket JX1234567890",
    "where is my order INV-2026-00123??",
    "my parcel JP1234567890 still hasn't arrived after 10 days",
    "pesanan INV-2026-00123 mana nih, kesel banget",
])
def test_impatience_is_heard(text):
    assert impatient(text)


@pytest.mark.parametrize("text", [
    "cek resi JP1234567890 dong",
    "pesanan INV-2026-00123 sudah sampai mana ya kak?",
    "pesanan 2 hari lalu INV-2026-00123 posisinya dimana",  # when it was ordered, not how long they waited
    "where is my parcel SPXID012345678901?",
    "sicepat 002345678901 posisinya dimana",
])
def test_a_calm_status_question_is_not_impatient(text):
    assert not impatient(text)
