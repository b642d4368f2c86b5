"""Telegram, SMS and WhatsApp end to end: signed requests in the providers' real shapes go to the
real webhook endpoints; the real SDKs send to the fake providers; tests assert what arrived there."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from bot.app import Sapa, build, create_app
from store.models import ChannelIdentity, Customer, Message, OutboxItem, Ticket
from tests.support.providers import (
    PUBLIC,
    REPLY_TEMPLATE,
    SECRETS,
    ProviderCustomer,
    drain,
    provider_settings,
)
from tests.support.webchat import NOTICE, NOTICE_NUMBERED

ROOT = Path(__file__).resolve().parents[2]
ADDRESS = {"telegram": "700001", "sms": "+6281234567890", "whatsapp": "+6281234567890"}
GREETING = "Halo! Selamat datang di PT Contoh Sejahtera. Saya Sapa, asisten virtual yang siap membantu Anda."


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database) -> Iterator[Sapa]:
    sapa = build(provider_settings(db_url, fakes), clock=clock, interpreter=interpreter, database=database,
                 model_cache=None)
    yield sapa
    sapa.stop_background()


@pytest.fixture(params=["telegram", "sms", "whatsapp"])
def person(request, client, fakes) -> ProviderCustomer:
    return ProviderCustomer(client, fakes, request.param, ADDRESS[request.param])


def notice(person: ProviderCustomer) -> str:
    """The privacy notice as this channel shows it: Telegram with buttons, SMS and WhatsApp with numbered options."""
    return NOTICE if person.channel == "telegram" else NOTICE_NUMBERED


def count(sapa, model, *where) -> int:
    with sapa.database.unit_of_work(read_only=True) as session:
        return int(session.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


def test_crm_1_1_greeting_reaches_the_customer_on_their_channel(person, sapa, clock, fakes):
    assert person.write("halo") == 200
    drain(sapa, clock)
    assert person.texts() == [GREETING, "Boleh kami tahu nama Anda?", notice(person)]
    sent = person.received()[0].params
    if person.channel == "telegram":
        assert sent["chat_id"] == "700001"  # form-encoded, as PTB sends it
    else:
        prefix = "whatsapp:" if person.channel == "whatsapp" else ""
        assert (sent["To"], sent["From"]) == (prefix + "+6281234567890", prefix + (
            "+14155238886" if person.channel == "whatsapp" else "+15005550006"))
        assert sent["StatusCallback"] == f"{PUBLIC}/webhooks/twilio/status"
    with sapa.database.unit_of_work(read_only=True) as session:
        identity = session.execute(select(ChannelIdentity)).scalar_one()
        statuses = [m.delivery_status for m in session.execute(
            select(Message).where(Message.direction == "out")).scalars()]
    assert (identity.channel, identity.address) == (person.channel, person.address)
    assert statuses == ["sent", "sent", "sent"]


def test_crm_3_1_complaint_opens_a_ticket_and_the_customer_gets_its_number(person, sapa, clock):
    person.write("barang yang saya terima rusak, saya mau komplain")
    drain(sapa, clock)
    with sapa.database.unit_of_work(read_only=True) as session:
        ticket = session.execute(select(Ticket)).scalar_one()
    assert ticket.kind == "complaint" and ticket.status == "open"
    text, last = person.texts()
    assert f"nomor tiket TKT-{ticket.id:06d}" in text
    assert last == notice(person)  # a new customer: the complaint is answered first, then the notice


def test_a_duplicate_delivery_is_processed_once(person, sapa, clock):
    same = "77" if person.channel == "telegram" else "SM" + "7" * 32
    assert person.write("halo", message_id=same) == 200
    assert person.write("halo", message_id=same) == 200  # the provider retried
    drain(sapa, clock)
    assert count(sapa, Message, Message.direction == "in") == 1
    assert len(person.texts()) == 3


@pytest.mark.parametrize("forgery", ["missing", "wrong"])
def test_forged_or_unsigned_webhooks_get_403_and_store_nothing(person, client, sapa, forgery):
    path, body, headers = person.request("halo")
    signature_header = "x-telegram-bot-api-secret-token" if person.channel == "telegram" else "x-twilio-signature"
    if forgery == "missing":
        del headers[signature_header]
    else:
        headers[signature_header] = "forged-" + headers[signature_header][:10]
    response = client.post(path, content=body, headers=headers)
    assert response.status_code == 403
    assert (count(sapa, Message), count(sapa, Customer)) == (0, 0)


def test_a_twilio_webhook_signed_for_another_url_is_refused(client, sapa, fakes):
    person = ProviderCustomer(client, fakes, "sms", "+6281234567890")
    path, body, headers = person.request("halo")
    response = client.post("/webhooks/twilio/whatsapp", content=body, headers=headers)  # signed for /sms
    assert response.status_code == 403
    assert count(sapa, Message) == 0


def test_provider_429_and_500_are_retried_and_delivered_once(person, sapa, clock, fakes):
    """A 429 is retried. A 500 may hide a message the provider took (docs/delivery.md): Twilio is asked and the
    answer sent again only because it never arrived; Telegram cannot be asked, so it is left unconfirmed."""
    method = "sendMessage" if person.provider == "telegram" else "Messages.create"
    fakes.fail_next(person.provider, 429, retry_after=3, method=method)
    fakes.fail_next(person.provider, 500, method=method)
    person.write("terima kasih")
    started = clock.now()
    drain(sapa, clock)
    attempts = fakes.requests(person.provider, method)
    if person.channel == "telegram":
        assert person.texts() == [notice(person)]  # the answer that met the 500 is never repeated
        assert len(attempts) == 3  # 429, 500, and the privacy notice
        with sapa.database.unit_of_work(read_only=True) as session:
            statuses = list(session.execute(select(OutboxItem.status).order_by(OutboxItem.id)).scalars())
        assert statuses == ["unconfirmed", "sent"]
        assert clock.now() - started >= timedelta(seconds=3)  # Telegram's retry_after was honoured
        return
    assert sorted(person.texts()) == sorted(["Sama-sama! Ada lagi yang bisa kami bantu?", notice(person)])
    assert len(attempts) == 4  # 429, 500, then success, and the privacy notice: each delivered once
    assert len(fakes.requests("twilio", "Messages.list")) == 1  # after the 500: looked up before resending


def test_a_permanent_failure_is_recorded_and_never_retried(person, sapa, clock, fakes):
    if person.channel == "telegram":
        fakes.fail_next("telegram", 403, times=5, method="sendMessage")  # bot blocked by the user
    else:
        fakes.fail_next("twilio", 400, code=21211, times=5)  # invalid number
    person.write("terima kasih")
    drain(sapa, clock)
    clock.advance(timedelta(hours=1))
    drain(sapa, clock)
    with sapa.database.unit_of_work(read_only=True) as session:
        rows = list(session.execute(select(OutboxItem).order_by(OutboxItem.id)).scalars())
        message = session.get_one(Message, rows[0].message_id)
        identity = session.execute(select(ChannelIdentity)).scalar_one()
    assert [(row.status, row.attempts) for row in rows] == [("failed", 1), ("failed", 1)]  # answer and notice
    assert message.delivery_status == "failed"
    expected = "blocked" if person.channel == "telegram" else "21211"
    assert expected in (message.delivery_error or "")
    assert expected in (identity.undeliverable_reason or "")
    assert person.texts() == []


def test_whatsapp_reply_after_25_hours_goes_out_as_the_approved_template(client, sapa, clock, fakes):
    person = ProviderCustomer(client, fakes, "whatsapp", "+6281234567890", name="Siti")
    person.write("terima kasih")  # the reply waits (say the outbox was down) ...
    clock.advance(timedelta(hours=25))  # ... past WhatsApp's 24-hour window
    drain(sapa, clock)
    received = person.received()
    assert len(received) == 2  # the answer and the privacy notice
    for sent in received:
        assert sent.params["ContentSid"] == REPLY_TEMPLATE
        assert json.loads(sent.params["ContentVariables"]) == {"1": "Siti"}
        assert "Body" not in sent.params  # never free text outside the window


def test_whatsapp_reply_outside_the_window_without_a_template_fails_with_the_reason(db_url, fakes, clock,
                                                                                      interpreter, database):
    sapa = build(provider_settings(db_url, fakes, whatsapp_templates=False), clock=clock,
                 interpreter=interpreter, database=database, model_cache=None)
    with TestClient(create_app(sapa, background=False)) as client:
        person = ProviderCustomer(client, fakes, "whatsapp", "+6281234567890")
        person.write("terima kasih")
        clock.advance(timedelta(hours=25))
        drain(sapa, clock)
    with sapa.database.unit_of_work(read_only=True) as session:
        messages = list(session.execute(select(Message).where(Message.direction == "out")).scalars())
        identity = session.execute(select(ChannelIdentity)).scalar_one()
    assert len(messages) == 2  # the answer and the privacy notice
    for message in messages:
        assert message.delivery_status == "failed"
        assert message.delivery_error == (
            "WhatsApp 24-hour window closed and no approved template for purpose 'reply' in language 'id'")
    assert identity.undeliverable_reason is None  # the number is fine; the rule stopped the message
    assert person.received() == []
    sapa.stop_background()


def test_crm_1_4_sms_whatsapp_and_a_shared_telegram_contact_are_one_customer(client, sapa, clock, fakes):
    phone = "+6281298765432"
    ProviderCustomer(client, fakes, "telegram", "700002", name="Dewi").write("halo")  # first, unknown
    ProviderCustomer(client, fakes, "sms", phone).write("halo")
    whatsapp = ProviderCustomer(client, fakes, "whatsapp", phone, name="Dewi")
    whatsapp.write("halo")
    whatsapp.write("Dewi")  # answers the name question
    assert count(sapa, Customer, Customer.merged_into_id.is_(None)) == 2  # Telegram is not linked yet
    telegram = ProviderCustomer(client, fakes, "telegram", "700002", name="Dewi")
    own_contact = {"contact": {"phone_number": phone.lstrip("+"), "first_name": "Dewi", "user_id": 700002}}
    assert telegram.write("", extra=own_contact) == 200
    with sapa.database.unit_of_work(read_only=True) as session:
        (customer,) = session.execute(select(Customer).where(Customer.merged_into_id.is_(None))).scalars()
        identities = sorted(i.channel for i in session.execute(select(ChannelIdentity)).scalars())
        owners = set(session.execute(select(Message.customer_id)).scalars())
    assert customer.phone == phone and customer.name == "Dewi"
    assert identities == ["sms", "telegram", "whatsapp"]
    assert owners == {customer.id}  # every message, from every channel, is in one history


def test_someone_elses_contact_does_not_merge_customers(client, sapa, fakes):
    ProviderCustomer(client, fakes, "sms", "+6281298765432").write("halo")
    telegram = ProviderCustomer(client, fakes, "telegram", "700003")
    telegram.write("", extra={"contact": {"phone_number": "6281298765432", "first_name": "X", "user_id": 999}})
    assert count(sapa, Customer, Customer.merged_into_id.is_(None)) == 2


def test_twilio_status_callbacks_update_each_outbound_message(client, sapa, clock, fakes):
    person = ProviderCustomer(client, fakes, "whatsapp", "+6281234567890")
    person.write("terima kasih")
    drain(sapa, clock)
    provider_id = outbound_provider_id(sapa)
    assert provider_id and provider_id.startswith("SM")
    assert fakes.sent("twilio")[0].params["Body"] == "Sama-sama! Ada lagi yang bisa kami bantu?"
    for status in ("delivered", "read", "sent"):  # a late "sent" must not undo "read"
        path, body, headers = person.status_request(provider_id, status)
        assert client.post(path, content=body, headers=headers).status_code == 200
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.execute(select(Message.delivery_status).where(
            Message.provider_message_id == provider_id)).scalar_one() == "read"
    path, body, headers = person.status_request(provider_id, "read")
    headers["x-twilio-signature"] = "forged"
    assert client.post(path, content=body, headers=headers).status_code == 403


def test_a_failed_status_callback_records_the_error_code(client, sapa, clock, fakes):
    person = ProviderCustomer(client, fakes, "whatsapp", "+6281234567890")
    person.write("terima kasih")
    drain(sapa, clock)
    provider_id = outbound_provider_id(sapa)
    assert person.report(provider_id, "failed", error_code="63016") == 200
    with sapa.database.unit_of_work(read_only=True) as session:
        message = session.execute(select(Message).where(Message.provider_message_id == provider_id)).scalar_one()
    assert message.delivery_status == "failed" and "63016" in (message.delivery_error or "")


def outbound_provider_id(sapa) -> str:
    with sapa.database.unit_of_work(read_only=True) as session:
        return str(session.execute(select(Message.provider_message_id).where(Message.direction == "out")
                                   .order_by(Message.id).limit(1)).scalar())


def test_telegram_edits_are_logged_as_edits_not_new_questions(client, sapa, clock, fakes):
    person = ProviderCustomer(client, fakes, "telegram", "700004")
    person.write("halo", message_id="50")
    drain(sapa, clock)
    before = len(person.texts())
    update = {"update_id": 99001, "edited_message": {
        "message_id": 50, "date": 1717236000, "edit_date": 1717236100, "text": "halo, saya mau komplain",
        "from": {"id": 700004, "is_bot": False, "first_name": "Budi"},
        "chat": {"id": 700004, "type": "private", "first_name": "Budi"}}}
    response = client.post("/webhooks/telegram", content=json.dumps(update), headers={
        "content-type": "application/json", "x-telegram-bot-api-secret-token": SECRETS["TELEGRAM_WEBHOOK_SECRET"]})
    assert response.status_code == 200
    drain(sapa, clock)
    assert len(person.texts()) == before  # no reply to an edit
    with sapa.database.unit_of_work(read_only=True) as session:
        inbound = select(Message).where(Message.direction == "in").order_by(Message.id)
        original, edit = session.execute(inbound).scalars()
    assert edit.edit_of_id == original.id and edit.text == "halo, saya mau komplain"
    assert count(sapa, Ticket) == 0


def test_telegram_button_press_is_answered_and_routed(client, sapa, clock, fakes):
    person = ProviderCustomer(client, fakes, "telegram", "700005")
    person.write("asdfgh qwerty zxcv")
    drain(sapa, clock)
    keyboard = person.received()[0].params["reply_markup"]["inline_keyboard"]
    assert keyboard == [[{"text": "Bicara dengan petugas", "callback_data": "intent:talk_to_agent"}]]
    update = {"update_id": 99002, "callback_query": {
        "id": "cbq-1", "chat_instance": "1", "data": "intent:talk_to_agent",
        "from": {"id": 700005, "is_bot": False, "first_name": "Budi"},
        "message": {"message_id": 1, "date": 1717236000, "text": "…",
                    "chat": {"id": 700005, "type": "private", "first_name": "Budi"}}}}
    client.post("/webhooks/telegram", content=json.dumps(update), headers={
        "content-type": "application/json", "x-telegram-bot-api-secret-token": SECRETS["TELEGRAM_WEBHOOK_SECRET"]})
    drain(sapa, clock)
    assert [r.params["callback_query_id"] for r in fakes.requests("telegram", "answerCallbackQuery")] == ["cbq-1"]
    assert "kami teruskan ke petugas" in person.texts()[-1]


def test_sms_options_are_numbered_and_a_number_answers_them(client, sapa, clock, fakes):
    person = ProviderCustomer(client, fakes, "sms", "+6281234567891")
    person.write("asdfgh qwerty zxcv")
    drain(sapa, clock)
    assert person.texts()[0].endswith("\n\n1. Bicara dengan petugas")
    assert person.texts()[-1] == NOTICE_NUMBERED  # a new customer: the notice is last, so "1" answers it
    person.write("1")
    drain(sapa, clock)
    assert person.texts()[-2] == "Terima kasih, persetujuan Anda sudah kami catat."
    person.write("asdfgh qwerty zxcv")
    drain(sapa, clock)
    assert person.texts()[-1].endswith("\n\n1. Bicara dengan petugas")
    person.write("1")
    drain(sapa, clock)
    assert "kami teruskan ke petugas" in person.texts()[-1]


@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
def test_stop_keyword_updates_consent_at_once_and_is_confirmed_once(client, sapa, clock, fakes, channel):
    from store.models import Consent

    person = ProviderCustomer(client, fakes, channel, "+6281234567892")
    person.write("STOP")
    person.write("BERHENTI")
    drain(sapa, clock)
    (confirmation,) = person.texts()
    assert confirmation.startswith("Anda tidak akan lagi menerima pesan promosi")
    with sapa.database.unit_of_work(read_only=True) as session:
        (consent,) = session.execute(select(Consent)).scalars()
    assert (consent.purpose, consent.granted, consent.channel) == ("marketing", False, channel)


def test_telegram_replies_to_one_chat_respect_one_message_per_second(client, sapa, clock, fakes):
    person = ProviderCustomer(client, fakes, "telegram", "700006")
    person.write("halo")  # three replies to the same chat (greeting, name question, privacy notice)
    started = clock.now()
    sapa.dispatcher.run_once()
    assert len(person.texts()) == 1  # the others wait for the chat's next slots
    drain(sapa, clock)
    assert len(person.texts()) == 3
    assert clock.now() - started >= timedelta(seconds=2)
