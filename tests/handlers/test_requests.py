"""Requests (CRM-2.1, CRM-2.2, CRM-2.5, VIP-3.1, VIP-3.2, VIP-3.3), end to end: web chat in, the request card
and reminders in the fake Slack's operations channel, agents' `/sapa ticket … take|done` as signed Slack
requests, follow-ups as durable tasks run by moving the clock.

The clock starts Monday 5 Jan 2026 09:00 WIB; business hours are Mon-Sat 08:00-17:00 (config.yml).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.app import Sapa
from store.models import Agent, Conversation, Customer, Message, Task, Ticket, TicketEvent
from tests.support.slack import Slack, desk_sapa, desk_settings
from tests.support.webchat import WebchatUser

STATUS_UPDATE = "kabar terbaru untuk permintaan Anda"


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database) -> Iterator[Sapa]:
    yield from desk_sapa(desk_settings(db_url, fakes), clock, interpreter, database)


def introduced(customer: WebchatUser, sapa: Sapa) -> int:
    customer.say("halo")
    customer.say("Budi")
    with sapa.database.unit_of_work(read_only=True) as session:
        return session.execute(select(Customer.id)).scalar_one()


def made_vip(customer: WebchatUser, slack: Slack, sapa: Sapa) -> int:
    customer_id = introduced(customer, sapa)
    # Andi is an account manager: flagging the VIP makes him their account manager.
    assert "is now a VIP" in slack.command("U0AMGR", f"vip add #{customer_id} key account, 10 years")["text"]
    return customer_id


def the_ticket(sapa: Sapa) -> Ticket:
    with sapa.database.unit_of_work(read_only=True) as session:
        return session.execute(select(Ticket)).scalar_one()


def said_to_customer(customer: WebchatUser, containing: str) -> list[str]:
    return [m["text"] for m in customer.history() if m["direction"] == "out" and containing in m["text"]]


def reminders(slack: Slack) -> list[str]:
    return [p["text"] for p in slack.posts("C0OPS") if p.get("text", "").startswith("⏰ Request")]


def test_crm_2_1_a_request_becomes_a_tracked_ticket_and_the_bot_keeps_the_conversation(customer, slack, sapa):
    """CRM-2.1 (and CRM-2.2): the request gets a ticket number and a promise; everything is logged."""
    introduced(customer, sapa)
    replies = customer.say("tolong kirim ulang invoice untuk pesanan INV-2026-00123 ya")
    # Regular tier: 240 business minutes from Monday 09:00.
    assert replies == [
        "Baik, Budi. Permintaan Anda sudah kami catat dengan nomor tiket TKT-000001 dan kami teruskan ke tim "
        "operasional kami. Petugas kami akan memprosesnya dan mengabari Anda di sini paling lambat 5 Jan 13.00 WIB."
    ]
    ticket = the_ticket(sapa)
    assert (ticket.kind, ticket.status, ticket.category, ticket.subject) == (
        "request", "open", "document", "tolong kirim ulang invoice untuk pesanan INV-2026-00123 ya")
    # Not a handoff: the bot still answers, and the request is in the customer's ticket status.
    assert customer.say("status tiket saya gimana?") == [
        "Berikut status tiket Anda, Budi:\n- TKT-000001 (permintaan \"tolong kirim ulang invoice untuk pesanan "
        "INV-2026-00123 ya\"): sudah kami terima dan menunggu petugas, target 5 Jan 13.00 WIB"
    ]
    slack.settle()
    assert slack.posts("C0QUEUE") == []  # nobody was asked to take over the chat
    with sapa.database.unit_of_work(read_only=True) as session:
        conversation = session.execute(select(Conversation)).scalar_one()
        logged = session.execute(select(Message).where(Message.conversation_id == conversation.id)
                                 .order_by(Message.id)).scalars().all()
    assert conversation.status == "bot"
    # CRM-2.2: the request and its acknowledgement are in the interaction log with channel and intent.
    request = next(m for m in logged if m.direction == "in" and "invoice" in m.text)
    assert (request.channel, request.intent, request.sender) == ("webchat", "request", "customer")
    assert any(m.direction == "out" and "TKT-000001" in m.text and m.reply_to_id == request.id for m in logged)


def test_vip_3_1_special_request_details_recorded_linked_to_customer_and_conversation(customer, slack, sapa):
    """VIP-3.1: the ticket holds the request, the details understood in it, the channel and the message."""
    customer_id = made_vip(customer, slack, sapa)
    replies = customer.say("tolong reschedule pengiriman pesanan INV-2026-00123 ke tanggal 20-01-2026 ya")
    # VIP tier: 30 minutes, round the clock.
    assert replies == [
        "Baik, Budi. Permintaan Anda sudah kami catat dengan nomor tiket TKT-000001 dan kami teruskan ke tim "
        "operasional kami. Petugas kami akan memprosesnya dan mengabari Anda di sini paling lambat 5 Jan 09.30 WIB."
    ]
    with sapa.database.unit_of_work(read_only=True) as session:
        ticket = session.execute(select(Ticket)).scalar_one()
        conversation = session.execute(select(Conversation)).scalar_one()
        events = session.execute(select(TicketEvent).order_by(TicketEvent.id)).scalars().all()
        request = session.execute(select(Message).where(Message.direction == "in", Message.intent == "request")
                                  ).scalar_one()
        andi = session.execute(select(Agent).where(Agent.slack_user_id == "U0AMGR")).scalar_one()
    assert (ticket.customer_id, ticket.conversation_id) == (customer_id, conversation.id)
    assert (ticket.kind, ticket.category, ticket.priority) == ("request", "reschedule_delivery", 1)
    assert ticket.description == "tolong reschedule pengiriman pesanan INV-2026-00123 ke tanggal 20-01-2026 ya"
    assert ticket.assigned_agent_id == andi.id  # the VIP's account manager owns it
    opened = events[0]
    assert opened.kind == "opened"
    assert opened.detail["channel"] == "webchat" and opened.detail["message_id"] == request.id
    assert [(e["entity"], e["value"]) for e in opened.detail["entities"]] == [
        ("order_id", "INV-2026-00123"), ("date", "2026-01-20")]
    assert (events[1].kind, events[1].agent_id) == ("assigned", andi.id)


def test_vip_3_2_request_routed_to_operations_with_checklist_owner_and_due(customer, slack, sapa):
    """VIP-3.2: a card in the operations channel: who, what, details, checklist, owner, due time."""
    customer_id = made_vip(customer, slack, sapa)
    customer.say("tolong reschedule pengiriman pesanan INV-2026-00123 ke tanggal 20-01-2026 ya")
    slack.settle()
    cards = slack.posts("C0OPS")
    assert len(cards) == 1
    assert cards[0]["text"] == "\n".join([
        f"📋 *Request TKT-000001* from *Budi* (⭐ VIP strategic, customer #{customer_id})",
        "> tolong reschedule pengiriman pesanan INV-2026-00123 ke tanggal 20-01-2026 ya",
        "*Category:* reschedule_delivery",
        "*Details:* order_id INV-2026-00123 · date 2026-01-20",
        "*Owner:* <@U0AMGR> (Andi)",
        "*Due:* 5 Jan 13:00 WIB (take it by 5 Jan 09:30 WIB)",
        "*Checklist:*",
        "☐ Check the details with the customer if anything is unclear",
        "☐ Do it, or pass it to the team that can and follow it up",
        "☐ Tell the customer and close it: /sapa ticket TKT-… done NOTE",
        "Take it: `/sapa ticket TKT-000001 take` · finish it: `/sapa ticket TKT-000001 done NOTE`",
    ])
    assert slack.posts("C0VIP") == [] and slack.posts("C0QUEUE") == []


def test_vip_3_2_a_customer_cannot_ping_the_operations_channel(customer, slack, sapa):
    introduced(customer, sapa)
    customer.say("tolong kirim ulang invoice <!channel> ya")
    slack.settle()
    card = slack.posts("C0OPS")[0]["text"]
    assert "> tolong kirim ulang invoice &lt;!channel&gt; ya" in card and "<!channel>" not in card
    assert "*Owner:* unassigned" in card and "(regular, customer #" in card


def test_crm_2_5_open_requests_remind_agents_until_resolved(customer, slack, sapa, clock):
    """CRM-2.5: every 4 hours (business hours) the operations channel hears about an open request, until done."""
    introduced(customer, sapa)
    opened = clock.now()  # Monday 09:00
    customer.say("tolong kirim ulang invoice untuk pesanan INV-2026-00123 ya")
    slack.settle()

    clock.set(opened + timedelta(hours=1))
    answer = slack.command("U0RINA", "ticket TKT-000001 take")["text"]
    assert answer == "✋ TKT-000001 taken by Rina. The customer has been told."
    assert said_to_customer(customer, "Rina") == [
        "Permintaan Anda TKT-000001 sekarang ditangani oleh Rina dari PT Contoh Sejahtera. Kami akan mengabari "
        "Anda begitu selesai, paling lambat 7 Jan 15.00 WIB."]

    clock.set(opened + timedelta(hours=4))  # Monday 13:00
    slack.settle()
    assert reminders(slack) == [
        "⏰ Request TKT-000001 is still in progress · owner <@U0RINA> (Rina) · due 7 Jan 15:00 WIB: "
        "tolong kirim ulang invoice untuk pesanan INV-2026-00123 ya"]
    clock.set(opened + timedelta(hours=8))  # Monday 17:00: closing time, the next one waits for the morning
    slack.settle()
    assert len(reminders(slack)) == 1
    clock.set(opened + timedelta(hours=23))  # Tuesday 08:00
    slack.settle()
    assert len(reminders(slack)) == 2

    clock.set(opened + timedelta(hours=24))
    answer = slack.command("U0RINA", "ticket TKT-000001 done invoice sent again by email")["text"]
    assert answer == "✅ TKT-000001 done by Rina: invoice sent again by email. The customer has been told."
    assert said_to_customer(customer, "sudah selesai kami proses") == [
        "Permintaan Anda TKT-000001 sudah selesai kami proses, Budi. Terima kasih atas kesabaran Anda. Jika ada "
        "yang belum sesuai, silakan balas pesan ini."]
    ticket = the_ticket(sapa)
    assert (ticket.status, ticket.resolution) == ("resolved", "invoice sent again by email")
    for hours in (28, 32, 48, 72):
        clock.set(opened + timedelta(hours=hours))
        slack.settle()
    assert len(reminders(slack)) == 2  # resolved: no more reminders
    with sapa.database.unit_of_work(read_only=True) as session:
        left = session.execute(select(Task).where(Task.kind == "request.reminder", Task.status == "pending")).all()
    assert left == []
    assert slack.command("U0RINA", "ticket TKT-000001 done again")["text"] == "TKT-000001 is already resolved."


def test_vip_3_3_vip_gets_periodic_status_updates_until_closed(customer, slack, sapa, clock):
    """VIP-3.3: every 3 hours (business hours) the VIP hears where the request stands; not after it is done."""
    made_vip(customer, slack, sapa)
    opened = clock.now()  # Monday 09:00
    customer.say("tolong reschedule pengiriman pesanan INV-2026-00123 ke tanggal 20-01-2026 ya")
    slack.settle()
    clock.set(opened + timedelta(minutes=10))
    assert slack.command("U0AMGR", "ticket TKT-000001 take")["text"].startswith("✋ TKT-000001 taken by Andi")

    clock.set(opened + timedelta(hours=3))  # Monday 12:00
    slack.settle()
    assert said_to_customer(customer, STATUS_UPDATE) == [
        "Halo Budi, kabar terbaru untuk permintaan Anda TKT-000001: sedang dikerjakan oleh tim kami, target "
        "selesai 5 Jan 13.00 WIB. Kami akan terus mengabari Anda sampai selesai."]
    clock.set(opened + timedelta(hours=6))  # Monday 15:00, past the VIP resolution target: no target quoted
    slack.settle()
    assert said_to_customer(customer, STATUS_UPDATE)[1:] == [
        "Halo Budi, kabar terbaru untuk permintaan Anda TKT-000001: sedang dikerjakan oleh tim kami. Kami akan "
        "terus mengabari Anda sampai selesai."]

    clock.set(opened + timedelta(hours=6, minutes=30))
    assert slack.command("U0AMGR", "ticket TKT-000001 done rescheduled to Tuesday")["text"].startswith("✅")
    assert len(said_to_customer(customer, "sudah selesai kami proses")) == 1
    for hours in (9, 23, 26, 48):
        clock.set(opened + timedelta(hours=hours))
        slack.settle()
    assert len(said_to_customer(customer, STATUS_UPDATE)) == 2  # closed: no more updates
    with sapa.database.unit_of_work(read_only=True) as session:
        updates = session.execute(select(Task.status).where(Task.kind == "request.status_update")
                                  .order_by(Task.id)).scalars().all()
    assert updates == ["done", "done", "cancelled"]


def test_vip_3_3_a_regular_customer_gets_no_status_updates(customer, slack, sapa, clock):
    introduced(customer, sapa)
    opened = clock.now()
    customer.say("tolong kirim ulang invoice untuk pesanan INV-2026-00123 ya")
    for hours in (3, 6, 24, 48):
        clock.set(opened + timedelta(hours=hours))
        slack.settle()
    assert said_to_customer(customer, STATUS_UPDATE) == []
    assert reminders(slack)  # the agents are reminded all the same
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.execute(select(Task).where(Task.kind == "request.status_update")).all() == []


def test_only_requests_are_finished_from_the_command(customer, slack, sapa):
    introduced(customer, sapa)
    customer.say("pesanan saya datang rusak parah, saya sangat kecewa")
    assert slack.command("U0RINA", "ticket TKT-000001 done fixed")["text"] == (
        "TKT-000001 is a complaint: resolve it from its card in the queue.")
    assert slack.command("U0RINA", "ticket TKT-000099 take")["text"] == "No ticket `TKT-000099`."
