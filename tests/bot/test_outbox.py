"""The outbox: every reply is a row first and a send second; crashes lose nothing and double nothing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.app import build
from bot.messages import InboundMessage
from channels.base import RetryLater, Undeliverable
from store.models import Message, OutboxItem
from tests.support.channels import RecordingChannel
from tests.support.webchat import NOTICE


def make_sapa(settings, clock, interpreter, database, channel):
    return build(settings, clock=clock, interpreter=interpreter, database=database,
                 channels={"webchat": channel}, model_cache=None)


def deliver(sapa, text: str, provider_id: str, sender: str = "SessionCCCCCCCCCCCCCCCCCCCC"):
    return sapa.pipeline.handle(InboundMessage("webchat", sender, provider_id, text, datetime.now(UTC)))


def outbox_rows(sapa) -> list[OutboxItem]:
    with sapa.database.unit_of_work(read_only=True) as session:
        return list(session.execute(select(OutboxItem).order_by(OutboxItem.id)).scalars())


def test_dispatcher_sends_queued_replies_and_records_provider_ids(settings, clock, interpreter, database):
    channel = RecordingChannel()
    sapa = make_sapa(settings, clock, interpreter, database, channel)
    deliver(sapa, "halo", "a1")
    assert channel.sent == []  # nothing leaves before the dispatcher runs
    assert sapa.dispatcher.run_once() == 3
    assert [m.text for m in channel.sent][1:] == ["Boleh kami tahu nama Anda?", NOTICE]
    rows = outbox_rows(sapa)
    assert [(r.status, r.provider_message_id) for r in rows] == [("sent", "prov-1"), ("sent", "prov-2"),
                                                                 ("sent", "prov-3")]
    with sapa.database.unit_of_work(read_only=True) as session:
        statuses = [m.delivery_status for m in session.execute(
            select(Message).where(Message.direction == "out").order_by(Message.id)).scalars()]
    assert statuses == ["sent", "sent", "sent"]
    assert sapa.dispatcher.run_once() == 0


def test_crash_between_commit_and_send_resends_once_after_restart(settings, clock, interpreter, database):
    """The process dies right after committing the replies: the next process sends them, once."""
    first = make_sapa(settings, clock, interpreter, database, RecordingChannel())
    deliver(first, "halo", "b1")  # committed; the dispatcher never ran: the "crash"

    channel = RecordingChannel()
    restarted = make_sapa(settings, clock, interpreter, database, channel)
    restarted.dispatcher.run_once()
    restarted.dispatcher.run_once()
    assert len(channel.sent) == 3  # greeting, name question, privacy notice
    assert all(r.status == "sent" for r in outbox_rows(restarted))


def test_crash_during_send_is_reclaimed_after_the_claim_timeout(settings, clock, interpreter, database):
    channel = RecordingChannel()
    sapa = make_sapa(settings, clock, interpreter, database, channel)
    deliver(sapa, "terima kasih", "c1")

    def die(_message):
        raise SystemExit("process killed mid-send")

    channel.on_send = die
    try:
        sapa.dispatcher.run_once()
    except SystemExit:
        pass
    assert [r.status for r in outbox_rows(sapa)] == ["sending", "sending"]  # the answer and the privacy notice
    channel.on_send = None

    other = make_sapa(settings, clock, interpreter, database, channel)
    assert other.dispatcher.run_once() == 0  # still claimed by the dead worker
    clock.advance(timedelta(seconds=settings.outbox.claim_timeout_s + 1))
    assert other.dispatcher.run_once() == 2
    assert len(channel.sent) == 2
    assert [r.status for r in outbox_rows(sapa)] == ["sent", "sent"]


def test_retry_later_waits_at_least_retry_after(settings, clock, interpreter, database):
    channel = RecordingChannel()
    channel.failures = [RetryLater("429 Too Many Requests", after_s=30)]
    sapa = make_sapa(settings, clock, interpreter, database, channel)
    deliver(sapa, "terima kasih", "d1")
    sapa.dispatcher.run_once()
    row, notice = outbox_rows(sapa)
    assert row.status == "pending" and row.last_error == "429 Too Many Requests"
    assert row.next_attempt_at == clock.now() + timedelta(seconds=30)
    assert notice.status == "sent" and [m.text for m in channel.sent] == [NOTICE]  # only the 429'd row waits
    clock.advance(timedelta(seconds=29))
    assert sapa.dispatcher.run_once() == 0
    clock.advance(timedelta(seconds=1))
    assert sapa.dispatcher.run_once() == 1
    assert len(channel.sent) == 2 and outbox_rows(sapa)[0].status == "sent"


def test_unexpected_errors_back_off_exponentially_then_fail_visibly(settings, clock, interpreter, database):
    channel = RecordingChannel()
    attempts = settings.outbox.max_attempts
    channel.failures = [ConnectionError("provider down")] * attempts * 2  # the answer and the privacy notice
    sapa = make_sapa(settings, clock, interpreter, database, channel)
    deliver(sapa, "terima kasih", "e1")
    delays = []
    for _ in range(attempts):
        before = clock.now()
        sapa.dispatcher.run_once()
        row = outbox_rows(sapa)[0]
        if row.status == "failed":
            break
        delays.append((row.next_attempt_at - before).total_seconds())
        clock.set(row.next_attempt_at)
    assert delays[:3] == [2.0, 4.0, 8.0]
    rows = outbox_rows(sapa)
    assert len(rows) == 2 and all(r.status == "failed" and "gave up after" in (r.last_error or "") for r in rows)
    row = rows[0]
    assert channel.sent == []
    with sapa.database.unit_of_work(read_only=True) as session:
        message = session.get_one(Message, row.message_id)
    assert message.delivery_status == "failed" and "provider down" in (message.delivery_error or "")


def test_permanent_failure_is_recorded_and_never_retried(settings, clock, interpreter, database):
    channel = RecordingChannel()
    channel.failures = [Undeliverable("bot was blocked by the user")] * 2  # the answer and the privacy notice
    sapa = make_sapa(settings, clock, interpreter, database, channel)
    deliver(sapa, "terima kasih", "f1")
    sapa.dispatcher.run_once()
    clock.advance(timedelta(days=1))
    assert sapa.dispatcher.run_once() == 0
    rows = outbox_rows(sapa)
    assert [(r.status, r.attempts) for r in rows] == [("failed", 1), ("failed", 1)]
    assert channel.sent == []


def test_two_dispatchers_never_send_the_same_row_twice(settings, clock, interpreter, database):
    channel = RecordingChannel()
    sapa = make_sapa(settings, clock, interpreter, database, channel)
    for i in range(30):
        deliver(sapa, "terima kasih", f"g{i}", sender=f"Session{i:021d}")
    second = make_sapa(settings, clock, interpreter, database, channel)
    barrier = threading.Barrier(2)

    def drain(dispatcher):
        barrier.wait()
        while dispatcher.run_once():
            pass

    threads = [threading.Thread(target=drain, args=(d,)) for d in (sapa.dispatcher, second.dispatcher)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(channel.sent) == 60  # each new customer: the answer and the privacy notice
    assert len({(m.recipient, m.text) for m in channel.sent}) == 60
    assert len({m.recipient for m in channel.sent}) == 30


def test_background_dispatcher_is_woken_by_the_pipeline(settings, clock, interpreter, database):
    channel = RecordingChannel()
    sent = threading.Event()
    channel.on_send = lambda _m: sent.set()
    sapa = make_sapa(settings, clock, interpreter, database, channel)
    sapa.dispatcher.start()
    try:
        deliver(sapa, "terima kasih", "h1")
        assert sent.wait(10), "the dispatcher thread did not send the reply"
    finally:
        sapa.dispatcher.stop()
