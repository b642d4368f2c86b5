"""Handoff rules besides an explicit request (issue 6): an upset VIP goes to a human, a regular customer does not.

Driven through the web chat API and the Slack desk (signed requests in, the fake Slack Web API out).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.app import Sapa, create_app
from store.models import Conversation, Customer, Message
from tests.support.slack import Slack, conversation_of, desk_sapa, desk_settings
from tests.support.webchat import WebchatUser

UPSET = ("Mohon maaf atas pengalaman yang kurang menyenangkan ini, Budi. Pesan Anda sudah kami teruskan kepada "
         "petugas kami, yang akan segera membalas di sini.")
NO_TICKETS = ("Saat ini tidak ada tiket yang masih terbuka atas nama Anda, Budi. Untuk status pesanan, petugas kami "
              "bisa membantu memeriksanya.")
ANGRY_STATUS_QUESTION = "cek status pesanan saya dong, kesel bgt udah seminggu"


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database) -> Iterator[Sapa]:
    yield from desk_sapa(desk_settings(db_url, fakes), clock, interpreter, database)


def known_as_budi(customer: WebchatUser) -> None:
    customer.say("halo")
    customer.say("Budi")


def made_vip(customer: WebchatUser, slack: Slack, sapa: Sapa) -> None:
    known_as_budi(customer)
    with sapa.database.unit_of_work(read_only=True) as session:
        budi = session.execute(select(Customer)).scalar_one()
    assert "VIP" in slack.command("U0AMGR", f"vip add #{budi.id} key account")["text"]
    slack.settle()


def handoff_cards(slack: Slack) -> list[dict[str, Any]]:
    """Top-level handoff cards (not thread notes, not VIP status announcements)."""
    return [p for p in slack.posts() if p.get("blocks") and not p.get("thread_ts")
            and "needs an agent" in p.get("text", "")]


def test_vip_2_3_an_angry_vip_is_handed_to_a_human(customer, slack, sapa):
    """VIP-2.3 / VIP-4.1: an angry status question is answered, then handed to a human on the VIP channel."""
    made_vip(customer, slack, sapa)
    replies = customer.say(ANGRY_STATUS_QUESTION)
    assert replies == [NO_TICKETS, UPSET]  # the answer first, then the handoff note
    slack.settle()
    cards = handoff_cards(slack)
    assert [c["channel"] for c in cards] == ["C0VIP"]
    blocks = json.dumps(cards[0]["blocks"], ensure_ascii=False)
    assert "*Reason*\\nVIP upset" in blocks
    assert ANGRY_STATUS_QUESTION in blocks  # the card shows what they wrote
    assert "<@U0AMGR>" in blocks  # their account manager is called in
    conversation = conversation_of(sapa)
    assert conversation.status == "waiting"
    assert conversation.pending_data == {"handoff_reason": "VIP upset"}
    # The bot stays quiet now: the next message goes to the card's thread.
    assert customer.say("halo??") == []
    slack.settle()
    assert any("halo??" in text for text in slack.thread(conversation.desk_ts))


def test_vip_2_3_the_tone_is_kept_with_the_message(customer, slack, sapa):
    """CRM-2.2: the message log keeps how the message read (score, label, angry), for agents and reports."""
    made_vip(customer, slack, sapa)
    customer.say(ANGRY_STATUS_QUESTION)
    with sapa.database.unit_of_work(read_only=True) as session:
        row = session.execute(select(Message).where(Message.text == ANGRY_STATUS_QUESTION)).scalar_one()
        calm = session.execute(select(Message).where(Message.text == "Budi")).scalar_one()
    assert row.meta["sentiment"]["label"] == "negative" and row.meta["sentiment"]["angry"] is True
    assert row.meta["sentiment"]["score"] < -0.5 and "kesel" in row.meta["sentiment"]["cues"]
    assert calm.meta["sentiment"] == {"score": 0.0, "label": "neutral", "angry": False, "cues": []}


def test_vip_2_3_a_regular_angry_customer_is_not_handed_off_for_tone(customer, slack, sapa):
    """Regular customers are answered as usual; tone alone hands off only the tiers in handoff.upset_tiers."""
    known_as_budi(customer)
    assert customer.say(ANGRY_STATUS_QUESTION) == [NO_TICKETS]
    slack.settle()
    assert handoff_cards(slack) == []
    assert conversation_of(sapa).status == "bot"


def test_vip_2_3_a_calm_vip_is_not_handed_off(customer, slack, sapa):
    made_vip(customer, slack, sapa)
    assert customer.say("cek status pesanan saya dong") == [NO_TICKETS]
    slack.settle()
    assert handoff_cards(slack) == []
    assert conversation_of(sapa).status == "bot"


def test_vip_4_1_an_angry_vip_complaint_posts_one_card_not_two(customer, slack, sapa):
    """VIP-4.1: a complaint already hands off; being angry about it does not post a second card."""
    made_vip(customer, slack, sapa)
    replies = customer.say("kalian penipu, barang saya rusak, kesel banget!!")
    assert len(replies) == 1 and replies[0].startswith("Mohon maaf atas ketidaknyamanan ini, Budi. Keluhan Anda")
    slack.settle()
    cards = handoff_cards(slack)
    assert len(cards) == 1 and cards[0]["channel"] == "C0VIP"
    assert "VIP upset" not in json.dumps(cards[0]["blocks"])
    assert [p for p in slack.posts() if p.get("text", "").startswith("🔁")] == []
    assert conversation_of(sapa).pending_data == {"handoff_reason": "complaint"}


def test_vip_2_3_an_angry_vip_not_understood_gets_the_handoff_instead_of_please_rephrase(customer, slack, sapa):
    """The card's text is the customer's, escaped: "<!channel>" in a message pings nobody."""
    made_vip(customer, slack, sapa)
    replies = customer.say("<!channel> <@U0BOSS> ANJIR KALIAN PENIPU SEMUA!!!")
    assert replies == [UPSET]  # not "Mohon maaf, kami belum memahami pesan Anda" first
    slack.settle()
    cards = handoff_cards(slack)
    assert len(cards) == 1
    blocks = json.dumps(cards[0]["blocks"], ensure_ascii=False)
    assert "&lt;!channel&gt; &lt;@U0BOSS&gt; ANJIR KALIAN PENIPU SEMUA!!!" in blocks
    assert "<!channel>" not in blocks and "<@U0BOSS>" not in blocks
    assert "<!channel>" not in cards[0]["text"]
    assert conversation_of(sapa).misunderstood == 0


def test_vip_2_3_a_conversation_already_with_an_agent_is_not_posted_again(customer, slack, sapa):
    made_vip(customer, slack, sapa)
    customer.say("saya mau bicara dengan petugas")
    slack.settle()
    conversation = conversation_of(sapa)
    assert slack.press("U0RINA", "claim", conversation.id, conversation.desk_ts) == 200
    slack.settle()
    assert customer.say("KENAPA LAMA SEKALI??? KESEL BANGET") == []  # the agent has it: relayed, not re-posted
    slack.settle()
    assert len(handoff_cards(slack)) == 1
    assert [p for p in slack.posts() if p.get("text", "").startswith("🔁")] == []
    assert any("KENAPA LAMA SEKALI???" in text for text in slack.thread(conversation.desk_ts))
    assert conversation_of(sapa).status == "with_agent"


def test_vip_2_3_the_tiers_handed_off_for_tone_are_configurable(db_url, fakes, clock, interpreter, database):
    """handoff.upset_tiers: [vip, regular] hands a regular customer off for tone too."""
    settings = desk_settings(db_url, fakes)
    settings = settings.model_copy(update={"handoff": settings.handoff.model_copy(
        update={"upset_tiers": ("vip", "regular")})})
    for everyone in desk_sapa(settings, clock, interpreter, database):
        with TestClient(create_app(everyone, background=False)) as client:
            customer = WebchatUser(client, everyone)
            known_as_budi(customer)
            assert customer.say(ANGRY_STATUS_QUESTION) == [NO_TICKETS, UPSET]
        with everyone.database.unit_of_work(read_only=True) as session:
            conversation = session.execute(select(Conversation)).scalar_one()
        assert conversation.status == "waiting" and conversation.handed_off_at is not None
