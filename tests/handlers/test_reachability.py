"""Issue 14, point 1: a provider's word that a person unsubscribed or cannot be reached updates the customer's
channel and consent exactly as the same refusal at send time does, with the evidence recorded; Telegram's
my_chat_member (blocked / unblocked the bot) marks the channel undeliverable / deliverable."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from bot.app import Sapa
from store.consents import current
from store.models import ChannelIdentity, Consent, Message
from tests.support.providers import TELEGRAM_SECRET, ProviderCustomer, drain, provider_sapa

PHONE = "+6281234567890"


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database) -> Iterator[Sapa]:
    yield from provider_sapa(db_url, fakes, clock, interpreter, database)


def opted_in(client, fakes, sapa, clock, channel: str = "whatsapp") -> ProviderCustomer:
    budi = ProviderCustomer(client, fakes, channel, PHONE)
    budi.write("halo")
    budi.write("1")  # the privacy notice: agree
    budi.write("1")  # marketing: agree
    drain(sapa, clock)
    assert marketing(sapa) is True
    return budi


def marketing(sapa) -> bool | None:
    with sapa.database.unit_of_work(read_only=True) as session:
        identity = session.execute(select(ChannelIdentity)).scalars().first()
        return current(session, identity.customer_id, "marketing")


def identity(sapa, channel: str) -> ChannelIdentity:
    with sapa.database.unit_of_work(read_only=True) as session:
        return session.execute(select(ChannelIdentity).where(ChannelIdentity.channel == channel)).scalar_one()


def last_sid(sapa) -> str:
    with sapa.database.unit_of_work(read_only=True) as session:
        return session.execute(select(Message.provider_message_id).where(Message.direction == "out")
                               .order_by(Message.id.desc())).scalars().first()


def consent_rows(sapa) -> list[tuple[bool, str, str]]:
    with sapa.database.unit_of_work(read_only=True) as session:
        return [(c.granted, c.channel, c.evidence or "") for c in session.execute(
            select(Consent).where(Consent.purpose == "marketing").order_by(Consent.id)).scalars()]


@pytest.mark.parametrize("channel", ["whatsapp", "sms"])
def test_a_21610_status_callback_withdraws_marketing_consent_with_evidence(client, fakes, sapa, clock, channel):
    budi = opted_in(client, fakes, sapa, clock, channel)
    sid = last_sid(sapa)
    assert budi.report(sid, "undelivered", "21610") == 200
    assert marketing(sapa) is False
    granted, via, evidence = consent_rows(sapa)[-1]
    assert (granted, via) == (False, channel) and sid in evidence and "21610" in evidence
    marked = identity(sapa, channel)
    assert marked.undeliverable_reason and "21610" in marked.undeliverable_reason
    # Twilio re-delivers callbacks: the second changes nothing.
    rows, at = len(consent_rows(sapa)), marked.undeliverable_at
    assert budi.report(sid, "undelivered", "21610") == 200
    assert len(consent_rows(sapa)) == rows and identity(sapa, channel).undeliverable_at == at


@pytest.mark.parametrize("code", ["30003", "30005", "30006"])
def test_an_unreachable_handset_marks_the_channel_but_leaves_consent(client, fakes, sapa, clock, code):
    budi = opted_in(client, fakes, sapa, clock, "sms")
    assert budi.report(last_sid(sapa), "undelivered", code) == 200
    assert code in (identity(sapa, "sms").undeliverable_reason or "")
    assert marketing(sapa) is True  # unreachable is not a refusal of promotions
    # Writing again shows the number works: the mark is lifted.
    budi.write("halo lagi")
    assert identity(sapa, "sms").undeliverable_reason is None


def test_outside_the_whatsapp_window_is_not_a_dead_address(client, fakes, sapa, clock):
    budi = opted_in(client, fakes, sapa, clock, "whatsapp")
    assert budi.report(last_sid(sapa), "failed", "63016") == 200
    assert identity(sapa, "whatsapp").undeliverable_reason is None
    assert marketing(sapa) is True


def test_a_21610_refusal_at_send_time_does_the_same(client, fakes, sapa, clock):
    budi = opted_in(client, fakes, sapa, clock, "sms")
    fakes.fail_next("twilio", 400, code=21610, description="Attempt to send to unsubscribed recipient")
    budi.write("jam buka toko kapan?")
    drain(sapa, clock)
    assert marketing(sapa) is False
    granted, via, evidence = consent_rows(sapa)[-1]
    assert (granted, via) == (False, "sms") and evidence.startswith("provider: refused at send: 21610")
    assert "21610" in (identity(sapa, "sms").undeliverable_reason or "")


def my_chat_member(client, chat: int, old: str, new: str, update_id: int) -> int:
    user = {"id": chat, "is_bot": False, "first_name": "Budi", "language_code": "id"}
    bot = {"id": 999, "is_bot": True, "first_name": "Sapa", "username": "sapa_bot"}
    body = json.dumps({"update_id": update_id, "my_chat_member": {
        "chat": {"id": chat, "type": "private", "first_name": "Budi"}, "from": user, "date": int(time.time()),
        "old_chat_member": {"user": bot, "status": old},
        "new_chat_member": {"user": bot, "status": new, **({"until_date": 0} if new == "kicked" else {})}}})
    return client.post("/webhooks/telegram", content=body, headers={
        "content-type": "application/json", "x-telegram-bot-api-secret-token": TELEGRAM_SECRET}).status_code


def test_telegram_blocked_and_unblocked(client, fakes, sapa, clock):
    budi = ProviderCustomer(client, fakes, "telegram", "700777")
    budi.write("halo")
    drain(sapa, clock)
    assert my_chat_member(client, 700777, "member", "kicked", 900001) == 200
    assert "blocked" in (identity(sapa, "telegram").undeliverable_reason or "")
    assert my_chat_member(client, 700777, "member", "kicked", 900001) == 200  # re-delivered: no change
    assert my_chat_member(client, 700777, "kicked", "member", 900002) == 200
    assert identity(sapa, "telegram").undeliverable_reason is None
    # Someone Sapa never met blocking it: nothing to mark, still a 200 so Telegram stops re-sending.
    assert my_chat_member(client, 700888, "member", "kicked", 900003) == 200
