"""Issue 14, point 1 with the Slack desk on: a consent or data request made after the handoff is acted on,
the customer gets the confirmation, and the agent sees both the message and what the bot answered."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from bot.app import Sapa
from store.consents import current
from store.models import Customer
from tests.support.slack import desk_sapa, desk_settings, handed_off


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database) -> Iterator[Sapa]:
    yield from desk_sapa(desk_settings(db_url, fakes), clock, interpreter, database)


def test_stop_after_the_handoff_is_honoured_and_noted_in_the_thread(customer, slack, sapa):
    customer.say("halo")
    customer.say("Setuju", payload="consent:data:yes")
    customer.say("Setuju", payload="consent:marketing:yes")
    conversation, card_ts = handed_off(customer, slack)
    assert slack.press("U0RINA", "claim", conversation.id, card_ts) == 200
    slack.settle()
    assert customer.say("STOP") == [
        "Anda tidak akan lagi menerima pesan promosi dari PT Contoh Sejahtera. Balas START kapan saja untuk "
        "berlangganan kembali."]
    slack.settle()
    with sapa.database.unit_of_work(read_only=True) as session:
        customer_id = session.execute(select(Customer.id)).scalar_one()
        assert current(session, customer_id, "marketing") is False
    thread = slack.thread(card_ts)
    assert any(text.endswith(": STOP") for text in thread), thread  # the customer's message, relayed
    note = next(text for text in thread if text.startswith("🤖 Sapa answered the customer itself"))
    assert "Anda tidak akan lagi menerima pesan promosi" in note
    # A message for the agent gets no bot answer and no note.
    assert customer.say("kak, jadi gimana pesanan saya?") == []
    slack.settle()
    assert sum(text.startswith("🤖") for text in slack.thread(card_ts)) == 1
