"""The agent desk end to end: customers on the web chat and Telegram, agents in Slack.

Signed Slack requests in Slack's payload shapes go to POST /slack/events; the real slack_sdk posts to
the fake Slack; customers see agents' words on their own channel.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.app import Sapa
from store.models import AuditEntry, Customer, Message, Task, Ticket, TicketEvent
from tests.support.providers import ProviderCustomer
from tests.support.slack import complained, conversation_of, desk_sapa, desk_settings, handed_off, signed
from tests.support.webchat import WebchatUser


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database) -> Iterator[Sapa]:
    yield from desk_sapa(desk_settings(db_url, fakes), clock, interpreter, database)


def test_the_whole_loop_from_web_chat_to_slack_and_back(customer, slack, sapa):
    conversation, card_ts = handed_off(customer, slack)
    card = slack.card()
    blocks = json.dumps(card["blocks"])
    assert "Budi" in card["text"]
    for shown in ("Budi", "webchat", "saya mau bicara dengan petugas", "sapa_claim", "sapa_resolve",
                  "sapa_escalate", "sapa_back_to_bot"):
        assert shown in blocks

    customer.say("halo? masih ada orang?")  # relayed into the card's thread, no bot reply
    slack.settle()
    assert any("halo? masih ada orang?" in text for text in slack.thread(card_ts))

    assert slack.reply("U0RINA", card_ts, "Halo Budi, saya Rina. Ada yang bisa saya bantu?") == 200
    slack.settle()
    agent_messages = [m for m in customer.history() if m["sender"] == "agent"]
    assert [(m["text"], m["agent_name"]) for m in agent_messages] == [
        ("Halo Budi, saya Rina. Ada yang bisa saya bantu?", "Rina")]
    conversation = conversation_of(sapa)
    assert conversation.status == "with_agent"


def test_a_retried_slack_event_is_relayed_once(customer, slack, sapa):
    _, card_ts = handed_off(customer, slack)
    assert slack.reply("U0RINA", card_ts, "Sebentar ya", event_id="Ev-same") == 200
    assert slack.reply("U0RINA", card_ts, "Sebentar ya", event_id="Ev-same", retry=1) == 200
    slack.settle()
    assert [m["text"] for m in customer.history() if m["sender"] == "agent"] == ["Sebentar ya"]


def test_claim_and_resolve_buttons_change_state_and_tell_the_customer(customer, slack, sapa):
    conversation, card_ts = handed_off(customer, slack)
    assert slack.press("U0RINA", "claim", conversation.id, card_ts) == 200
    slack.settle()
    assert conversation_of(sapa).status == "with_agent"
    assert customer.history()[-1]["text"] == (
        "Halo, saya Rina dari PT Contoh Sejahtera. Saya yang akan membantu Anda sekarang.")
    updates = [r.params for r in slack.fakes.requests("slack", "chat.update")]
    assert updates and updates[-1]["ts"] == card_ts and "sapa_claim" not in json.dumps(updates[-1]["blocks"])

    assert slack.press("U0RINA", "resolve", conversation.id, card_ts) == 200
    slack.settle()
    assert conversation_of(sapa).status == "closed"
    assert customer.history()[-1]["text"].startswith("Permasalahan Anda telah kami selesaikan")
    assert "sapa_" not in json.dumps(slack.fakes.requests("slack", "chat.update")[-1].params.get("blocks", []))
    with sapa.database.unit_of_work(read_only=True) as session:
        actions = [a.action for a in session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars()]
    assert actions[-2:] == ["conversation.claim", "conversation.resolve"]
    # The next message starts over with the bot.
    assert customer.say("halo lagi")[0].startswith("Halo Budi!")


def test_crm_3_3_resolving_a_complaint_records_it_on_the_ticket_and_tells_the_customer(customer, slack, sapa):
    conversation = complained(customer, slack, "barang yang saya terima rusak, saya mau komplain")
    slack.press("U0RINA", "resolve", conversation.id, conversation.desk_ts)
    slack.settle()
    with sapa.database.unit_of_work(read_only=True) as session:
        ticket = session.execute(select(Ticket)).scalar_one()
        events = [e.kind for e in session.execute(select(TicketEvent).order_by(TicketEvent.id)).scalars()]
    assert ticket.status == "resolved" and ticket.resolution == "Resolved in Slack by Rina"
    assert events == ["opened", "resolved"]
    assert f"(tiket TKT-{ticket.id:06d})" in customer.history()[-1]["text"]


def test_crm_3_4_escalate_notifies_supervisors_with_context(customer, slack, sapa):
    conversation = complained(customer, slack, "saya kecewa, pesanan saya rusak dan belum diganti")
    slack.press("U0RINA", "escalate", conversation.id, conversation.desk_ts)
    slack.settle()
    escalation = slack.card("C0ESC")
    assert "<@U0SUPER>" in json.dumps(escalation["blocks"])
    assert "Escalation level 1" in json.dumps(escalation["blocks"])
    with sapa.database.unit_of_work(read_only=True) as session:
        ticket = session.execute(select(Ticket)).scalar_one()
        event = session.execute(select(TicketEvent).where(TicketEvent.kind == "escalated")).scalar_one()
    assert ticket.escalation_level == 1
    assert event.detail == {"level": 1, "role": "supervisor", "by": "Rina", "reason": "escalated by an agent"}
    assert customer.history()[-1]["text"].startswith("Permasalahan Anda kami teruskan ke atasan kami")


def test_back_to_bot_returns_the_conversation_to_the_bot(customer, slack, sapa):
    conversation, card_ts = handed_off(customer, slack)
    slack.press("U0RINA", "back_to_bot", conversation.id, card_ts)
    slack.settle()
    assert conversation_of(sapa).status == "bot"
    assert customer.say("terima kasih") == ["Sama-sama, Budi! Ada lagi yang bisa kami bantu?"]


def test_notes_stay_internal(customer, slack, sapa):
    _, card_ts = handed_off(customer, slack)
    before = customer.history()
    slack.reply("U0RINA", card_ts, "note: pelanggan ini sudah 3x komplain bulan ini")
    slack.settle()
    assert customer.history() == before
    with sapa.database.unit_of_work(read_only=True) as session:
        note = session.execute(select(Message).where(Message.direction == "note")).scalar_one()
    assert note.text == "pelanggan ini sudah 3x komplain bulan ini"


def test_unknown_slack_users_cannot_act(customer, slack, sapa):
    conversation, card_ts = handed_off(customer, slack)
    before = customer.history()
    slack.reply("U0STRANGER", card_ts, "halo saya orang asing")
    slack.press("U0STRANGER", "resolve", conversation.id, card_ts)
    slack.settle()
    assert customer.history() == before
    assert conversation_of(sapa).status == "waiting"
    assert any("not a registered Sapa agent" in text for text in slack.thread(card_ts))


def test_bot_messages_and_edits_are_not_relayed(customer, slack, sapa):
    _, card_ts = handed_off(customer, slack)
    before = customer.history()
    slack.reply("U0SAPABOT", card_ts, "our own relay", extra={"bot_id": "B0SAPABOT"})
    slack.reply("U0RINA", card_ts, "edited", extra={"subtype": "message_changed"})
    slack.settle()
    assert customer.history() == before


@pytest.mark.parametrize("problem", ["forged", "stale"])
def test_forged_or_stale_slack_requests_get_403_and_change_nothing(client, sapa, problem):
    body = json.dumps({"type": "event_callback", "event_id": "Ev1", "event": {
        "type": "message", "user": "U0RINA", "text": "x", "ts": "1.1", "thread_ts": "1.0", "channel": "C0QUEUE"}})
    headers = signed(body, "application/json", secret="wrong-secret") if problem == "forged" else signed(
        body, "application/json", age_s=301)
    assert client.post("/slack/events", content=body, headers=headers).status_code == 403
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.execute(select(func.count()).select_from(Task)).scalar_one() == 0


def test_url_verification_is_answered(client):
    body = json.dumps({"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                       "type": "url_verification"})
    response = client.post("/slack/events", content=body, headers=signed(body, "application/json"))
    assert response.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


def test_slack_rate_limits_are_honoured_by_the_outbox(customer, slack, sapa, clock, fakes):
    fakes.fail_next("slack", 429, retry_after=2, method="chat.postMessage")
    started = clock.now()
    handed_off(customer, slack)
    assert len([p for p in slack.posts("C0QUEUE") if p.get("blocks") and not p.get("thread_ts")]) == 1
    assert clock.now() - started >= timedelta(seconds=2)


def test_vip_handoff_goes_to_the_vip_channel_with_the_account_manager(client, customer, slack, sapa):
    customer.say("halo")
    customer.say("Budi")
    with sapa.database.unit_of_work() as session:
        budi = session.execute(select(Customer)).scalar_one()
        budi.phone = "+6281200000001"
    result = slack.command("U0AMGR", "vip add +6281200000001 kontrak korporat 2027")
    assert "is now a VIP" in result["text"] and result["response_type"] == "ephemeral"
    customer.say("tolong sambungkan ke petugas")
    slack.settle()
    card = slack.card("C0VIP")
    assert "<@U0AMGR>" in json.dumps(card["blocks"]) and "VIP" in json.dumps(card["blocks"])
    with sapa.database.unit_of_work(read_only=True) as session:
        audit = session.execute(select(AuditEntry).where(AuditEntry.action == "vip.add")).scalar_one()
    assert audit.detail == {"reason": "kontrak korporat 2027"}


def test_slash_commands_show_customer_ticket_and_queue(client, customer, slack, sapa):
    customer.say("halo")
    customer.say("Budi")
    customer.say("barang saya rusak, saya mau komplain")
    slack.settle()
    other = WebchatUser(client, sapa)
    other.say("saya mau bicara dengan petugas")
    queue = slack.command("U0RINA", "queue")["text"]
    assert queue.startswith("*2 waiting*") and queue.index("Budi") < queue.index("(name not known)")
    with sapa.database.unit_of_work(read_only=True) as session:
        ticket = session.execute(select(Ticket)).scalar_one()
    shown = slack.command("U0RINA", f"ticket TKT-{ticket.id:06d}")["text"]
    assert f"TKT-{ticket.id:06d}" in shown and "complaint" in shown and "opened" in shown
    profile = slack.command("U0RINA", "customer Budi")["text"]
    assert "Budi" in profile and "regular" in profile and f"TKT-{ticket.id:06d}" in profile
    assert "not a registered Sapa agent" in slack.command("U0NOBODY", "queue")["text"]
    assert "Only account managers" in slack.command("U0RINA", "vip add Budi alasan")["text"]


def test_telegram_customer_reaches_an_agent_and_hears_back(client, slack, sapa, clock, fakes):
    person = ProviderCustomer(client, fakes, "telegram", "700010", name="Wayan")
    person.write("saya mau bicara dengan petugas")
    slack.settle()
    card_ts = conversation_of(sapa).desk_ts
    assert card_ts and "telegram" in json.dumps(slack.card()["blocks"])
    slack.reply("U0RINA", card_ts, "Halo Wayan, saya Rina.")
    slack.settle()
    assert person.texts()[-1] == "Halo Wayan, saya Rina."
