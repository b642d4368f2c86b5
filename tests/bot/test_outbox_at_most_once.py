"""At-most-once rows (broadcasts): a send a crash interrupted is reconciled with the provider, never blindly
repeated; broadcasts are held to their own per-channel rate below the provider's limit (CRM-4.3)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from bot.app import Sapa, build
from bot.config import settings_from_mapping
from bot.devtools.fake_providers import FakeProviders
from bot.outbox import to_outbound
from store.models import OutboxItem
from tests.support.providers import PUBLIC, SECRETS, channel_config, queue_outbound

ROOT = Path(__file__).resolve().parents[2]
ADDRESS = {"telegram": "700001", "sms": "+6281234567890", "whatsapp": "+6281234567891"}


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database) -> Iterator[Sapa]:
    raw = yaml.safe_load((ROOT / "config.yml").read_text())
    raw["server"]["public_base_url"] = PUBLIC
    raw["channels"].update(channel_config(fakes))
    raw["channels"]["sms"]["messages_per_second"] = 100
    raw["database"]["url"] = db_url
    raw["broadcasts"]["rate_per_second"] = {"whatsapp": 5, "sms": 5, "telegram": 5}
    sapa = build(settings_from_mapping(raw, SECRETS, "test config"), clock=clock, interpreter=interpreter,
                 database=database, model_cache=None)
    yield sapa
    sapa.stop_background()


def queue_broadcast(sapa: Sapa, channel: str, address: str, text: str, *, purpose: str = "broadcast") -> int:
    """One broadcast message queued the way handlers/broadcasts.py queues them: at most once."""
    item_id = queue_outbound(sapa, channel, address, text, purpose=purpose, sender="system")
    with sapa.database.unit_of_work() as session:
        item = session.get_one(OutboxItem, item_id)
        item.payload = {**item.payload, "at_most_once": True}
    return item_id


def crash_mid_send(sapa: Sapa, item_id: int, *, reached_provider: bool) -> None:
    """Leave the row as a process killed inside the provider call leaves it: claimed, started, no outcome."""
    now = sapa.clock.now()
    with sapa.database.unit_of_work() as session:
        item = session.get_one(OutboxItem, item_id)
        if reached_provider:
            sapa.dispatcher.channels[item.channel].send(to_outbound(item, window_open=True))
        item.status, item.claimed_by, item.claimed_at, item.attempts = "sending", "dead-worker", now, 1
        item.send_started_at = now
    sapa.clock.advance(timedelta(seconds=sapa.settings.outbox.claim_timeout_s + 1))


def row(sapa: Sapa, item_id: int) -> OutboxItem:
    with sapa.database.unit_of_work(read_only=True) as session:
        return session.get_one(OutboxItem, item_id)


def sent_to(fakes: FakeProviders, provider: str, address: str) -> list[str]:
    key, field = ("chat_id", "text") if provider == "telegram" else ("To", "Body")
    return [str(r.params.get(field)) for r in fakes.sent(provider) if str(r.params.get(key, "")).endswith(address)]


@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
def test_crm_4_3_an_interrupted_broadcast_send_that_reached_twilio_is_not_sent_again(sapa, fakes, channel):
    item_id = queue_broadcast(sapa, channel, ADDRESS[channel], "Promo akhir tahun: poin ganda!")
    crash_mid_send(sapa, item_id, reached_provider=True)
    assert sent_to(fakes, "twilio", ADDRESS[channel]) == ["Promo akhir tahun: poin ganda!"]

    sapa.dispatcher.run_once()

    assert sent_to(fakes, "twilio", ADDRESS[channel]) == ["Promo akhir tahun: poin ganda!"]  # still one
    settled = row(sapa, item_id)
    assert settled.status == "sent" and settled.provider_message_id.startswith("SM")
    lookups = [r for r in fakes.requests("twilio") if r.method == "Messages.list"]
    assert len(lookups) == 1 and lookups[0].params["To"].endswith(ADDRESS[channel])


def test_crm_4_3_an_interrupted_broadcast_send_that_never_reached_twilio_is_sent_once(sapa, fakes):
    item_id = queue_broadcast(sapa, "sms", ADDRESS["sms"], "Promo akhir tahun: poin ganda!")
    crash_mid_send(sapa, item_id, reached_provider=False)

    sapa.dispatcher.run_once()

    assert sent_to(fakes, "twilio", ADDRESS["sms"]) == ["Promo akhir tahun: poin ganda!"]
    assert row(sapa, item_id).status == "sent"


def test_crm_4_3_an_interrupted_telegram_broadcast_is_failed_with_the_reason_not_repeated(sapa, fakes):
    item_id = queue_broadcast(sapa, "telegram", ADDRESS["telegram"], "Promo akhir tahun: poin ganda!")
    crash_mid_send(sapa, item_id, reached_provider=True)

    sapa.dispatcher.run_once()

    assert sent_to(fakes, "telegram", ADDRESS["telegram"]) == ["Promo akhir tahun: poin ganda!"]
    failed = row(sapa, item_id)
    assert failed.status == "failed"
    assert "cannot tell whether it arrived" in (failed.last_error or "")


def test_crm_4_3_a_failed_lookup_keeps_the_row_unresolved_and_asks_again(sapa, fakes):
    item_id = queue_broadcast(sapa, "sms", ADDRESS["sms"], "Promo akhir tahun: poin ganda!")
    crash_mid_send(sapa, item_id, reached_provider=True)
    fakes.fail_next("twilio", 503, method="Messages.list")

    sapa.dispatcher.run_once()
    waiting = row(sapa, item_id)
    assert waiting.status == "pending" and waiting.send_started_at is not None  # not forgotten
    sapa.clock.set(waiting.next_attempt_at + timedelta(milliseconds=1))
    sapa.dispatcher.run_once()

    assert sent_to(fakes, "twilio", ADDRESS["sms"]) == ["Promo akhir tahun: poin ganda!"]
    assert row(sapa, item_id).status == "sent"


def test_crm_4_3_broadcasts_are_paced_at_their_channel_rate_while_replies_are_not_held_to_it(sapa, fakes):
    """rate_per_second 5 for broadcasts, a tenth of a second's burst (rounded up to one message): of 12 due at once
    one goes now and then one every 0.2 s, however long the dispatcher was away; replies go at Telegram's own
    limit."""
    ids = [queue_broadcast(sapa, "telegram", str(800000 + n), f"Promo {n}") for n in range(12)]
    replies = [queue_broadcast(sapa, "telegram", str(900000 + n), f"Jawaban {n}", purpose="reply")
               for n in range(8)]

    sapa.dispatcher.run_once()

    statuses = {item_id: row(sapa, item_id).status for item_id in ids + replies}
    assert sum(statuses[i] == "sent" for i in ids) == 1
    assert all(statuses[i] == "sent" for i in replies)  # Telegram's own limit (30/s) still has room for them
    sapa.clock.advance(timedelta(seconds=1))  # a second away does not save up a second's worth
    sapa.dispatcher.run_once()
    assert sum(row(sapa, i).status == "sent" for i in ids) == 2
    for _ in range(5):
        sapa.clock.advance(timedelta(seconds=0.2))
        sapa.dispatcher.run_once()
    assert sum(row(sapa, i).status == "sent" for i in ids) == 7
    sent_times = sorted(row(sapa, i).sent_at for i in ids if row(sapa, i).sent_at is not None)
    gaps = [later - earlier for earlier, later in zip(sent_times, sent_times[1:], strict=False)]
    assert all(gap >= timedelta(seconds=0.2) for gap in gaps)


def test_crm_4_3_a_crash_after_several_twilio_sends_started_sends_each_customer_one_copy(sapa, fakes):
    """Twilio rows of a pass start together; a crash can leave several unresolved: each is looked up once."""
    numbers = ["+6281234500001", "+6281234500002", "+6281234500003"]
    ids = [queue_broadcast(sapa, "sms", number, f"Promo untuk {number[-2:]}") for number in numbers]
    crash_mid_send(sapa, ids[0], reached_provider=True)  # the first went out, then the process died
    for item_id in ids[1:]:
        crash_mid_send(sapa, item_id, reached_provider=False)  # started with it, never sent

    for _ in range(3):
        sapa.dispatcher.run_once()
        sapa.clock.advance(timedelta(seconds=1))

    assert [sent_to(fakes, "twilio", number) for number in numbers] == [
        [f"Promo untuk {number[-2:]}"] for number in numbers]
    assert {row(sapa, item_id).status for item_id in ids} == {"sent"}
    assert len([r for r in fakes.requests("twilio") if r.method == "Messages.list"]) == 3


def test_crm_4_3_a_broadcast_row_held_back_by_the_rate_is_not_looked_up_later(sapa, fakes):
    """Rows started together but held back by the broadcast rate did not go: no lookup, just sent later."""
    ids = [queue_broadcast(sapa, "sms", f"+62812345000{n:02d}", f"Promo {n}") for n in range(4)]
    for _ in range(6):
        sapa.dispatcher.run_once()
        sapa.clock.advance(timedelta(seconds=0.2))

    assert {row(sapa, item_id).status for item_id in ids} == {"sent"}
    assert len(fakes.sent("twilio")) == 4
    assert [r for r in fakes.requests("twilio") if r.method == "Messages.list"] == []
