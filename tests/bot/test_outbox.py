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


def test_retry_later_waits_at_least_retry_after_and_what_follows_waits_behind_it(
        settings, clock, interpreter, database):
    channel = RecordingChannel()
    channel.failures = [RetryLater("429 Too Many Requests", after_s=30)]
    sapa = make_sapa(settings, clock, interpreter, database, channel)
    deliver(sapa, "terima kasih", "d1")
    sapa.dispatcher.run_once()
    row, notice = outbox_rows(sapa)
    assert row.status == "pending" and row.last_error == "429 Too Many Requests"
    assert row.next_attempt_at == clock.now() + timedelta(seconds=30)
    # The privacy notice follows the answer: it must not reach the customer first.
    assert notice.status == "pending" and notice.attempts == 0 and channel.sent == []
    clock.advance(timedelta(seconds=29))
    assert sapa.dispatcher.run_once() == 0
    clock.advance(timedelta(seconds=1))
    assert sapa.dispatcher.run_once() == 2
    assert [m.text for m in channel.sent][1:] == [NOTICE]
    assert [(r.status, r.attempts) for r in outbox_rows(sapa)] == [("sent", 2), ("sent", 1)]


def test_a_reply_written_while_an_earlier_one_is_retried_waits_for_it(settings, clock, interpreter, database):
    """The earlier reply is in backoff (outside this batch): the next message to that customer waits."""
    channel = RecordingChannel()
    sapa = make_sapa(settings, clock, interpreter, database, channel)
    deliver(sapa, "halo", "o1")
    deliver(sapa, "Budi", "o0")
    assert sapa.dispatcher.run_once() == 4  # greeting, name question, privacy notice, "nice to meet you"
    channel.failures = [ConnectionError("provider down")]
    deliver(sapa, "terima kasih", "o2")  # the answer fails once and goes into backoff
    sapa.dispatcher.run_once()
    clock.advance(timedelta(milliseconds=500))
    deliver(sapa, "jam buka toko?", "o3")  # written during the backoff
    assert sapa.dispatcher.run_once() == 0  # held behind the retried answer, not sent
    assert len(channel.sent) == 4
    clock.advance(timedelta(seconds=settings.outbox.backoff_base_s))
    while sapa.dispatcher.run_once():
        pass
    answers = [m.text for m in channel.sent[4:]]
    assert len(answers) == 2 and "jam" not in answers[0].lower() and answers[1] != answers[0]
    with sapa.database.unit_of_work(read_only=True) as session:
        out = [m.text for m in session.execute(
            select(Message).where(Message.direction == "out").order_by(Message.id)).scalars()][4:]
    assert answers == out  # the customer reads them in the order they were written


def test_unexpected_errors_back_off_exponentially_then_fail_visibly(settings, clock, interpreter, database):
    channel = RecordingChannel()
    attempts = settings.outbox.max_attempts
    channel.failures = [ConnectionError("provider down")] * attempts * 2  # the answer and the privacy notice
    sapa = make_sapa(settings, clock, interpreter, database, channel)
    deliver(sapa, "terima kasih", "e1")
    delays = []
    for _ in range(attempts * 2):
        before = clock.now()
        sapa.dispatcher.run_once()
        rows = outbox_rows(sapa)
        if all(row.status == "failed" for row in rows):
            break
        row = next(r for r in rows if r.status != "failed")
        delays.append((row.id, (row.next_attempt_at - before).total_seconds()))
        clock.set(row.next_attempt_at)
    first = rows[0].id
    assert [delay for row_id, delay in delays if row_id == first][:3] == [2.0, 4.0, 8.0]
    # The notice waited behind the answer without spending attempts, then had its own backoff.
    assert [delay for row_id, delay in delays if row_id != first][:2] == [2.0, 4.0]
    assert len(rows) == 2 and all(r.status == "failed" and "gave up after" in (r.last_error or "") for r in rows)
    assert [r.attempts for r in rows] == [attempts, attempts]
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
    for recipient in {m.recipient for m in channel.sent}:
        texts = [m.text for m in channel.sent if m.recipient == recipient]
        assert texts[1] == NOTICE, texts  # each customer reads the answer first, then the notice


def test_a_reply_in_flight_in_another_process_holds_the_next_one(settings, clock, interpreter, database):
    """Dispatcher A is mid-send of the answer when dispatcher B looks: B must not send the notice past it."""
    settings = settings.model_copy(update={"outbox": settings.outbox.model_copy(update={"batch_size": 1})})
    channel = RecordingChannel()
    in_send, release = threading.Event(), threading.Event()

    def slow_first_send(_message):
        if not in_send.is_set():
            in_send.set()
            assert release.wait(10)

    channel.on_send = slow_first_send
    first = make_sapa(settings, clock, interpreter, database, channel)
    second = make_sapa(settings, clock, interpreter, database, channel)
    deliver(first, "terima kasih", "i1")
    sending = threading.Thread(target=first.dispatcher.run_once)
    sending.start()
    try:
        assert in_send.wait(10)
        assert second.dispatcher.run_once() == 0  # the notice is held: the answer is still in flight
        assert channel.sent == []
    finally:
        release.set()
        sending.join()
    assert len(channel.sent) == 1
    clock.advance(timedelta(seconds=settings.outbox.poll_interval_s))
    assert second.dispatcher.run_once() == 1
    assert [m.text for m in channel.sent][1:] == [NOTICE]


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
