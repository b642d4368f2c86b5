"""CRM-4.3: segmented broadcasts over WhatsApp, SMS and Telegram, through the real outbox to the fake providers.

Customers write in over the real webhooks (identities, WhatsApp windows); marketing consent is recorded with
store.consents (as the consent question does); STOP goes through the real chat. ManualClock starts Monday
2026-01-05 09:00 WIB.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.app import Sapa, build
from handlers import broadcasts
from store.broadcasts import BroadcastError
from store.consents import record
from store.customers import find_identity
from store.models import Broadcast, BroadcastRecipient, ChannelIdentity, Customer, Message, OutboxItem
from tests.support.population import BROADCAST_TEMPLATE, broadcast_settings
from tests.support.providers import ProviderCustomer, drain
from tests.support.slack import Slack

MESSAGES = {"id": "Halo {{ name }}, poin Anda {{ points }}. Promo akhir tahun di {{ company }}!",
            "en": "Hi {{ name }}, you have {{ points }} points. Year-end offer at {{ company }}!"}
FOOTER = "Balas STOP untuk berhenti menerima info promo dari PT Contoh Sejahtera."


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database, overrides) -> Iterator[Sapa]:
    sapa = build(broadcast_settings(db_url, fakes, **overrides), clock=clock, interpreter=interpreter,
                 database=database, model_cache=None)
    yield sapa
    sapa.stop_background()


def person(client, fakes, sapa: Sapa, channel: str, address: str, name: str, *, consent: bool = True
           ) -> ProviderCustomer:
    """Someone who wrote in on `channel` and (by default) agreed to marketing."""
    who = ProviderCustomer(client, fakes, channel, address, name)
    assert who.write("halo") == 200
    with sapa.database.unit_of_work() as session:
        identity = find_identity(session, channel, address)
        assert identity is not None
        customer = session.get_one(Customer, identity.customer_id)
        customer.name = name
        if consent:
            record(session, customer.id, "marketing", True, channel=channel, evidence="ya",
                   now=sapa.clock.now())
    return who


def create(sapa: Sapa, **kwargs: Any) -> int:
    args: dict[str, Any] = {"name": "Promo akhir tahun", "messages": MESSAGES, "channels": ["whatsapp", "sms",
                                                                                            "telegram"],
                            "filters": {}, "created_by": "test"}
    args.update(kwargs)
    with sapa.database.unit_of_work() as session:
        return broadcasts.create(session, sapa.settings, now=sapa.clock.now(), **args).id


def do(sapa: Sapa, operation: Any, broadcast_id: int, **kwargs: Any) -> Broadcast:
    with sapa.database.unit_of_work() as session:
        return operation(session, sapa.settings, broadcast_id, now=sapa.clock.now(), actor="test", **kwargs)


def run(sapa: Sapa, clock: Any, broadcast_id: int, rounds: int = 60) -> str:
    """The scheduler and the outbox until the broadcast is done (or stops moving)."""
    for _ in range(rounds):
        sapa.runner.run_due()
        drain(sapa, clock, rounds=400)
        with sapa.database.unit_of_work(read_only=True) as session:
            status = session.get_one(Broadcast, broadcast_id).status
        if status in ("done", "cancelled", "paused"):
            return status
        clock.advance(timedelta(seconds=3))
    return status


def broadcast_texts(who: ProviderCustomer) -> list[str]:
    return [t for t in who.texts() if "Promo akhir tahun" in t or "Year-end offer" in t]


def recipients(sapa: Sapa, broadcast_id: int) -> dict[int, BroadcastRecipient]:
    with sapa.database.unit_of_work(read_only=True) as session:
        return {r.customer_id: r for r in session.execute(
            select(BroadcastRecipient).where(BroadcastRecipient.broadcast_id == broadcast_id)).scalars()}


def customer_of(sapa: Sapa, channel: str, address: str) -> int:
    with sapa.database.unit_of_work(read_only=True) as session:
        identity = find_identity(session, channel, address)
        assert identity is not None
        return identity.customer_id


# --- end to end --------------------------------------------------------------------------------------------------


def test_crm_4_3_broadcast_reaches_each_consenting_customer_once_on_their_channel(client, fakes, sapa, clock):
    telegram = [person(client, fakes, sapa, "telegram", str(5000 + i), f"Tele {i}") for i in range(8)]
    sms = [person(client, fakes, sapa, "sms", f"+6281300000{i:02d}", f"Esem {i}") for i in range(6)]
    closed = [person(client, fakes, sapa, "whatsapp", f"+6281400000{i:02d}", f"Wati {i}") for i in range(6)]
    clock.advance(timedelta(hours=25))  # their WhatsApp windows close
    open_ = [person(client, fakes, sapa, "whatsapp", f"+6281500000{i:02d}", f"Wawan {i}") for i in range(6)]
    stopped = person(client, fakes, sapa, "telegram", "5999", "Stop Saja")
    assert stopped.write("STOP") == 200
    never = person(client, fakes, sapa, "sms", "+628130000099", "Tanpa Izin", consent=False)
    drain(sapa, clock)

    broadcast_id = create(sapa)
    do(sapa, broadcasts.schedule, broadcast_id)
    assert run(sapa, clock, broadcast_id) == "done"

    for who in [*telegram, *sms, *open_]:
        assert broadcast_texts(who) == [MESSAGES["id"].replace("{{ name }}", who.name).replace("{{ points }}", "0")
                                        .replace("{{ company }}", "PT Contoh Sejahtera") + "\n\n" + FOOTER]
    for who in closed:  # outside 24 hours: the approved `broadcast` template, with the name and the text
        sent = [r for r in who.received() if r.params.get("ContentSid") == BROADCAST_TEMPLATE]
        assert len(sent) == 1
        assert who.name in str(sent[0].params.get("ContentVariables"))
    assert broadcast_texts(stopped) == [] and broadcast_texts(never) == []
    found = recipients(sapa, broadcast_id)
    assert found[customer_of(sapa, "telegram", "5999")].skip_reason == "opted_out"
    assert found[customer_of(sapa, "sms", "+628130000099")].skip_reason == "no_consent"
    assert sum(r.status == "queued" for r in found.values()) == 26
    with sapa.database.unit_of_work(read_only=True) as session:
        logged = session.execute(select(func.count()).select_from(Message).where(
            Message.sender == "system", Message.direction == "out")).scalar_one()
        statuses = set(session.execute(select(OutboxItem.status).where(
            OutboxItem.id.in_([r.outbox_id for r in found.values() if r.outbox_id]))).scalars())
    assert logged == 26 and statuses == {"sent"}
    # A reply opens a normal bot conversation: the broadcast's own conversation is closed history.
    assert telegram[0].write("terima kasih") == 200
    drain(sapa, clock)
    assert len(telegram[0].texts()) > 2


def test_crm_4_3_channel_preference_phone_only_customers_and_unreachable(client, fakes, sapa, clock):
    both = person(client, fakes, sapa, "telegram", "6001", "Dua Kanal")
    both_id = customer_of(sapa, "telegram", "6001")
    dead = person(client, fakes, sapa, "telegram", "6002", "Blokir")
    with sapa.database.unit_of_work() as session:
        session.add(ChannelIdentity(customer_id=both_id, channel="sms", address="+628160000001",
                                    created_at=clock.now()))
        identity = find_identity(session, "telegram", "6002")
        assert identity is not None
        identity.undeliverable_reason = "bot blocked by the user"
        phone_only = Customer(name="Hanya Telepon", phone="+628170000001", source="import", is_vip=False,
                              created_at=clock.now(), updated_at=clock.now())
        session.add(phone_only)
        session.flush()
        record(session, phone_only.id, "marketing", True, channel="import", evidence="form", now=clock.now())
        phone_only_id = phone_only.id

    broadcast_id = create(sapa, channels=["sms", "telegram"])
    with sapa.database.unit_of_work() as session:
        preview = broadcasts.preview(session, sapa.settings, broadcast_id, clock.now())
    assert preview["by_channel"] == {"sms": 2, "telegram": 0} and preview["skipped"] == {"no_channel": 1}
    do(sapa, broadcasts.schedule, broadcast_id)
    assert run(sapa, clock, broadcast_id) == "done"
    found = recipients(sapa, broadcast_id)
    assert (found[both_id].channel, found[both_id].address) == ("sms", "+628160000001")  # sms before telegram
    assert (found[phone_only_id].channel, found[phone_only_id].status) == ("sms", "queued")
    assert found[customer_of(sapa, "telegram", "6002")].skip_reason == "no_channel"
    assert broadcast_texts(both) == [] and broadcast_texts(dead) == []
    sms_bodies = [str(r.params.get("Body")) for r in fakes.sent("twilio") if r.params.get("To") == "+628170000001"]
    assert len(sms_bodies) == 1 and sms_bodies[0].startswith("Halo Hanya Telepon")


@pytest.mark.parametrize("overrides", [{"max_per_customer": 1}])
def test_crm_4_3_frequency_cap_skips_customers_who_had_enough(client, fakes, sapa, clock):
    first = person(client, fakes, sapa, "telegram", "6101", "Sering")
    first_id = customer_of(sapa, "telegram", "6101")
    earlier = create(sapa, filters={"channel": "telegram"})
    do(sapa, broadcasts.schedule, earlier)
    assert run(sapa, clock, earlier) == "done"
    clock.advance(timedelta(days=2))  # still within cap_days (7)
    later = create(sapa, name="Promo kedua")
    do(sapa, broadcasts.schedule, later)
    assert run(sapa, clock, later) == "done"
    assert recipients(sapa, later)[first_id].skip_reason == "frequency_cap"
    assert len(broadcast_texts(first)) == 1


def test_crm_4_3_quiet_hours_in_the_customers_timezone(client, fakes, sapa, clock):
    jakarta = person(client, fakes, sapa, "telegram", "6201", "Jakarta")
    papua = person(client, fakes, sapa, "telegram", "6202", "Jayapura")
    with sapa.database.unit_of_work() as session:
        session.get_one(Customer, customer_of(sapa, "telegram", "6202")).timezone = "Asia/Jayapura"
    clock.advance(timedelta(hours=11, minutes=30))  # 20:30 WIB = 22:30 WIT
    broadcast_id = create(sapa, channels=["telegram"])
    do(sapa, broadcasts.schedule, broadcast_id)
    sapa.runner.run_due()
    sapa.runner.run_due()
    drain(sapa, clock)
    assert len(broadcast_texts(jakarta)) == 1 and broadcast_texts(papua) == []
    waiting = recipients(sapa, broadcast_id)[customer_of(sapa, "telegram", "6202")]
    assert waiting.not_before is not None
    assert waiting.not_before.astimezone(ZoneInfo("Asia/Jayapura")).strftime("%d %H:%M") == "06 08:00"
    clock.set(waiting.not_before + timedelta(seconds=1))
    assert run(sapa, clock, broadcast_id) == "done"
    assert len(broadcast_texts(papua)) == 1


@pytest.mark.parametrize("overrides", [{"queue_batch": 10}])
def test_crm_4_3_pause_resume_and_cancel(client, fakes, sapa, clock):
    people = [person(client, fakes, sapa, "telegram", str(6300 + i), f"Orang {i}") for i in range(25)]
    drain(sapa, clock)
    broadcast_id = create(sapa, channels=["telegram"])
    do(sapa, broadcasts.schedule, broadcast_id)
    sapa.runner.run_due()  # select
    sapa.runner.run_due()  # first batch of 10 into the outbox
    do(sapa, broadcasts.pause, broadcast_id)
    for _ in range(3):
        sapa.runner.run_due()
        drain(sapa, clock)
    assert sum(len(broadcast_texts(p)) for p in people) == 0  # parked, none claimed
    with pytest.raises(BroadcastError) as refused:
        do(sapa, broadcasts.pause, broadcast_id)
    assert refused.value.kind == "state"
    do(sapa, broadcasts.resume, broadcast_id)
    sapa.runner.run_due()
    drain(sapa, clock)
    sent = sum(len(broadcast_texts(p)) for p in people)
    assert 10 <= sent < 25
    do(sapa, broadcasts.cancel, broadcast_id)
    assert run(sapa, clock, broadcast_id) == "cancelled"
    assert sum(len(broadcast_texts(p)) for p in people) == sent
    found = recipients(sapa, broadcast_id).values()
    assert sum(r.skip_reason == "cancelled" for r in found) + sum(r.status == "queued" for r in found) == 25
    with pytest.raises(BroadcastError):
        do(sapa, broadcasts.resume, broadcast_id)


@pytest.mark.parametrize("overrides", [{"queue_batch": 10}])
def test_crm_4_3_stop_during_a_broadcast_is_respected_at_queueing(client, fakes, sapa, clock):
    people = [person(client, fakes, sapa, "telegram", str(6400 + i), f"Orang {i}") for i in range(15)]
    drain(sapa, clock)
    broadcast_id = create(sapa, channels=["telegram"])
    do(sapa, broadcasts.schedule, broadcast_id)
    sapa.runner.run_due()  # select + first batch
    found = recipients(sapa, broadcast_id)
    late = next(p for p in people if found[customer_of(sapa, "telegram", p.address)].status == "pending")
    assert late.write("STOP") == 200
    assert run(sapa, clock, broadcast_id) == "done"
    assert broadcast_texts(late) == []
    assert recipients(sapa, broadcast_id)[customer_of(sapa, "telegram", late.address)].skip_reason == "opted_out"


@pytest.mark.parametrize("overrides", [{"queue_batch": 10}])
def test_crm_4_3_a_crash_mid_feed_then_rerun_sends_nobody_twice(client, fakes, sapa, clock, monkeypatch):
    people = [person(client, fakes, sapa, "sms", f"+6281800000{i:02d}", f"Orang {i}") for i in range(24)]
    drain(sapa, clock, rounds=400)
    broadcast_id = create(sapa, channels=["sms"])
    do(sapa, broadcasts.schedule, broadcast_id)
    real, calls = broadcasts.render_message, {"n": 0}

    def crashing(*args: Any, **kwargs: Any) -> Any:  # the process dies after 15 rendered rows
        calls["n"] += 1
        if calls["n"] > 15:
            raise RuntimeError("killed mid-feed")
        return real(*args, **kwargs)

    monkeypatch.setattr(broadcasts, "render_message", crashing)
    for _ in range(3):
        sapa.runner.run_due()
    found = recipients(sapa, broadcast_id).values()
    assert sum(r.status == "queued" for r in found) == 10  # the second batch rolled back whole
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.execute(select(func.count()).select_from(OutboxItem).where(
            OutboxItem.channel == "sms", OutboxItem.payload.is_not(None),
            OutboxItem.id.in_([r.outbox_id for r in found if r.outbox_id]))).scalar_one() == 10
    monkeypatch.setattr(broadcasts, "render_message", real)
    clock.advance(timedelta(minutes=2))  # the failed task's retry, or the watch, picks the feed up again
    sapa.scheduler.schedule_periodic(broadcasts.WATCH)
    assert run(sapa, clock, broadcast_id) == "done"
    for who in people:
        assert len(broadcast_texts(who)) == 1


# --- create, preview, test -----------------------------------------------------------------------------------


def test_crm_4_3_create_refuses_bad_input_with_clear_errors(client, fakes, sapa, clock):
    cases = [
        ({"channels": ["webchat"]}, "web chat cannot receive broadcasts"),
        ({"messages": {"en": "Hi"}}, "messages.id: the default language's text is required"),
        ({"messages": {"id": "Halo {{ alamat }}"}}, "unknown variable alamat"),
        ({"messages": {"id": "Halo {{ name "}}, "does not parse"),
        ({"messages": {"id": "Halo", "fr": "Salut"}}, "messages.fr: not one of the languages"),
        ({"filters": {"colour": "red"}}, "unknown filter 'colour'"),
        ({"segment": "nope", "filters": None}, "no saved segment named 'nope'"),
    ]
    for change, expected in cases:
        with pytest.raises(BroadcastError) as exc:
            create(sapa, **change)
        assert expected in str(exc.value)
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.execute(select(func.count()).select_from(Broadcast)).scalar_one() == 0


def test_crm_4_3_preview_and_a_test_send_to_ones_own_number(client, fakes, sapa, clock):
    person(client, fakes, sapa, "telegram", "6501", "Budi")
    broadcast_id = create(sapa)
    with sapa.database.unit_of_work() as session:
        shown = broadcasts.preview(session, sapa.settings, broadcast_id, clock.now())
    assert shown["by_channel"] == {"whatsapp": 0, "sms": 0, "telegram": 1}
    assert shown["samples"]["en"].startswith("Hi Budi, you have 0 points. Year-end offer at PT Contoh Sejahtera!")
    with sapa.database.unit_of_work() as session:
        broadcasts.send_test(session, sapa.settings, broadcast_id, channel="whatsapp", to="0812-9999-0000",
                             now=clock.now(), actor="test", language="en")
    drain(sapa, clock)
    mine = ProviderCustomer(client, fakes, "whatsapp", "+6281299990000", "Saya")
    sent = mine.received()
    assert len(sent) == 1 and sent[0].params.get("ContentSid") == BROADCAST_TEMPLATE  # no window: the template
    with sapa.database.unit_of_work(read_only=True) as session:
        message = session.execute(select(Message).where(Message.sender == "system")).scalar_one()
        assert message.meta == {"broadcast_id": broadcast_id, "test": True}
        assert session.execute(select(func.count()).select_from(BroadcastRecipient)).scalar_one() == 0
        assert session.get_one(Broadcast, broadcast_id).status == "draft"


# --- Slack -------------------------------------------------------------------------------------------------------


def test_crm_4_3_slack_broadcast_for_marketing_only(client, fakes, sapa, clock):
    slack = Slack(client, fakes, sapa, clock)
    person(client, fakes, sapa, "telegram", "6601", "Budi")
    refused = slack.command("U0RINA", "broadcast list")["text"]
    assert "for marketing, supervisors and management; your role is customer service" in refused
    made = slack.command("U0MKT", 'broadcast create Promo Natal --filter channel=telegram '
                                  '--message-id "Halo {{ name }}, ada promo Natal!" --channels telegram')["text"]
    assert "created as a draft" in made and "1 would receive it (telegram 1)" in made
    with sapa.database.unit_of_work(read_only=True) as session:
        broadcast_id = session.execute(select(Broadcast.id)).scalar_one()
    assert "scheduled" in slack.command("U0MKT", f"broadcast schedule {broadcast_id}")["text"]
    assert run(sapa, clock, broadcast_id) == "done"
    assert "done" in slack.command("U0BOSS", f"broadcast status {broadcast_id}")["text"]
    assert "is done: cannot resume" in slack.command("U0MKT", f"broadcast resume {broadcast_id}")["text"]
    segment = slack.command("U0MKT", "segment create tele channel=telegram")["text"]
    assert "Segment tele saved" in segment and "1 customers match" in segment
    assert "Not done: filter 'min_points'" in slack.command("U0MKT", "segment create x min_points=lots")["text"]
