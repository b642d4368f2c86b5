"""Issue 14, point 3: every kind of message gets a sensible answer.

Photos, video, voice notes, documents, stickers, locations, contacts (own and someone else's), MMS without a
body and forwarded messages are stored, acknowledged in the customer's language, never read as the customer's
words, and never counted toward the two-miss handoff. Payloads are the provider-shaped fixtures in
tests/channels/fixtures/, posted signed to the real webhooks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from bot.app import Sapa
from store.models import Consent, Conversation, Message, Ticket
from tests.support.providers import PUBLIC, TELEGRAM_SECRET, TWILIO_TOKEN, ProviderCustomer, drain, provider_sapa

FIXTURES = Path(__file__).resolve().parents[1] / "channels" / "fixtures"


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database) -> Iterator[Sapa]:
    yield from provider_sapa(db_url, fakes, clock, interpreter, database)


def telegram(client, name: str, **changes: Any) -> tuple[int, int]:
    update = json.loads((FIXTURES / "telegram" / name).read_text())
    update["message"].update(changes)
    response = client.post("/webhooks/telegram", content=json.dumps(update), headers={
        "content-type": "application/json", "x-telegram-bot-api-secret-token": TELEGRAM_SECRET})
    return response.status_code, int(update["message"]["chat"]["id"])


def twilio(client, name: str) -> tuple[int, str]:
    fixture = json.loads((FIXTURES / "twilio" / name).read_text())
    form = [(k, v) for k, v in fixture["form"]]
    path = fixture["path"]
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC + path, dict(form))
    response = client.post(path, content=urlencode(form), headers={
        "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature})
    return response.status_code, dict(form)["From"].removeprefix("whatsapp:")


def last_in(sapa) -> Message:
    with sapa.database.unit_of_work(read_only=True) as session:
        return session.execute(select(Message).where(Message.direction == "in").order_by(Message.id.desc())
                               ).scalars().first()


def replies_to_last(sapa) -> list[str]:
    with sapa.database.unit_of_work(read_only=True) as session:
        last = session.execute(select(Message.id).where(Message.direction == "in").order_by(Message.id.desc())
                               ).scalars().first()
        return [m.text for m in session.execute(select(Message).where(Message.reply_to_id == last)
                                                .order_by(Message.id)).scalars()]


@pytest.mark.parametrize(("fixture", "answer", "kind"), [
    ("voice.json", "Terima kasih, pesan suara Anda sudah kami terima dan simpan.", "voice"),
    ("video.json", "Terima kasih, video Anda sudah kami terima dan simpan.", "video"),
    ("document.json", "Terima kasih, dokumen Anda sudah kami terima dan simpan.", "document"),
    ("sticker.json", "😊 Ada yang bisa kami bantu? Silakan tulis pesan Anda.", "sticker"),
    ("photo_without_file_unique_id.json", "Terima kasih, foto Anda sudah kami terima dan simpan.", "image"),
])
def test_telegram_media_is_stored_and_acknowledged(client, sapa, fixture, answer, kind):
    status, _ = telegram(client, fixture, caption=None) if fixture != "sticker.json" else telegram(client, fixture)
    assert status == 200
    row = last_in(sapa)
    assert row.media and row.media[0]["kind"] == kind and row.intent is None
    assert replies_to_last(sapa)[0].startswith(answer)


def test_a_location_and_contacts_are_kept_readable(client, sapa):
    assert telegram(client, "location.json")[0] == 200
    location = last_in(sapa).meta["location"]
    assert isinstance(location["latitude"], float) and isinstance(location["longitude"], float)
    assert replies_to_last(sapa)[0].startswith("Terima kasih, lokasi")
    assert telegram(client, "other_contact.json")[0] == 200
    contact = last_in(sapa).meta["contact"]
    assert contact["own"] is False and contact["phone"]
    assert replies_to_last(sapa)[0].startswith(f"Terima kasih, kontak {contact['name']} sudah kami terima")
    assert telegram(client, "own_contact.json")[0] == 200
    assert replies_to_last(sapa)[0] == (
        "Terima kasih, nomor Anda sudah kami simpan sehingga kami mengenali Anda di saluran lain juga.")


@pytest.mark.parametrize("fixture", ["forward_origin_user.json", "forward_old_api_user.json",
                                     "forward_old_api_sender_name.json", "forward_origin_hidden_user.json"])
@pytest.mark.parametrize("text", ["STOP", "hapus data saya", "saya mau komplain barang rusak"])
def test_a_forwarded_text_is_never_the_customers_request(client, sapa, fixture, text):
    status, _ = telegram(client, fixture, text=text)
    assert status == 200
    row = last_in(sapa)
    assert row.intent is None and "forwarded_from" in row.meta
    [answer, *rest] = replies_to_last(sapa)
    assert answer.startswith("Kami menerima pesan yang Anda teruskan")
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.execute(select(func.count()).select_from(Consent)).scalar_one() == 0
        assert session.execute(select(func.count()).select_from(Ticket)).scalar_one() == 0
        assert session.execute(select(Conversation.pending_question)).scalar_one() in (None, "ask_name")


def test_attachments_never_count_toward_the_two_miss_handoff(client, fakes, sapa, clock):
    budi = ProviderCustomer(client, fakes, "telegram", "111222333")
    budi.write("halo")
    budi.write("Siti")
    for fixture in ("sticker.json", "voice.json", "document.json", "sticker.json"):
        assert telegram(client, fixture)[0] == 200
    budi.write("asdf qwer zxcv")  # one real miss
    drain(sapa, clock)
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.execute(select(Conversation.status)).scalar_one() == "bot"
    assert budi.texts()[-1].startswith("Mohon maaf, kami belum memahami pesan Anda")


def test_an_english_customer_is_answered_in_english(client, sapa):
    status, _ = telegram(client, "voice.json", **{"from": {"id": 111222333, "is_bot": False, "first_name": "Sarah",
                                                           "language_code": "en"}})
    assert status == 200
    assert replies_to_last(sapa)[0].startswith("Thank you, we have received and saved your voice note.")


@pytest.mark.parametrize(("fixture", "answer"), [
    ("inbound_mms_no_body.json", "Terima kasih, foto Anda sudah kami terima dan simpan."),
    ("inbound_whatsapp_voice.json", "Terima kasih, pesan suara Anda sudah kami terima dan simpan."),
    ("inbound_whatsapp_location.json", "Terima kasih, lokasi"),
    ("inbound_whatsapp_forwarded.json", "Kami menerima pesan yang Anda teruskan"),
    ("inbound_whatsapp_sticker.json", "😊 Ada yang bisa kami bantu?"),
])
def test_twilio_attachments_are_stored_and_acknowledged(client, sapa, fixture, answer):
    status, _ = twilio(client, fixture)
    assert status == 200
    assert replies_to_last(sapa)[0].startswith(answer)
    assert last_in(sapa).intent is None


@pytest.mark.parametrize("fixture", ["dice.json", "poll_message.json"])
def test_a_kind_of_message_sapa_cannot_read_is_answered_not_dropped(client, sapa, fixture):
    update = json.loads((FIXTURES / "telegram" / fixture).read_text())
    response = client.post("/webhooks/telegram", content=json.dumps(update), headers={
        "content-type": "application/json", "x-telegram-bot-api-secret-token": TELEGRAM_SECRET})
    assert response.status_code == 200
    assert last_in(sapa).meta["unsupported"] in ("dice", "poll")
    assert replies_to_last(sapa)[0] == (
        "Maaf, jenis pesan ini belum bisa kami proses. Silakan tulis pesan Anda, kami siap membantu.")
