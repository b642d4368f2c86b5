"""Issue 14, point 2: only Sapa's own buttons act, and only while their question is open.

Button data arrives from Telegram callback queries, WhatsApp button replies and the web chat. Data Sapa never
offered this customer (another bot's keyboard, a WhatsApp call-permission reply) is stored, logged and
answered neutrally, and never reaches the NLU as text. A button of a question already answered says the
choice is no longer open and changes nothing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from bot.app import Sapa
from store.models import Consent, Message, Ticket
from tests.support.providers import TELEGRAM_SECRET, ProviderCustomer, drain, provider_sapa

UNKNOWN = "Maaf, tombol itu tidak kami kenali, jadi tidak ada yang kami proses. Silakan tulis pesan Anda di sini."
STALE = ("Pilihan itu sudah tidak berlaku karena pertanyaannya sudah dijawab sebelumnya, jadi tidak ada yang kami "
         "ubah. Silakan tulis pesan bila ada yang ingin diubah.")
CHAT = 700123


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database) -> Iterator[Sapa]:
    yield from provider_sapa(db_url, fakes, clock, interpreter, database)


def callback(client, data: str, *, message_id: int | None = None, query_id: str | None = None) -> int:
    """A Telegram callback query as the Bot API sends it, under a message of ours (or none: inline mode)."""
    user = {"id": CHAT, "is_bot": False, "first_name": "Budi", "language_code": "id"}
    query: dict = {"id": query_id or f"{time.time_ns()}", "from": user, "chat_instance": "-123456789", "data": data}
    if message_id is not None:
        query["message"] = {"message_id": message_id, "date": int(time.time()), "text": "…",
                            "chat": {"id": CHAT, "type": "private", "first_name": "Budi"},
                            "from": {"id": 999, "is_bot": True, "first_name": "Sapa", "username": "sapa_bot"}}
    body = json.dumps({"update_id": time.time_ns() % 10**9, "callback_query": query})
    return client.post("/webhooks/telegram", content=body, headers={
        "content-type": "application/json", "x-telegram-bot-api-secret-token": TELEGRAM_SECRET}).status_code


def last_inbound(sapa) -> Message:
    with sapa.database.unit_of_work(read_only=True) as session:
        return session.execute(select(Message).where(Message.direction == "in").order_by(Message.id.desc())
                               ).scalars().first()


def count(sapa, model, *where) -> int:
    with sapa.database.unit_of_work(read_only=True) as session:
        return session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


@pytest.mark.parametrize("data", ["some_data", "date", "intent:delete_data", "erase:yes", "consent:marketing:no"])
def test_another_bots_callback_data_is_answered_neutrally_and_never_interpreted(client, fakes, sapa, clock, caplog,
                                                                                 data):
    budi = ProviderCustomer(client, fakes, "telegram", str(CHAT))
    assert budi.write("halo") == 200
    drain(sapa, clock)
    consents = count(sapa, Consent)
    with caplog.at_level(logging.INFO):
        assert callback(client, data, message_id=424242) == 200
    drain(sapa, clock)
    assert budi.texts()[-1] == UNKNOWN
    row = last_inbound(sapa)
    assert (row.intent, row.confidence, row.button_payload) == (None, None, None)  # no NLU, not a press
    assert row.meta["button"] == "foreign" and row.meta["button_data"] == data
    assert "foreign button data on telegram ignored" in caplog.text
    assert count(sapa, Consent) == consents and count(sapa, Ticket) == 0
    # Telegram's spinner still stops: the callback query is answered.
    assert fakes.requests("telegram", "answerCallbackQuery")


def test_a_whatsapp_call_permission_reply_opens_no_ticket(client, fakes, sapa, clock):
    budi = ProviderCustomer(client, fakes, "whatsapp", "+6281234567890")
    assert budi.write("halo") == 200
    assert budi.write("Allow calls", extra={"ButtonPayload": "VOICE_CALL_REQUEST", "ButtonText": "Allow calls",
                                            "MessageType": "interactive"}) == 200
    drain(sapa, clock)
    assert budi.texts()[-1] == UNKNOWN
    assert count(sapa, Ticket) == 0
    assert last_inbound(sapa).meta["button_data"] == "VOICE_CALL_REQUEST"


def test_an_old_telegram_keyboard_cannot_reverse_a_consent(client, fakes, sapa, clock):
    budi = ProviderCustomer(client, fakes, "telegram", str(CHAT))
    budi.write("halo")
    drain(sapa, clock)
    notice = next(r for r in budi.received() if "reply_markup" in r.params and "consent:data" in
                  json.dumps(r.params["reply_markup"]))
    with sapa.database.unit_of_work(read_only=True) as session:
        notice_id = session.execute(select(Message.provider_message_id).where(
            Message.direction == "out", Message.text.like("Sebelum lanjut%"))).scalar_one()
    message_id = int(notice_id.split(":")[1])
    assert notice is not None
    assert callback(client, "consent:data:yes", message_id=message_id) == 200
    drain(sapa, clock)
    assert budi.texts()[-2] == "Terima kasih, persetujuan Anda sudah kami catat."
    assert callback(client, "consent:data:no", message_id=message_id) == 200
    drain(sapa, clock)
    assert budi.texts()[-1] == STALE
    with sapa.database.unit_of_work(read_only=True) as session:
        assert [(c.purpose, c.granted) for c in session.execute(select(Consent)).scalars()] == [
            ("data_processing", True)]


def test_a_redelivered_press_is_answered_once(client, fakes, sapa, clock):
    budi = ProviderCustomer(client, fakes, "telegram", str(CHAT))
    budi.write("halo")
    drain(sapa, clock)
    for _ in range(2):
        assert callback(client, "consent:data:yes", query_id="q-same") == 200
    drain(sapa, clock)
    assert budi.texts().count("Terima kasih, persetujuan Anda sudah kami catat.") == 1
    assert count(sapa, Consent) == 1
