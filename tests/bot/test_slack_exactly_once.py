"""Issue 15: every Slack desk post (handoff card, relay of a customer's message, note) is posted exactly once.

Each post carries its outbox row id as Slack message metadata. A post that ends where Slack may have taken it (5xx,
a held answer, a dropped connection) is not posted again blindly: the next attempt looks for it
(`SlackDesk.find_sent`: conversations.replies for a thread post, conversations.history for a card) and records the
ts it finds, through the same code that records an ordinary success, so a card in doubt still opens the
conversation's thread (`desk_ts`) for the relays waiting behind it. Counted at the fake Slack by metadata.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from bot.app import Sapa
from bot.devtools.fake_providers import FakeProviders, Faults
from bot.outbox import to_outbound
from channels.base import MaybeSent, RetryLater
from channels.slack import SlackDesk
from store.conversations import continue_or_open
from store.customers import get_or_create_identity
from store.messages import add_desk_post
from store.models import Conversation, OutboxItem
from tests.support.providers import settle_outbox
from tests.support.slack import desk_sapa, desk_settings

CLIENT_TIMEOUT_S = 0.3  # the desk's Slack client, shortened so a held answer costs a test little
HOLD_S = 0.6  # how long the fake holds a "timeout" answer: longer than the client waits
QUEUE = "C0QUEUE"
UNCLEAR = ("500", "timeout", "accept_then_500", "accept_then_drop")


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database) -> Iterator[Sapa]:
    for sapa in desk_sapa(desk_settings(db_url, fakes), clock, interpreter, database):
        desk = sapa.dispatcher.channels["slack"]
        assert isinstance(desk, SlackDesk)
        desk.client.timeout = CLIENT_TIMEOUT_S  # type: ignore[assignment]
        yield sapa


def conversation(sapa: Sapa, address: str = "+6281234567890") -> int:
    now = sapa.clock.now()
    with sapa.database.unit_of_work() as session:
        identity, _ = get_or_create_identity(session, "sms", address, now=now, phone=address)
        opened, _ = continue_or_open(session, identity, now=now, language="id", idle_close=timedelta(minutes=30))
        session.flush()
        return opened.id


def queue_card(sapa: Sapa, conversation_id: int) -> int:
    with sapa.database.unit_of_work() as session:
        item = add_desk_post(session, recipient=QUEUE, text="Budi needs an agent (sms)", now=sapa.clock.now(),
                             conversation_id=conversation_id, card_for=conversation_id,
                             options={"card": {"conversation_id": conversation_id, "customer_name": "Budi",
                                               "channel": "sms", "status": "waiting"}})
        session.flush()
        return item.id


def queue_relay(sapa: Sapa, conversation_id: int, text: str) -> int:
    with sapa.database.unit_of_work() as session:
        item = add_desk_post(session, recipient=QUEUE, text=text, now=sapa.clock.now(),
                             conversation_id=conversation_id, options={"thread_of": conversation_id})
        session.flush()
        return item.id


def row(sapa: Sapa, item_id: int) -> OutboxItem:
    with sapa.database.unit_of_work(read_only=True) as session:
        return session.get_one(OutboxItem, item_id)


def desk_ts(sapa: Sapa, conversation_id: int) -> tuple[str | None, str | None]:
    with sapa.database.unit_of_work(read_only=True) as session:
        found = session.get_one(Conversation, conversation_id)
        return found.desk_ts, found.desk_channel


def posted(fakes: FakeProviders) -> Counter[int]:
    """How many times Slack took a post of each outbox row (by its metadata), whatever it answered."""
    return Counter(int(r.params["metadata"]["event_payload"]["outbox_id"]) for r in fakes.sent("slack")
                   if r.method == "chat.postMessage" and r.params.get("metadata"))


def taken(fakes: FakeProviders, item_id: int) -> list[dict[str, Any]]:
    return [r.params for r in fakes.sent("slack")
            if (r.params.get("metadata") or {}).get("event_payload", {}).get("outbox_id") == item_id]


def ts_of(fakes: FakeProviders, item_id: int) -> str:
    """The ts Slack gave the one post of this row."""
    [ts] = [m["ts"] for m in fakes.slack_messages(QUEUE) if m["metadata"]["event_payload"]["outbox_id"] == item_id]
    return str(ts)


def lookups(fakes: FakeProviders) -> Counter[str]:
    return Counter(r.method for r in fakes.requests("slack") if r.method.startswith("conversations."))


def drain(sapa: Sapa, passes: int = 500) -> None:
    settle_outbox(sapa, passes)


def only_faults(fakes: FakeProviders, kind: str) -> None:
    fakes.set_faults(Faults(fraction=1.0, kinds=(kind,), hold_s=HOLD_S, providers=("slack",)))


# --- the card ------------------------------------------------------------------------------------------------


def test_a_card_answered_500_after_slack_took_it_is_posted_once_and_opens_the_thread(sapa, fakes):
    conversation_id = conversation(sapa)
    card = queue_card(sapa, conversation_id)
    relay = queue_relay(sapa, conversation_id, "Budi: halo, ada orang?")
    only_faults(fakes, "accept_then_500")

    sapa.dispatcher.run_once()
    fakes.set_faults(None)
    unclear = row(sapa, card)
    assert (unclear.status, unclear.send_started_at is not None) == ("pending", True)  # to be looked up
    assert "no clear answer" in (unclear.last_error or "")
    assert desk_ts(sapa, conversation_id) == (None, None)  # the relay waits for the card, spending no attempt
    assert (row(sapa, relay).status, row(sapa, relay).attempts) == ("pending", 0)
    drain(sapa)

    assert posted(fakes) == {card: 1, relay: 1}
    card_ts = ts_of(fakes, card)
    settled = row(sapa, card)
    assert (settled.status, settled.provider_message_id) == ("sent", card_ts)
    assert desk_ts(sapa, conversation_id) == (card_ts, QUEUE)  # as an ordinary success records it
    [relayed] = taken(fakes, relay)
    assert relayed["thread_ts"] == card_ts and relayed["text"] == "Budi: halo, ada orang?"
    assert lookups(fakes) == {"conversations.history": 1}
    assert len(fakes.requests("slack", "chat.postMessage")) == 2


def test_a_card_slack_never_took_is_looked_up_and_then_posted(sapa, fakes):
    conversation_id = conversation(sapa)
    card = queue_card(sapa, conversation_id)
    only_faults(fakes, "500")  # refused, with an answer that cannot say so
    sapa.dispatcher.run_once()
    fakes.set_faults(None)
    drain(sapa)

    assert posted(fakes) == {card: 1}
    assert desk_ts(sapa, conversation_id) == (ts_of(fakes, card), QUEUE)
    assert lookups(fakes) == {"conversations.history": 1}
    assert len(fakes.requests("slack", "chat.postMessage")) == 2


# --- relays in the card's thread ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", UNCLEAR)
def test_an_unclear_relay_is_looked_up_in_the_thread_and_posted_once(sapa, fakes, kind):
    conversation_id = conversation(sapa)
    card = queue_card(sapa, conversation_id)
    drain(sapa)
    card_ts, _ = desk_ts(sapa, conversation_id)
    relay = queue_relay(sapa, conversation_id, "Budi: pesanan #4411 belum sampai")
    sapa.clock.advance(timedelta(seconds=2))  # past the channel's rate limit (1 post a second)
    only_faults(fakes, kind)
    sapa.dispatcher.run_once()
    fakes.set_faults(None)
    assert row(sapa, relay).send_started_at is not None
    drain(sapa)

    assert posted(fakes) == {card: 1, relay: 1}
    [relayed] = taken(fakes, relay)
    assert relayed["thread_ts"] == card_ts
    took_it = fakes.requests("slack", "chat.postMessage")[1].delivered
    assert len(fakes.requests("slack", "chat.postMessage")) == (2 if took_it else 3)
    # Looked up in the card's thread (not the channel's history). Usually once; on a loaded machine a lookup that
    # outlasts the client's timeout is asked again (seen in CI), which is right: it never turns into a second post.
    found = lookups(fakes)
    assert set(found) == {"conversations.replies"} and found["conversations.replies"] >= 1
    assert row(sapa, relay).status == "sent"


def test_a_429_is_a_plain_retry_without_a_lookup(sapa, fakes):
    conversation_id = conversation(sapa)
    card = queue_card(sapa, conversation_id)
    relay = queue_relay(sapa, conversation_id, "Budi: halo")
    only_faults(fakes, "429")
    sapa.dispatcher.run_once()
    fakes.set_faults(None)
    assert (row(sapa, card).status, row(sapa, card).send_started_at) == ("pending", None)  # nothing to look up
    drain(sapa)

    assert posted(fakes) == {card: 1, relay: 1}
    assert lookups(fakes) == {}
    assert desk_ts(sapa, conversation_id)[0] == ts_of(fakes, card)


def test_a_lookup_that_fails_is_tried_again_later_and_the_post_stays_single(sapa, fakes):
    conversation_id = conversation(sapa)
    card = queue_card(sapa, conversation_id)
    only_faults(fakes, "accept_then_drop")
    sapa.dispatcher.run_once()
    fakes.set_faults(None)
    fakes.fail_next("slack", 500, method="conversations.history", times=2)  # the lookup itself fails twice
    drain(sapa)

    assert posted(fakes) == {card: 1}
    assert lookups(fakes) == {"conversations.history": 3}
    assert row(sapa, card).provider_message_id == ts_of(fakes, card) == desk_ts(sapa, conversation_id)[0]


def test_a_card_interrupted_by_a_crash_after_slack_took_it_is_reconciled_not_doubled(sapa, fakes):
    conversation_id = conversation(sapa)
    card = queue_card(sapa, conversation_id)
    relay = queue_relay(sapa, conversation_id, "Budi: masih menunggu")
    now = sapa.clock.now()
    with sapa.database.unit_of_work() as session:  # the dead process: started, posted, no outcome recorded
        item = session.get_one(OutboxItem, card)
        item.status, item.claimed_by, item.claimed_at, item.attempts = "sending", "dead-worker", now, 1
        item.send_started_at = now
    sapa.dispatcher.channels["slack"].send(to_outbound(row(sapa, card), window_open=None))
    sapa.clock.advance(timedelta(seconds=sapa.settings.outbox.claim_timeout_s + 1))
    drain(sapa)

    assert posted(fakes) == {card: 1, relay: 1}
    assert desk_ts(sapa, conversation_id) == (ts_of(fakes, card), QUEUE)
    assert taken(fakes, relay)[0]["thread_ts"] == ts_of(fakes, card)


def test_when_slack_will_not_let_sapa_read_the_channel_the_post_goes_again(sapa, fakes, caplog):
    """A missing channels:history scope: the lookup cannot answer, so the post is at least once, said at ERROR."""
    conversation_id = conversation(sapa)
    card = queue_card(sapa, conversation_id)
    only_faults(fakes, "accept_then_500")
    sapa.dispatcher.run_once()
    fakes.set_faults(None)
    fakes.fail_next("slack", 200, method="conversations.history", description="missing_scope")
    with caplog.at_level(logging.ERROR, logger="channels.slack"):
        drain(sapa)
    assert posted(fakes) == {card: 2}
    assert "cannot look up outbox" in caplog.text and "missing_scope" in caplog.text
    assert desk_ts(sapa, conversation_id)[0] == row(sapa, card).provider_message_id


# --- the adapter ----------------------------------------------------------------------------------------------


def test_posts_carry_their_outbox_id_and_a_refused_connection_is_a_plain_retry(sapa, fakes):
    conversation_id = conversation(sapa)
    card = queue_card(sapa, conversation_id)
    drain(sapa)
    [params] = taken(fakes, card)
    assert params["metadata"] == {"event_type": "sapa_outbox", "event_payload": {"outbox_id": card}}

    refused = SlackDesk("xoxb-test-token", "secret", api_base_url="http://127.0.0.1:9/api/")  # nothing on port 9
    with pytest.raises(RetryLater) as caught:
        refused.send(to_outbound(row(sapa, card), window_open=None))
    assert not isinstance(caught.value, MaybeSent)  # never sent: a plain retry
