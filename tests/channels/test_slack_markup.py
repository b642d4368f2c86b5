"""Issue 15, item 4: no customer can ping, mention or phish the agents through Slack markup.

A hostile customer (name and words full of `<!channel>`, `<@U…>`, `<https://…|…>`) walks through every kind of
Slack post Sapa makes; then every request the fake Slack received and every slash-command answer is inspected:
in each `text` and each text object inside `blocks`, the customer's markup arrives escaped (once), while the
mentions Sapa adds itself (an account manager on a VIP card, supervisors on an escalation) still ping.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import Sapa
from handlers import nps
from store.models import ChannelIdentity, Customer
from tests.support.providers import ProviderCustomer
from tests.support.slack import Slack, conversation_of, desk_sapa, desk_settings
from tests.support.webchat import WebchatUser

HOSTILE_NAME = "<!channel> <@U0BOSS> <https://phish.example|Login>"
HOSTILE = "<!here> <!subteam^S123> <@U0RINA> <https://phish.example|Klik> &lt;"
# Markup a customer must never get through. Sapa's own `<!date^…>` tokens are allowed, and so is its own mention
# of Rina as a request's owner ("<@U0RINA> (Rina)"); the management (U0BOSS) is never escalated to here.
FORBIDDEN = re.compile(r"<!(?!date\^)|<@U0BOSS>|<@U0RINA>(?! \(Rina\))|<https://phish\.example")


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database) -> Iterator[Sapa]:
    settings = desk_settings(db_url, fakes)
    surveys = settings.surveys
    settings = settings.model_copy(update={"surveys": surveys.model_copy(
        update={"nps": surveys.nps.model_copy(update={"sample_percent": 100})})})
    yield from desk_sapa(settings, clock, interpreter, database)


def texts_of(value: Any) -> Iterator[str]:
    """Every `text` string in a Slack request or a Block Kit structure, however deep."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "text" and isinstance(item, str):
                yield item
            else:
                yield from texts_of(item)
    elif isinstance(value, list):
        for item in value:
            yield from texts_of(item)


def request_texts(params: dict[str, Any]) -> list[str]:
    blocks = params.get("blocks")
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    return [str(params.get("text") or ""), *texts_of(blocks or [])]


KINDS = [  # (kind, how a post of that kind is recognised by its fallback text)
    ("handoff card", r"^(🔁 )?[^⭐🚨📉].* needs an agent \(webchat\)$"),
    ("vip handoff card", r"^⭐ VIP .* needs an agent"),
    ("relay", r"^💬 \*"),
    ("relay with a file", r"^💬 .*\n📎 <https://sapa\.example\.test/media/"),
    ("relay with a place", r"📍 "),
    ("relay with a contact", r"👤 Contact: "),
    ("relay of a forward", r"↪️ Forwarded from "),
    ("claimed note", r"^✋ Claimed by "),
    ("escalated note", r"^🚨 Escalated to "),
    ("back to bot note", r"^🤖 Handed back to the bot by "),
    ("resolved note", r"^✅ Resolved by "),
    ("card update", r"^\S.*: (with_agent|bot|closed|waiting)$"),
    ("escalation card", r"^🚨 Escalation level "),
    ("sla reminder", r"^⏰ TKT-"),
    ("request card", r"^📋 \*Request "),
    ("request reminder", r"^⏰ Request "),
    ("request taken", r"^✋ TKT-"),
    ("request done", r"^✅ TKT-"),
    ("low csat alert", r"^📉 Low CSAT "),
    ("vip alert", r"^⭐ VIP .* is writing on "),
    ("nps detractor alert", r"^📉 VIP detractor: "),
    ("nps reason", r"'s reason for NPS "),
    ("data export note", r"^🔐 \*Data export "),
    ("bot answered while waiting", r"^🤖 Sapa answered the customer itself"),
]


def kinds_of(text: str) -> set[str]:
    return {kind for kind, pattern in KINDS if re.search(pattern, text, re.S)}


class Walk:
    """What the hostile customer made Sapa post, inspected in one place."""

    def __init__(self, slack: Slack) -> None:
        self.slack, self.commands, self.kinds = slack, {}, set()  # type: ignore[var-annotated]

    def command(self, user: str, text: str) -> dict[str, Any]:
        answer = self.slack.command(user, text)
        self.commands[text] = answer
        return answer

    def check(self) -> list[str]:
        """Every text Slack received is free of customer markup; returns every text, for Sapa's own mentions."""
        seen: list[str] = []
        # Posts, ephemeral notes and card updates (fakes.sent counts only posts), failed attempts too.
        posted = [r for r in self.slack.fakes.requests("slack") if r.method.startswith("chat.")]
        assert len(posted) >= len(self.slack.fakes.sent("slack")) > 0
        for request in posted:
            texts = request_texts(request.params)
            self.kinds |= kinds_of(texts[0])
            if request.method == "chat.postEphemeral":
                self.kinds.add("ephemeral note")
            seen += texts
        for verb, answer in self.commands.items():
            self.kinds.add(f"/sapa {verb.split()[0]}")
            seen += [str(answer.get("text") or ""), *texts_of(answer.get("blocks") or [])]
        for text in seen:
            assert not FORBIDDEN.search(text), text
            assert "&amp;amp;" not in text and "&amp;lt;!" not in text, text  # escaped once, not twice
        return seen


def hostile(sapa: Sapa, address_channel: str | None = None) -> None:
    """Every customer (and their channel display names) gets the hostile name."""
    with sapa.database.unit_of_work() as session:
        for customer in session.execute(select(Customer)).scalars():
            customer.name = HOSTILE_NAME
        for identity in session.execute(select(ChannelIdentity)).scalars():
            identity.display_name = HOSTILE_NAME


def test_a_regular_customers_markup_reaches_slack_escaped_everywhere(customer: WebchatUser, slack, sapa, clock):
    walk = Walk(slack)
    customer.say("halo")
    customer.say("Budi")
    hostile(sapa)
    opened = clock.now()
    customer.say(f"tolong kirim ulang invoice {HOSTILE} ya")  # a request: its card in the operations channel
    slack.settle()
    walk.command("U0RINA", "ticket TKT-000001 take")
    clock.set(opened + timedelta(hours=4))
    slack.settle()  # the request reminder
    walk.command("U0RINA", f"ticket TKT-000001 done sent {HOSTILE}")

    customer.say(f"barang saya rusak {HOSTILE}, saya mau komplain")  # a complaint: the handoff card
    slack.settle()
    conversation = conversation_of(sapa)
    assert conversation.desk_ts
    customer.say(f"halo? {HOSTILE}")  # relayed into the thread
    customer.say("saya mau minta salinan data saya")  # the bot answers while waiting: noted in the thread
    customer.press("Ya")  # the data export note
    slack.settle()
    for verb in ("customer Budi", f"customer #{conversation.customer_id}", "queue", "ticket TKT-000002",
                 "duplicates", "help"):
        walk.command("U0RINA", verb)
    ts = conversation.desk_ts
    for user, action in (("U0RINA", "claim"), ("U0SUPER", "claim"), ("U0RINA", "escalate"),
                         ("U0RINA", "back_to_bot")):
        assert slack.press(user, action, conversation.id, ts) == 200
        slack.settle()
    customer.say(f"saya mau bicara dengan petugas {HOSTILE}")  # handed off again
    slack.settle()
    assert slack.reply("U0RINA", ts, "Sudah kami ganti, Pak.") == 200
    assert slack.press("U0RINA", "resolve", conversation.id, ts) == 200
    slack.settle()
    clock.advance(timedelta(minutes=sapa.settings.surveys.csat_delay_minutes + 1))
    slack.settle()
    customer.say(f"1 kecewa {HOSTILE}")  # the low CSAT alert
    slack.settle()

    seen = walk.check()
    assert any("<@U0SUPER>" in text for text in seen)  # Sapa's own mention on the escalation card
    assert any("&lt;!channel&gt; &lt;@U0BOSS&gt;" in text for text in seen)  # the name: shown, escaped
    assert any("&amp;lt;" in text for text in seen)  # a customer's "&lt;" shown as typed
    expected = {"handoff card", "relay", "claimed note", "escalated note", "back to bot note", "resolved note",
                "card update", "escalation card", "request card", "request reminder", "request taken",
                "request done", "low csat alert", "data export note", "bot answered while waiting",
                "ephemeral note", "/sapa customer", "/sapa queue", "/sapa ticket", "/sapa duplicates"}
    assert expected <= walk.kinds, expected - walk.kinds


def test_a_vip_customers_markup_reaches_slack_escaped_and_sapas_mentions_still_ping(customer, slack, sapa, clock):
    walk = Walk(slack)
    customer.say("halo")
    customer.say("Budi")
    with sapa.database.unit_of_work(read_only=True) as session:
        customer_id = session.execute(select(Customer.id)).scalar_one()
    assert "is now a VIP" in walk.command("U0AMGR", f"vip add #{customer_id} key account")["text"]
    hostile(sapa)
    opened = clock.now()
    customer.say(f"pesanan saya datang rusak parah {HOSTILE}, saya sangat kecewa")  # the VIP card
    slack.settle()
    clock.set(opened + timedelta(minutes=23))
    slack.settle()  # the SLA reminder in the card's thread
    clock.set(opened + timedelta(minutes=31))
    slack.settle()  # the SLA escalation to the supervisors
    conversation = conversation_of(sapa)
    assert slack.press("U0RINA", "resolve", conversation.id, conversation.desk_ts) == 200
    slack.settle()
    clock.advance(timedelta(days=2))  # a new conversation: the account manager hears of it
    customer.say(f"halo {HOSTILE}")
    slack.settle()
    sapa.scheduler.schedule_periodic(nps.ROUND)
    slack.settle()
    customer.say("tiga")  # a VIP detractor
    customer.say(f"teknisinya telat {HOSTILE}")
    slack.settle()

    seen = walk.check()
    assert any("<@U0AMGR>" in text for text in seen)  # the account manager is still mentioned
    assert any("<@U0SUPER>" in text for text in seen)  # and the supervisors on the escalation
    expected = {"vip handoff card", "sla reminder", "escalation card", "vip alert", "nps detractor alert",
                "nps reason", "/sapa vip"}
    assert expected <= walk.kinds, expected - walk.kinds


def send_raw(person: ProviderCustomer, fields: dict[str, Any]) -> int:
    path, body, headers = person.request("", extra=fields)
    update = json.loads(body)
    del update["message"]["text"]
    return person.client.post(path, content=json.dumps(update).encode(), headers=headers).status_code


def test_files_places_contacts_and_forwards_reach_slack_escaped(client, slack, sapa, fakes):
    walk = Walk(slack)
    person = ProviderCustomer(client, fakes, "telegram", "700040", name=HOSTILE_NAME)
    person.write(f"saya mau bicara dengan petugas {HOSTILE}")
    slack.settle()
    hostile(sapa)
    file_id = fakes.add_telegram_file(b"%PDF", file_path="documents/file_1.pdf", content_type="application/pdf")
    assert send_raw(person, {"document": {"file_id": file_id, "file_unique_id": "AgADx", "file_name": HOSTILE,
                                          "mime_type": "application/pdf"}, "caption": HOSTILE}) == 200
    point = {"latitude": -6.2, "longitude": 106.8}
    assert send_raw(person, {"location": point, "venue": {"location": point, "title": HOSTILE,
                                                          "address": HOSTILE_NAME}}) == 200
    assert send_raw(person, {"contact": {"phone_number": "+6281311112222", "first_name": HOSTILE,
                                         "last_name": HOSTILE_NAME, "user_id": 99}}) == 200
    assert person.write(HOSTILE, extra={"forward_origin": {
        "type": "hidden_user", "sender_user_name": HOSTILE_NAME, "date": 1700000000}}) == 200
    slack.settle()
    conversation = conversation_of(sapa)
    assert slack.press("U0RINA", "claim", conversation.id, conversation.desk_ts) == 200  # the card shows them all
    slack.settle()

    walk.check()
    expected = {"relay with a file", "relay with a place", "relay with a contact", "relay of a forward",
                "card update"}
    assert expected <= walk.kinds, expected - walk.kinds


def test_the_walk_covers_every_kind_of_post():
    """The kinds recognised above: a kind removed from the walk must be removed here on purpose."""
    assert len(KINDS) >= 24
