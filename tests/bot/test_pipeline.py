"""The conversation core end to end through the web chat API, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from bot.messages import InboundMessage
from bot.pipeline import InboundResult
from store.models import ChannelIdentity, Conversation, Customer, Message, OutboxItem
from tests.support.webchat import NOTICE, NOTICE_BUTTONS


def count(sapa, model, *where) -> int:
    with sapa.database.unit_of_work(read_only=True) as session:
        return int(session.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


def test_new_customer_is_greeted_asked_for_name_and_then_addressed_by_it(customer, sapa):
    replies = customer.say("halo")
    assert replies[0].startswith("Halo! Selamat datang di PT Contoh Sejahtera")
    assert replies[1] == "Boleh kami tahu nama Anda?"

    assert customer.say("nama saya budi santoso") == [
        "Terima kasih, Budi Santoso. Senang berkenalan dengan Anda! Ada yang bisa kami bantu?"
    ]
    assert customer.say("selamat pagi") == [
        "Halo Budi Santoso! Selamat datang kembali di PT Contoh Sejahtera. Ada yang bisa kami bantu hari ini?"
    ]
    with sapa.database.unit_of_work(read_only=True) as session:
        (row,) = session.execute(select(Customer)).scalars()
        assert row.name == "Budi Santoso"
        assert row.source == "webchat"


def test_english_speaker_is_answered_in_english(customer):
    replies = customer.say("hello there, good morning")
    assert replies[0].startswith("Hello! Welcome to PT Contoh Sejahtera")
    assert customer.say("my name is Sarah") == ["Thank you, Sarah. Nice to meet you! How can we help?"]


def test_name_question_never_blocks_a_complaint(customer, sapa):
    customer.say("halo")
    replies = customer.say("barang yang saya terima rusak, saya mau komplain")
    assert replies[0].startswith("Mohon maaf atas ketidaknyamanan ini. Keluhan Anda sudah kami catat")
    with sapa.database.unit_of_work(read_only=True) as session:
        (customer_row,) = session.execute(select(Customer)).scalars()
        assert customer_row.name is None
        (conversation,) = session.execute(select(Conversation)).scalars()
        assert conversation.status == "waiting"
        assert conversation.pending_question is None


def test_fallback_offers_a_human_and_the_button_hands_off(customer, sapa):
    replies = customer.say("asdfgh qwerty zxcv")
    assert replies[0].startswith("Mohon maaf, kami belum memahami pesan Anda")
    assert replies[1:] == [NOTICE]  # a new customer: the privacy notice comes last
    assert customer.buttons() == [{"title": "Bicara dengan petugas", "payload": "intent:talk_to_agent"},
                                  *NOTICE_BUTTONS]

    replies = customer.say("Bicara dengan petugas", payload="intent:talk_to_agent")
    assert "kami teruskan ke petugas" in replies[0]
    # While a human owns the conversation the bot leaves the talking to them, but every message is logged;
    # asking for a person again gets where they stand in the queue, not silence (and no second card).
    assert customer.say("barangnya warna biru ya kak") == []
    assert customer.say("halo? bisa bicara dengan petugas?") == [
        "Percakapan Anda sudah ada di antrean petugas kami; petugas akan segera membalas di sini."]
    assert count(sapa, Message, Message.direction == "in") == 4


def test_every_interaction_is_logged_with_channel_intent_and_time(customer, sapa, clock):
    customer.say("halo")
    customer.say("terima kasih banyak ya")
    with sapa.database.unit_of_work(read_only=True) as session:
        rows = list(session.execute(select(Message).order_by(Message.id)).scalars())
    assert [(r.direction, r.sender) for r in rows] == [
        ("in", "customer"), ("out", "bot"), ("out", "bot"), ("out", "bot"), ("in", "customer"), ("out", "bot"),
    ]  # greeting, name question, privacy notice; then the thanks answered once
    assert rows[0].intent == "greet" and rows[0].confidence and rows[0].confidence > 0.35
    assert rows[3].text == NOTICE
    assert rows[4].intent == "thanks"
    assert all(r.channel == "webchat" and r.created_at == clock.now() for r in rows)
    assert all(r.reply_to_id == rows[0].id for r in rows[1:4])


def test_duplicate_delivery_is_ignored_and_returns_the_same_replies(customer, sapa):
    first = customer.send("halo", client_message_id="m-1")
    again = customer.send("halo", client_message_id="m-1")
    assert again["duplicate"] is True
    assert again["message_id"] == first["message_id"]
    assert [r["id"] for r in again["replies"]] == [r["id"] for r in first["replies"]]
    assert count(sapa, Message, Message.direction == "in") == 1
    assert count(sapa, OutboxItem) == 3  # greeting, name question, privacy notice


def test_same_client_id_in_another_session_is_a_different_message(client, sapa):
    from tests.support.webchat import WebchatUser

    one, two = WebchatUser(client, sapa), WebchatUser(client, sapa)
    one.send("halo", client_message_id="same")
    assert two.send("halo", client_message_id="same")["duplicate"] is False
    assert count(sapa, Customer) == 2


def _inbound(sender: str, provider_id: str, text: str) -> InboundMessage:
    return InboundMessage("webchat", sender, provider_id, text, datetime.now(UTC))


def test_two_messages_from_the_same_new_customer_at_once(sapa):
    """Both arrive before either is stored: one customer, one identity, one conversation, both logged."""
    barrier = threading.Barrier(2)
    results = []

    def deliver(provider_id: str, text: str) -> None:
        barrier.wait()
        results.append(sapa.pipeline.handle(_inbound("SessionAAAAAAAAAAAAAAAAAAAA", provider_id, text)))

    threads = [threading.Thread(target=deliver, args=(f"p{i}", t)) for i, t in enumerate(["halo", "ada orang?"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2 and not any(r.duplicate for r in results)
    assert count(sapa, Customer) == 1
    assert count(sapa, ChannelIdentity) == 1
    assert count(sapa, Conversation) == 1
    assert count(sapa, Message, Message.direction == "in") == 2


def test_the_same_new_phone_on_sms_and_whatsapp_at_once_is_one_customer(sapa):
    """Issue 15, item 6: both first messages create the customer for the same phone; the loser of the race on
    customers.phone must not fail (it was a 500 on PostgreSQL), it joins the winner's customer."""
    for round_ in range(12):
        phone = f"+62812000{round_:05d}"
        barrier = threading.Barrier(2)
        results: list[InboundResult] = []
        errors: list[Exception] = []

        def deliver(channel: str, phone: str = phone, barrier: threading.Barrier = barrier,
                    results: list[InboundResult] = results, errors: list[Exception] = errors) -> None:
            barrier.wait()
            try:
                results.append(sapa.pipeline.handle(InboundMessage(
                    channel, phone, f"{channel}-{phone}", "halo", datetime.now(UTC), phone=phone)))
            except Exception as exc:  # what the webhook would have answered 500 for
                errors.append(exc)

        threads = [threading.Thread(target=deliver, args=(channel,)) for channel in ("sms", "whatsapp")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == [] and len(results) == 2
        assert results[0].customer_id == results[1].customer_id
    assert count(sapa, Customer) == 12
    assert count(sapa, ChannelIdentity) == 24


def test_the_same_delivery_twice_at_once_is_stored_once(sapa):
    barrier = threading.Barrier(2)
    results = []

    def deliver() -> None:
        barrier.wait()
        results.append(sapa.pipeline.handle(_inbound("SessionBBBBBBBBBBBBBBBBBBBB", "same-id", "halo")))

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.duplicate for r in results) == [False, True]
    assert count(sapa, Message, Message.direction == "in") == 1
    assert count(sapa, OutboxItem) == 3  # greeting, name question, privacy notice


def _last_inbound_at(sapa, sender: str) -> datetime | None:
    with sapa.database.unit_of_work(read_only=True) as session:
        return session.execute(select(ChannelIdentity.last_inbound_at)
                               .where(ChannelIdentity.address == sender)).scalar_one()


def test_a_redelivery_hours_later_does_not_move_the_customers_last_message_time(sapa, clock):
    # last_inbound_at opens the WhatsApp 24-hour window; on PostgreSQL it is written by the statement that locks the
    # identity (store/inbound_context.py), which must leave it alone for a provider id seen before.
    sender = "SessionDDDDDDDDDDDDDDDDDDDD"
    sapa.pipeline.handle(_inbound(sender, "once", "halo"))
    written = clock.now()
    assert _last_inbound_at(sapa, sender) == written
    clock.advance(timedelta(hours=3))
    assert sapa.pipeline.handle(_inbound(sender, "once", "halo")).duplicate is True
    assert _last_inbound_at(sapa, sender) == written
    clock.advance(timedelta(minutes=1))
    assert sapa.pipeline.handle(_inbound(sender, "twice", "halo lagi")).duplicate is False
    assert _last_inbound_at(sapa, sender) == clock.now()


def test_a_message_that_waited_for_the_customer_sees_what_the_message_before_it_committed(sapa):
    """Issue 18: the identity, the duplicate check and the conversation are read together after the lock. A message
    waiting for the identity's lock must see what the transaction holding it committed: here, the same delivery
    stored meanwhile is a duplicate, not a unique-index failure (rows joined into a locking statement on PostgreSQL
    come from the snapshot taken before the wait)."""
    sender = "SessionCCCCCCCCCCCCCCCCCCCC"
    first = sapa.pipeline.handle(_inbound(sender, "first", "halo"))
    results: list[InboundResult] = []
    errors: list[Exception] = []

    def deliver() -> None:
        try:
            results.append(sapa.pipeline.handle(_inbound(sender, "again", "halo lagi")))
        except Exception as exc:
            errors.append(exc)

    thread = threading.Thread(target=deliver)
    with sapa.database.unit_of_work() as session:  # the message before it, holding the identity (and the writer)
        identity = session.execute(select(ChannelIdentity).where(ChannelIdentity.address == sender)
                                   .with_for_update()).scalar_one()
        session.add(Message(conversation_id=first.conversation_id, customer_id=identity.customer_id,
                            channel="webchat", direction="in", sender="customer", text="halo lagi", buttons=[],
                            media=[], provider_message_id="again", delivery_status="received", meta={},
                            created_at=datetime.now(UTC)))
        session.flush()
        thread.start()
        if sapa.database.dialect == "postgresql":  # it must really wait on the lock before this commits
            waiting = 0
            for _ in range(250):
                with sapa.database.unit_of_work(read_only=True) as probe:
                    waiting = probe.execute(text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND datname = current_database()")).scalar_one()
                if waiting:
                    break
                time.sleep(0.02)
            assert waiting, "the second message never waited for the identity's lock"
        else:
            time.sleep(0.3)  # SQLite: it waits for the writer lock this unit of work holds
    thread.join(timeout=30)
    assert errors == [] and len(results) == 1
    assert results[0].duplicate is True
    assert count(sapa, Message, Message.direction == "in", Message.provider_message_id == "again") == 1


def test_idle_conversation_is_closed_and_the_next_message_opens_a_new_one(customer, sapa, clock):
    customer.say("halo")
    clock.advance(timedelta(minutes=sapa.settings.conversation.idle_close_minutes + 1))
    customer.say("halo lagi")
    with sapa.database.unit_of_work(read_only=True) as session:
        statuses = [c.status for c in session.execute(select(Conversation).order_by(Conversation.id)).scalars()]
    assert statuses == ["closed", "bot"]
    # History shows both conversations to the same browser session.
    assert [m["text"] for m in customer.history() if m["direction"] == "in"] == ["halo", "halo lagi"]


def test_profile_language_wins_over_the_message_language(customer, sapa):
    customer.say("halo")
    customer.say("Budi")
    with sapa.database.unit_of_work() as session:
        session.execute(select(Customer)).scalar_one().language = "en"
    assert customer.say("selamat siang")[0].startswith("Hello Budi!")


def test_crm_3_1_a_complaint_opens_a_ticket_and_is_acknowledged_with_its_number(customer, sapa):
    from store.models import Ticket, TicketEvent

    customer.say("halo")
    customer.say("Rina")
    replies = customer.say("paket saya datang dalam keadaan rusak, saya kecewa sekali")
    with sapa.database.unit_of_work(read_only=True) as session:
        ticket = session.execute(select(Ticket)).scalar_one()
        events = list(session.execute(select(TicketEvent)).scalars())
        conversation = session.execute(select(Conversation)).scalar_one()
    assert replies == [
        "Mohon maaf atas ketidaknyamanan ini, Rina. Keluhan Anda sudah kami catat dengan nomor tiket "
        f"TKT-{ticket.id:06d}. Petugas kami akan menindaklanjutinya dan membalas di sini paling lambat "
        "5 Jan 13.00 WIB."
    ]
    # Opened Monday 09:00 WIB; a regular ticket has 240 business minutes (08:00-17:00) to a first answer,
    # which is the promise above, and 1440 to resolution: Monday's 480, Tuesday's 540, Wednesday to 15:00.
    assert ticket.first_response_due_at == datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
    assert ticket.resolution_due_at == datetime(2026, 1, 7, 8, 0, tzinfo=UTC)
    assert (ticket.kind, ticket.status, ticket.conversation_id) == ("complaint", "open", conversation.id)
    assert ticket.description == "paket saya datang dalam keadaan rusak, saya kecewa sekali"
    assert [e.kind for e in events] == ["opened"]
    assert conversation.status == "waiting"


def test_stop_withdraws_marketing_consent_and_is_confirmed_once(customer, sapa):
    from store.models import Consent

    assert customer.say("STOP")[0].startswith("Anda tidak akan lagi menerima pesan promosi")
    assert customer.say("stop") == []  # already withdrawn: nothing more is sent
    # Never granted before: the first opt-in ever does not say "again".
    assert customer.say("START")[0].startswith("Terima kasih! Anda akan menerima info promo")
    with sapa.database.unit_of_work(read_only=True) as session:
        consents = [(c.purpose, c.granted, c.evidence) for c in session.execute(select(Consent).order_by(Consent.id))
                    .scalars()]
    assert consents == [("marketing", False, "STOP"), ("marketing", True, "START")]


def test_a_number_answers_the_numbered_options_of_the_last_message(customer, sapa):
    customer.say("asdfgh qwerty zxcv")
    assert customer.buttons()[0]["payload"] == "intent:talk_to_agent"
    # A new customer's last message is the privacy notice, so "1" answers it, not the handoff button.
    assert customer.say("1")[0] == "Terima kasih, persetujuan Anda sudah kami catat."
    customer.say("asdfgh qwerty zxcv")
    assert customer.buttons() == [{"title": "Bicara dengan petugas", "payload": "intent:talk_to_agent"}]
    assert "kami teruskan ke petugas" in customer.say("1")[0]


@pytest.mark.parametrize("text", ["😀😀😀", "🙏", "jfjfjf kdkdkd zzzqqq", "x" * 2000])
def test_emoji_only_gibberish_and_maximal_text_get_the_fallback_answer(customer, sapa, text):
    replies = customer.say(text)
    assert len(replies) == 2 and replies[0].startswith("Mohon maaf, kami belum memahami pesan Anda")
    assert replies[1] == NOTICE  # a new customer
    with sapa.database.unit_of_work(read_only=True) as session:
        row = session.execute(select(Message).where(Message.direction == "in")).scalar_one()
    assert (row.text, row.intent) == (text, "out_of_scope")


def test_what_was_understood_is_kept_with_the_message(customer, sapa):
    customer.say("halo")
    customer.say("Rina")
    customer.say("pesanan INV-2026-00123 sudah dikirim belum? saya bayar Rp 1.250.000")
    with sapa.database.unit_of_work(read_only=True) as session:
        row = session.execute(select(Message).where(Message.direction == "in").order_by(Message.id.desc())
                              .limit(1)).scalar_one()
    assert row.intent == "check_status"
    assert row.meta["nlu"] == {"backend": "embedded", "entities": [
        {"entity": "order_id", "value": "INV-2026-00123", "text": "INV-2026-00123"},
        {"entity": "amount", "value": 1250000, "text": "Rp 1.250.000"},
    ]}


def test_two_messages_in_a_row_the_bot_cannot_understand_go_to_a_human(customer, sapa):
    customer.say("halo")
    customer.say("Rina")
    assert customer.say("asdfgh qwerty zxcv")[0].startswith("Mohon maaf, kami belum memahami pesan Anda")
    assert customer.say("jfjfjf kdkdkd")[0] == (
        "Mohon maaf, sepertinya kami belum bisa membantu lewat pesan otomatis, Rina. Percakapan ini kami teruskan "
        "ke petugas kami; mohon tunggu, petugas akan membalas di sini.")
    with sapa.database.unit_of_work(read_only=True) as session:
        conversation = session.execute(select(Conversation)).scalar_one()
    assert conversation.status == "waiting"
    assert conversation.pending_data == {"handoff_reason": "out_of_scope"}


def test_one_misunderstanding_between_understood_messages_does_not_hand_off(customer, sapa):
    customer.say("halo")
    customer.say("Rina")
    customer.say("asdfgh qwerty zxcv")
    customer.say("terima kasih")
    assert customer.say("jfjfjf kdkdkd")[0].startswith("Mohon maaf, kami belum memahami pesan Anda")
