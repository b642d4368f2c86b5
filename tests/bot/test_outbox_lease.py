"""Issue 18 follow-up: a live worker keeps the rows it claimed, however long its batch takes.

A row claimed longer than `claim_timeout_s` ago is taken for a dead worker's and claimed again by any dispatcher.
A busy worker renews its claim on the rows it still holds, so another replica never takes them (no second copy
to the customer, no reply settled as "interrupted"); a worker that really died still has its rows taken over
(tests/bot/test_outbox.py::test_crash_during_send_is_reclaimed_after_the_claim_timeout).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from bot.clock import Clock, ManualClock, SystemClock
from bot.messages import OutboundMessage
from bot.outbox import OutboxDispatcher
from store import Database
from store.models import Message, OutboxItem
from tests.support.channels import RecordingChannel
from tests.support.providers import queue_outbound

CUSTOMERS = 2
PER_CUSTOMER = 5
SEND_S = 0.25  # ten sends take 2.5 s: more than twice the claim timeout below
CLAIM_TIMEOUT_S = 1.0


def dispatcher(settings, database: Database, channel: RecordingChannel, clock: Clock, worker: str
               ) -> OutboxDispatcher:
    config = settings.outbox.model_copy(update={"claim_timeout_s": CLAIM_TIMEOUT_S, "poll_interval_s": 0.05})
    return OutboxDispatcher(database, {"webchat": channel}, clock, config, worker=worker)


def queue(database: Database, clock: Clock) -> dict[str, list[str]]:
    """Replies to a few web chat customers, in the order they were written; texts by customer."""
    writer = SimpleNamespace(database=database, clock=clock)
    written: dict[str, list[str]] = {}
    for n in range(PER_CUSTOMER):
        for c in range(CUSTOMERS):
            address = f"Session{c:021d}"
            text = f"reply {n} to customer {c}"
            queue_outbound(writer, "webchat", address, text)
            written.setdefault(address, []).append(text)
    return written


def outcomes(database: Database) -> list[tuple[str, str | None, str | None]]:
    """(outbox status, message delivery status, outbox provider id) of every row, in id order."""
    with database.unit_of_work(read_only=True) as session:
        return [(row.status, status, row.provider_message_id) for row, status in session.execute(
            select(OutboxItem, Message.delivery_status).join(Message, Message.id == OutboxItem.message_id)
            .order_by(OutboxItem.id))]


@pytest.mark.parametrize("guarded", [False, True], ids=["webchat", "guarded-like-telegram"])
def test_a_slow_batch_keeps_its_rows_while_another_replica_keeps_polling(settings, database, guarded):
    channel = RecordingChannel()
    if guarded:  # started before each send and never resent, like Telegram: a takeover would settle it "interrupted"
        channel.guard_sends = True  # type: ignore[attr-defined]
    sending = threading.Event()

    def slow(_message: OutboundMessage) -> None:
        sending.set()
        time.sleep(SEND_S)

    channel.on_send = slow
    clock = SystemClock()
    written = queue(database, clock)
    busy = dispatcher(settings, database, channel, clock, "busy")
    other = dispatcher(settings, database, channel, clock, "other")

    first_pass = threading.Thread(target=busy.run_once)
    began = time.monotonic()
    first_pass.start()
    assert sending.wait(10)
    passes = 0
    while first_pass.is_alive():  # the other replica polls all along, looking for abandoned rows too
        other.run_once()
        passes += 1
        time.sleep(0.02)
    first_pass.join()
    took = time.monotonic() - began
    while other.run_once() or busy.run_once():
        pass

    # The other replica really polled (and looked for abandoned rows) while the batch ran past the claim timeout.
    assert took > 2 * CLAIM_TIMEOUT_S and passes >= 20
    texts = [message.text for message in channel.sent]
    assert Counter(texts) == Counter(text for replies in written.values() for text in replies)  # each exactly once
    for address, replies in written.items():
        assert [m.text for m in channel.sent if m.recipient == address] == replies  # in the order written
    assert [(status, delivery) for status, delivery, _ in outcomes(database)] == [("sent", "sent")] * len(texts)


def test_an_outcome_of_a_row_taken_over_does_not_overwrite_the_new_holder(settings, database, caplog):
    """A worker stalls inside one send past the claim timeout (a hung provider call, a long pause); another worker
    takes the rows over and sends them. The stalled worker's late outcome does not overwrite what the other
    recorded, it sends none of the rest, and it says so in the log."""
    clock = ManualClock()
    channel = RecordingChannel()
    stalled = dispatcher(settings, database, channel, clock, "stalled")
    other = dispatcher(settings, database, channel, clock, "other")
    written = queue(database, clock)["Session" + "0" * 21]

    def stall_on_the_first(_message: OutboundMessage) -> None:
        channel.on_send = None
        clock.advance(timedelta(seconds=CLAIM_TIMEOUT_S * 2))
        other.run_once()  # meanwhile the rows are taken for a dead worker's and sent

    channel.on_send = stall_on_the_first
    with caplog.at_level(logging.WARNING, logger="bot.outbox"):
        stalled.run_once()

    rows = outcomes(database)
    texts = [m.text for m in channel.sent]
    # The stalled call itself could not be recalled: that one reply went twice (a web chat row is not guarded).
    assert [text for text in texts if text.endswith("customer 0")] == written + written[:1]
    assert len(texts) == len(rows) + 1
    assert [(status, delivery) for status, delivery, _ in rows] == [("sent", "sent")] * len(rows)
    # Every row keeps the provider id the other worker recorded; the stalled send's late one is not written.
    assert sorted(pid or "" for *_, pid in rows) == sorted(f"prov-{n}" for n in range(1, len(rows) + 1))
    assert "outcome 'sent' not recorded (sent by this worker too)" in caplog.text
    assert "not sent here" in caplog.text
