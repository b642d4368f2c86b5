"""Issue 15, "every relay delivered exactly once": seeded provider faults on Telegram, Twilio and Slack at once,
while customers on SMS, WhatsApp, Telegram and web chat write, some ask for a person or complain (a handoff: a
card in Slack), keep writing while they wait (relays to the card's thread), and agents answer in the threads.

20% of every provider's message sends fail (seed 15) as 500, 429, a held answer, taken-then-500 or
taken-then-dropped. Counted at the fakes:

- every reply to an SMS or WhatsApp customer (the bot's and the agents') arrives exactly once, with its sid recorded;
- every web chat reply is stored once (`sent`);
- every Telegram reply arrives at most once; the ones whose fate Telegram cannot tell are `unconfirmed` (counted);
- every card and relay is posted to Slack exactly once (counted by the outbox id in the post's metadata), each
  relay in its card's thread, and each conversation's `desk_ts` is its card's one post.

SAPA_FAULT_MESSAGES inbound messages (default 100; `make soak` runs 1,000). Driven in-process on a manual clock, like
tests/bot/test_outbox_exactly_once.py; the counts are printed and written to var/adversarial/faults-<db>.json.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import channels.telegram
from bot.app import Sapa
from bot.devtools.fake_providers import FAULT_KINDS, FakeProviders, Faults
from channels.slack import SlackDesk
from channels.twilio import TwilioChannel
from store.models import Conversation, Message, OutboxItem
from tests.support.providers import TWILIO_TOKEN, ProviderCustomer, settle_outbox
from tests.support.slack import Slack, desk_sapa, desk_settings
from tests.support.webchat import WebchatUser

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = int(os.environ.get("SAPA_FAULT_MESSAGES", "100"))
CUSTOMERS = 24  # six per channel
SETTLE_EVERY = 6  # inbound messages between two runs of the queue
CLIENT_TIMEOUT_S = 0.3  # Sapa's provider clients, shortened so a held answer costs the test little
HOLD_S = 0.6  # how long the fakes hold a "timeout" answer: longer than the clients wait
CHANNELS = ("sms", "whatsapp", "telegram", "webchat")
SMALL_TALK = ("halo", "Budi", "jam buka toko berapa?", "berapa ongkir ke Bandung?", "oke", "terima kasih",
              "pesanan saya kapan sampai?", "apa ada promo minggu ini?")
ASKS = ("saya mau bicara dengan petugas", "saya mau komplain, barang yang saya terima rusak dan saya kecewa sekali")


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProviders]:
    monkeypatch.delenv("TWILIO_REGION", raising=False)
    monkeypatch.delenv("TWILIO_EDGE", raising=False)
    # Outbound Telegram ids far above the inbound ones the customers use.
    with FakeProviders(twilio_auth_token=TWILIO_TOKEN, first_message_id=10_000_000) as fakes:
        yield fakes


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sapa]:
    for sapa in desk_sapa(desk_settings(db_url, fakes), clock, interpreter, database):
        monkeypatch.setattr(channels.telegram, "CALL_TIMEOUT_S", CLIENT_TIMEOUT_S)
        for channel in sapa.dispatcher.channels.values():
            if isinstance(channel, TwilioChannel):
                channel.client.http_client.timeout = CLIENT_TIMEOUT_S
            elif isinstance(channel, SlackDesk):
                channel.client.timeout = CLIENT_TIMEOUT_S  # type: ignore[assignment]
        yield sapa


def drain(sapa: Sapa, passes: int = 2000) -> None:
    settle_outbox(sapa, passes, tasks=True)


class Customers:
    """CUSTOMERS people, a quarter on each channel; every third asks for a person, every fifth complains."""

    def __init__(self, client: Any, fakes: FakeProviders, sapa: Sapa) -> None:
        self.people: list[tuple[str, Any]] = []
        for n in range(CUSTOMERS):
            channel = CHANNELS[n % len(CHANNELS)]
            if channel == "webchat":
                self.people.append((channel, WebchatUser(client, sapa)))
                continue
            address = {"sms": f"+62812340{n:05d}", "whatsapp": f"+62812350{n:05d}", "telegram": f"70{n:05d}"}[channel]
            self.people.append((channel, ProviderCustomer(client, fakes, channel, address)))
        self.said = [0] * CUSTOMERS

    def write(self, n: int) -> str:
        index = n % CUSTOMERS
        channel, person = self.people[index]
        turn = self.said[index]
        self.said[index] += 1
        asks = index % 3 == 0 or index % 5 == 0
        if asks and turn == 2:
            text = ASKS[0] if index % 3 == 0 else ASKS[1]
        else:
            text = SMALL_TALK[(turn + index) % len(SMALL_TALK)]
        if channel == "webchat":
            person.send(text)
        else:
            assert person.write(text) == 200
        return channel


def agents_answer(sapa: Sapa, slack: Slack, answered: Counter[int], round_: int) -> int:
    """Every conversation with a card gets an agent's reply in its thread, one a round at most."""
    with sapa.database.unit_of_work(read_only=True) as session:
        threads = [(c.id, c.desk_ts) for c in session.execute(
            select(Conversation).where(Conversation.desk_ts.is_not(None), Conversation.status != "closed")).scalars()]
    for conversation_id, desk_ts in threads:
        if answered[conversation_id] <= round_ // 2:
            answered[conversation_id] += 1
            assert slack.reply("U0RINA", str(desk_ts), f"Agen: jawaban {answered[conversation_id]} "
                                                       f"untuk #{conversation_id}") == 200
    return len(threads)


def test_seeded_faults_with_handoffs_every_relay_and_reply_exactly_once(sapa, fakes, client, db_url):
    started = time.monotonic()
    slack = Slack(client, fakes, sapa, sapa.clock)
    people = Customers(client, fakes, sapa)
    fakes.set_faults(Faults(fraction=0.2, seed=15, kinds=FAULT_KINDS, hold_s=HOLD_S))
    answered: Counter[int] = Counter()
    inbound: Counter[str] = Counter()
    for n in range(MESSAGES):
        inbound[people.write(n)] += 1
        if (n + 1) % SETTLE_EVERY == 0:
            drain(sapa)
            agents_answer(sapa, slack, answered, n // SETTLE_EVERY)
    drain(sapa)
    agents_answer(sapa, slack, answered, MESSAGES)
    drain(sapa)
    fakes.set_faults(None)
    elapsed = time.monotonic() - started

    with sapa.database.unit_of_work(read_only=True) as session:
        rows = list(session.execute(select(OutboxItem)).scalars())
        senders = {m.id: m.sender for m in session.execute(select(Message)).scalars()}
        cards_of = {c.id: (c.desk_ts, c.desk_channel) for c in session.execute(select(Conversation)).scalars()}
    statuses = Counter((r.channel, r.status) for r in rows)
    faults = Counter(f"{r.provider}:{r.fault}" for r in fakes.requests() if r.fault)
    assert len({kind.split(":")[1] for kind in faults}) == len(FAULT_KINDS), faults  # every kind happened
    assert {kind.split(":")[0] for kind in faults} == {"telegram", "twilio", "slack"}, faults

    # SMS and WhatsApp: each message Twilio took is the recorded message of exactly one row, and every row is sent.
    twilio_rows = [r for r in rows if r.channel in ("sms", "whatsapp")]
    assert all(r.status == "sent" for r in twilio_rows), [(r.id, r.status, r.last_error) for r in twilio_rows
                                                          if r.status != "sent"]
    sids = [r.provider_message_id for r in twilio_rows]
    assert len(set(sids)) == len(sids) and set(sids) == set(fakes.twilio_messages())

    # Web chat: stored, so sent once each.
    webchat_rows = [r for r in rows if r.channel == "webchat"]
    assert webchat_rows and all(r.status == "sent" for r in webchat_rows)

    # Telegram: at most once; what cannot be told is unconfirmed, never resent.
    telegram_rows = [r for r in rows if r.channel == "telegram"]
    assert {r.status for r in telegram_rows} <= {"sent", "unconfirmed"}
    rows_by_text: dict[tuple[str, str], Counter[str]] = {}
    for r in telegram_rows:
        rows_by_text.setdefault((r.recipient, str(r.payload.get("text", ""))), Counter())[r.status] += 1
    took = Counter((str(q.params.get("chat_id")), str(q.params.get("text", q.params.get("caption", ""))))
                   for q in fakes.sent("telegram"))
    unconfirmed_arrived = 0
    for key, count in rows_by_text.items():
        assert count["sent"] <= took[key] <= count["sent"] + count["unconfirmed"], (key, count, took[key])
        unconfirmed_arrived += took[key] - count["sent"]
    assert sum(took.values()) == sum(took[key] for key in rows_by_text)  # nothing Sapa did not queue

    # Slack: every card and relay posted exactly once, in the right thread; each card opened its conversation.
    posts = Counter(int(q.params["metadata"]["event_payload"]["outbox_id"]) for q in fakes.sent("slack")
                    if q.method == "chat.postMessage")
    assert all(q.params.get("metadata") for q in fakes.sent("slack") if q.method == "chat.postMessage")
    kept = {int(m["metadata"]["event_payload"]["outbox_id"]): m for channel in ("C0QUEUE", "C0VIP", "C0ESC", "C0OPS")
            for m in fakes.slack_messages(channel)}
    desk_rows = [r for r in rows if r.channel == "slack"]
    posted_rows = [r for r in desk_rows if not {"update_card_of", "ephemeral_user"} & set(r.payload.get("options", {}))]
    assert all(r.status == "sent" for r in desk_rows), [(r.id, r.status, r.last_error) for r in desk_rows
                                                        if r.status != "sent"]
    assert {r.id: posts[r.id] for r in posted_rows} == {r.id: 1 for r in posted_rows}
    assert set(posts) == {r.id for r in posted_rows}
    cards = [r for r in posted_rows if r.payload.get("desk_card_for") is not None]
    relays = [r for r in posted_rows if "thread_of" in r.payload.get("options", {})]
    for r in posted_rows:
        assert r.provider_message_id == kept[r.id]["ts"]
    for card in cards:
        assert cards_of[card.payload["desk_card_for"]] == (card.provider_message_id, card.recipient)
    for relay in relays:
        assert kept[relay.id]["thread_ts"] == cards_of[relay.payload["options"]["thread_of"]][0]
    assert cards and relays and sum(answered.values()) > 0

    agent_rows = [r for r in rows if r.message_id is not None and senders.get(r.message_id) == "agent"]
    counts: dict[str, Any] = {
        "db": "sqlite" if db_url.startswith("sqlite") else "postgres", "inbound_messages": MESSAGES,
        "inbound_by_channel": dict(inbound),
        "seconds": round(elapsed, 1), "faults": dict(sorted(faults.items())),
        "outbox": {f"{channel}:{status}": n for (channel, status), n in sorted(statuses.items())},
        "twilio_replies_exactly_once": len(twilio_rows), "webchat_replies": len(webchat_rows),
        "telegram_replies": len(telegram_rows),
        "telegram_unconfirmed": sum(r.status == "unconfirmed" for r in telegram_rows),
        "telegram_unconfirmed_that_arrived": unconfirmed_arrived,
        "slack_cards_exactly_once": len(cards), "slack_relays_exactly_once": len(relays),
        "slack_other_posts_exactly_once": len(posted_rows) - len(cards) - len(relays),
        "slack_updates_and_ephemeral": len(desk_rows) - len(posted_rows),
        "slack_lookups": dict(Counter(q.method for q in fakes.requests("slack") if q.method.startswith("conv"))),
        "twilio_lookups": len(fakes.requests("twilio", "Messages.list")),
        "agent_replies_in_slack": sum(answered.values()),
        "agent_replies_to_customers": dict(Counter(f"{r.channel}:{r.status}" for r in agent_rows)),
    }
    out = ROOT / "var" / "adversarial" / f"faults-{counts['db']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(counts, indent=2, sort_keys=True) + "\n")
    print(f"\n{json.dumps(counts, sort_keys=True)}")
