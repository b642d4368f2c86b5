"""Issue 18: a broadcast is selected in chunks of customers and queued set-based, one short transaction per step.

A mixed population (tests/support/population.py: WhatsApp, SMS and Telegram in turn, every 10th opted out, every
25th never asked, a part with English as their language) is broadcast to with a chunk of 7 customers, so the
selection takes several `broadcast.select` steps. The steps are run the way the scheduler runs tasks, each in its
own transaction. What marketing and customers would see must be what one big statement gave: every customer
once, skipped with the right reason or queued with a message in their language, each message in its own closed
conversation with its outbox row, and nothing twice when a step runs again or the broadcast is paused and resumed
in the middle of its selection.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Text, cast, func, select

from handlers import broadcasts
from store import Database
from store import broadcasts as store
from store.broadcasts import Rendered
from store.models import (
    Broadcast,
    BroadcastRecipient,
    ChannelIdentity,
    Conversation,
    Customer,
    Message,
    OutboxItem,
    Task,
)
from tests.support.population import Population, broadcast_settings, populate

NOW = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)  # 10:00 in Jakarta: outside quiet hours
TEXTS = {"id": "Halo {{ name }}, poin Anda {{ points }}!", "en": "Hi {{ name }}, you have {{ points }} points!"}
NOWHERE = SimpleNamespace(telegram_base_url="http://127.0.0.1:9", twilio_base_url="http://127.0.0.1:9",
                          slack_base_url="http://127.0.0.1:9")  # nothing is sent in these tests


@pytest.fixture
def people(database: Database) -> Population:
    found = populate(database, 20, now=NOW)
    found.merge(populate(database, 6, now=NOW, start=20, language="en"))
    return found


@pytest.fixture
def settings(db_url: str) -> Any:
    return broadcast_settings(db_url, NOWHERE, max_per_customer=50)


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "SELECT_CHUNK", 7)


def start(database: Database, settings: Any, texts: dict[str, str] = TEXTS) -> int:
    with database.unit_of_work() as session:
        made = broadcasts.create(session, settings, name="Poin", filters={}, messages=texts,
                                 channels=["whatsapp", "sms", "telegram"], created_by="test", now=NOW)
        broadcasts.schedule(session, settings, made.id, now=NOW, actor="test")
        return made.id


def select_step(database: Database, settings: Any) -> bool:
    """Run the oldest pending `broadcast.select` task in its own transaction, as the scheduler would."""
    with database.unit_of_work() as session:
        task = session.execute(select(Task).where(Task.kind == broadcasts.SELECT, Task.status == "pending")
                               .order_by(Task.id).limit(1)).scalar_one_or_none()
        if task is None:
            return False
        broadcasts.select_task(settings)(session, task, NOW)
        task.status, task.finished_at = "done", NOW
        return True


def status(database: Database, broadcast_id: int) -> str:
    with database.unit_of_work(read_only=True) as session:
        return session.get_one(Broadcast, broadcast_id).status


def feed_until_done(database: Database, settings: Any, broadcast_id: int) -> None:
    for _ in range(50):
        with database.unit_of_work() as session:
            result = broadcasts.feed_step(session, settings, broadcast_id, NOW)
        if result.next_at is None or result.queued == 0 and not result.skipped:
            return
    raise AssertionError("the feed did not finish")


def recipients(database: Database, broadcast_id: int) -> dict[int, BroadcastRecipient]:
    with database.unit_of_work(read_only=True) as session:
        return {r.customer_id: r for r in session.execute(
            select(BroadcastRecipient).where(BroadcastRecipient.broadcast_id == broadcast_id)).scalars()}


def test_selection_runs_in_chunks_and_feeding_starts_after_the_last(database, settings, people):
    broadcast_id = start(database, settings)
    steps = 0
    while select_step(database, settings):
        steps += 1
        if status(database, broadcast_id) == "selecting":
            assert len(recipients(database, broadcast_id)) == min(7 * steps, 26)
    assert steps == 4  # 26 customers in chunks of 7
    assert status(database, broadcast_id) == "sending"
    found = recipients(database, broadcast_id)
    assert set(found) == set(people.customer_ids)
    assert {c for c, r in found.items() if r.skip_reason == "opted_out"} == people.opted_out
    assert {c for c, r in found.items() if r.skip_reason == "no_consent"} == people.no_consent - people.opted_out
    assert {c for c, r in found.items() if r.status == "pending"} == set(people.eligible)
    for customer_id, recipient in found.items():
        assert (recipient.channel, recipient.address) == people.addresses[customer_id]


def test_each_queued_message_has_its_conversation_and_outbox_row_in_the_customers_language(
        database, settings, people):
    broadcast_id = start(database, settings)
    while select_step(database, settings):
        pass
    feed_until_done(database, settings, broadcast_id)
    found = recipients(database, broadcast_id)
    queued = {c: r for c, r in found.items() if r.status == "queued"}
    assert set(queued) == set(people.eligible)
    with database.unit_of_work(read_only=True) as session:
        for customer_id, recipient in queued.items():
            outbox = session.get_one(OutboxItem, recipient.outbox_id)
            message = session.get_one(Message, recipient.message_id)
            conversation = session.get_one(Conversation, message.conversation_id)
            identity = session.get_one(ChannelIdentity, conversation.identity_id)
            name = session.get_one(Customer, customer_id).name
            greeting = "Hi" if customer_id in people.english else "Halo"
            assert message.text.startswith(f"{greeting} {name}, ")
            assert (message.customer_id, message.direction, message.sender, message.delivery_status) == \
                (customer_id, "out", "system", "queued")
            assert message.meta == {"broadcast_id": broadcast_id}
            assert (outbox.message_id, outbox.conversation_id, outbox.status) == (message.id, conversation.id,
                                                                                    "pending")
            assert (outbox.channel, outbox.recipient) == people.addresses[customer_id]
            assert outbox.payload["text"] == message.text and outbox.payload["at_most_once"] is True
            assert outbox.payload["template_variables"]["name"] == name
            assert (conversation.status, conversation.customer_id) == ("closed", customer_id)
            assert (identity.channel, identity.address) == people.addresses[customer_id]
        # The ids given to the rows were the tables' own: a message written next gets a fresh one.
        next_conversation = Conversation(customer_id=people.customer_ids[0], identity_id=identity.id,
                                         channel=identity.channel, status="bot", language="id", opened_at=NOW,
                                         last_message_at=NOW, pending_data={})
    with database.unit_of_work() as session:
        session.add(next_conversation)
        session.flush()
        assert next_conversation.id > max(session.get_one(Message, r.message_id).conversation_id
                                          for r in queued.values())


def test_the_outbox_payload_is_stored_as_the_json_serialiser_writes_it(database, settings, people):
    """The payloads are formatted from a pattern (store.broadcasts.PayloadJson), not json.dumps per message: the
    stored text must still be json.dumps's, with quotes, percent signs, braces and non-ASCII letters escaped."""
    tricky = {"id": 'Halo "{{ name }}", hemat 100% {hadiah} \\ café 🎉 {{ points }}', "en": "Hi {{ name }}: 50%s!"}
    broadcast_id = start(database, settings, tricky)
    while select_step(database, settings):
        pass
    feed_until_done(database, settings, broadcast_id)
    queued = [r for r in recipients(database, broadcast_id).values() if r.status == "queued"]
    assert len(queued) == len(people.eligible)
    with database.unit_of_work(read_only=True) as session:
        for recipient in queued:
            stored = session.execute(select(cast(OutboxItem.payload, Text))
                                     .where(OutboxItem.id == recipient.outbox_id)).scalar_one()
            message = session.get_one(Message, recipient.message_id)
            payload = json.loads(stored)
            assert stored == json.dumps(payload)
            assert payload == store.outbox_payload(broadcast_id, Rendered(message.text, payload["template_variables"]),
                                                   message.language or "")
            if recipient.customer_id in people.english:
                assert message.text.startswith("Hi Pelanggan ") and ": 50%s!" in message.text
            else:
                assert message.text.startswith('Halo "Pelanggan ') and '100% {hadiah} \\ café 🎉' in message.text


def test_a_selection_step_run_again_adds_nobody_twice(database, settings, people):
    broadcast_id = start(database, settings)
    with database.unit_of_work() as session:
        broadcast = session.get_one(Broadcast, broadcast_id)
        for after in (0, 0, 7):  # the first chunk twice (a retried step), then the next
            store.select_chunk(session, settings, broadcast, NOW, after)
    assert len(recipients(database, broadcast_id)) == 14


def test_pause_and_resume_in_the_middle_of_selection_selects_everyone_once(database, settings, people):
    broadcast_id = start(database, settings)
    select_step(database, settings)
    select_step(database, settings)
    assert status(database, broadcast_id) == "selecting"
    with database.unit_of_work() as session:
        broadcasts.pause(session, settings, broadcast_id, now=NOW, actor="test")
    assert not select_step(database, settings) or len(recipients(database, broadcast_id)) == 14
    with database.unit_of_work() as session:
        broadcasts.resume(session, settings, broadcast_id, now=NOW, actor="test")
    while select_step(database, settings):
        pass
    assert status(database, broadcast_id) == "sending"
    with database.unit_of_work(read_only=True) as session:
        rows = session.execute(select(BroadcastRecipient.customer_id, func.count())
                               .where(BroadcastRecipient.broadcast_id == broadcast_id)
                               .group_by(BroadcastRecipient.customer_id)).all()
    assert len(rows) == 26 and {n for _, n in rows} == {1}
