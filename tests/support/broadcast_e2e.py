"""A whole broadcast against real `sapa serve` processes and the fake providers, killed mid-send and restarted.

Shared by the test suite (tests/handlers/test_broadcast_end_to_end.py) and the benchmark (bench/broadcast.py).
The population (tests/support/population.py) mixes channels, consent states, languages and open and closed
WhatsApp windows; the checks are what customers and providers would notice: everyone eligible got exactly one
message (in their language; the approved template where the WhatsApp window is closed), nobody else got any, and
no channel ever went faster than its broadcast rate.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import Engine, create_engine, func, select

from bot.devtools.fake_providers import FakeProviders, Recorded
from bot.outbox import BROADCAST_BURST_S
from store import create_database
from store.migrate import upgrade
from store.models import Broadcast, BroadcastRecipient, OutboxItem
from tests.support.population import BROADCAST_TEMPLATE, Population, populate
from tests.support.providers import SECRETS, TWILIO_TOKEN, channel_config
from tests.support.server import running_sapa, wait_for

CHANNELS = ("whatsapp", "sms", "telegram")
API_TOKEN = "broadcast-e2e-api-token"
TEXTS = {"id": "Halo {{ name }}, poin Anda dobel minggu ini di {{ company }}!",
         "en": "Hi {{ name }}, double points this week at {{ company }}!"}
OVERLAY = "broadcast-e2e.yml"
INTERRUPTED = "interrupted by a crash"  # the outbox's reason for a Telegram send it cannot confirm


@dataclass
class Result:
    """What one run measured and found; `problems` is empty when every check held."""

    customers: int
    eligible: int
    rate: float
    select_s: float = 0.0  # "schedule" answered -> every customer is a recipient (pending or skipped)
    queue_s: float = 0.0  # selected -> no recipient pending (each queued into the outbox or skipped)
    send_s: float = 0.0  # first provider request -> last (the restart's start-up included)
    sent: int = 0  # provider requests that succeeded
    sent_per_s: float = 0.0  # per channel, messages over that channel's busy time, summed
    killed_after: int = 0  # provider requests before the kill
    reconciled: int = 0  # interrupted Twilio sends settled by asking Twilio after the restart
    lost_unconfirmed: int = 0  # interrupted Telegram sends marked failed, not repeated
    busiest_second: dict[str, tuple[int, float]] = field(default_factory=dict)  # channel -> (most in 1 s, rate)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def overlay(fakes: FakeProviders, rate: float) -> dict[str, Any]:
    """config.yml on the fakes: quiet hours off (the test must not depend on the hour it runs), a high frequency
    cap, the approved WhatsApp `broadcast` template, and `rate` broadcast messages per second per channel (the
    providers' own limits set well above it, so the broadcast rate is the one that binds)."""
    channels = channel_config(fakes)
    channels["sms"]["messages_per_second"] = rate * 4
    channels["whatsapp"]["messages_per_second"] = rate * 4
    channels["whatsapp"]["templates"]["broadcast"] = {
        lang: {"content_sid": BROADCAST_TEMPLATE, "variables": ["name", "text"]} for lang in ("id", "en")}
    channels["telegram"]["global_per_second"] = rate * 4
    return {
        "extends": "config.yml",
        "server": {"public_base_url": None},
        "channels": channels,
        "broadcasts": {"quiet_start": "00:00", "quiet_end": "00:00", "max_per_customer": 50, "cap_days": 1,
                       "rate_per_second": {name: rate for name in CHANNELS}},
        "outbox": {"poll_interval_s": 0.05, "batch_size": 200, "claim_timeout_s": 3.0},
        "scheduler": {"poll_interval_s": 0.2},
        "surveys": {"nps": {"enabled": False}},
    }


def most_in_one_second(times: list[float]) -> int:
    """The largest number of `times` inside any window of one second."""
    ordered, best, first = sorted(times), 0, 0
    for last, moment in enumerate(ordered):
        while moment - ordered[first] >= 1.0:
            first += 1
        best = max(best, last - first + 1)
    return best


def recipient_of(request: Recorded) -> tuple[str, str]:
    if request.provider == "telegram":
        return "telegram", str(request.params.get("chat_id"))
    to = str(request.params.get("To", ""))
    return ("whatsapp", to.removeprefix("whatsapp:")) if to.startswith("whatsapp:") else ("sms", to)


def _sends(fakes: FakeProviders) -> list[Recorded]:
    return [*fakes.sent("twilio"), *fakes.sent("telegram")]


def run_broadcast(workdir: Path, *, customers: int, rate: float, kill_at: float = 0.4,
                  log: Any = print) -> Result:
    """Populate `customers`, broadcast to all of them through two `sapa serve` lives (the first SIGKILLed after
    `kill_at` of the eligible were sent), and check what the fake providers received."""
    url = f"sqlite:///{workdir / 'sapa.db'}"
    upgrade(url)
    now = datetime.now(UTC)
    database = create_database(url)
    english = customers // 10  # a tenth have English as their profile language
    people = populate(database, customers - english, now=now)
    people_en = populate(database, english, now=now, start=customers - english, language="en")
    database.dispose()
    people.merge(people_en)
    result = Result(customers=customers, eligible=len(people.eligible), rate=rate)
    log(f"populated {customers} customers, {result.eligible} eligible")
    env = {**SECRETS, "SAPA_API_TOKEN": API_TOKEN}
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    with FakeProviders(twilio_auth_token=TWILIO_TOKEN) as fakes:
        (workdir / OVERLAY).write_text(yaml.safe_dump(overlay(fakes, rate)))
        with running_sapa(workdir, config=OVERLAY, env=env) as server, \
                httpx.Client(base_url=server.base_url, headers=headers, trust_env=False, timeout=60) as api:
            made = api.post("/api/broadcasts", json={"name": "Poin dobel", "filters": {}, "messages": TEXTS,
                                                     "channels": list(CHANNELS)})
            assert made.status_code == 201, made.text
            broadcast_id = int(made.json()["id"])
            preview = api.post(f"/api/broadcasts/{broadcast_id}/preview").json()
            if preview["recipients"] != result.eligible:
                result.problems.append(f"preview promised {preview['recipients']} recipients, "
                                       f"{result.eligible} are eligible")
            scheduled = api.post(f"/api/broadcasts/{broadcast_id}/schedule")
            assert scheduled.status_code == 200, scheduled.text
            _time_selection(result, url, broadcast_id, customers, started=time.monotonic())
            kill_after = max(1, int(result.eligible * kill_at))
            wait_for(lambda: len(_sends(fakes)) >= kill_after, f"{kill_after} messages before the kill",
                     timeout_s=60 + kill_after / rate * 2)
            assert server.process is not None
            server.process.kill()  # SIGKILL: no shutdown code runs
            server.process.wait(timeout=30)
            result.killed_after = len(_sends(fakes))
            log(f"killed after {result.killed_after} messages")
        with running_sapa(workdir, config=OVERLAY, env=env) as server, \
                httpx.Client(base_url=server.base_url, headers=headers, trust_env=False, timeout=60) as api:
            left = result.eligible - result.killed_after
            # The database is watched, not the API: its statistics are computed per call, and polling them
            # would take the CPU the sending needs. Marketing's view is read once at the end.
            watcher = create_engine(url)
            try:
                wait_for(lambda: _status(watcher, broadcast_id) == "done", "the broadcast to finish after the restart",
                         timeout_s=120 + left / rate * 2)
            finally:
                watcher.dispose()
            stats = api.get(f"/api/broadcasts/{broadcast_id}").json()["stats"]
            seen = {k: stats[k] for k in ("recipients", "queued", "skipped", "pending")}
            expected = {"recipients": customers, "queued": result.eligible,
                        "skipped": customers - result.eligible, "pending": 0}
            if seen != expected or stats["sent"] + stats["failed"] != result.eligible:
                result.problems.append(f"the broadcast's statistics say {seen}, sent {stats['sent']}, failed "
                                       f"{stats['failed']}; expected {expected}")
        _check(result, fakes, people, url, broadcast_id)
    return result


def _status(engine: Engine, broadcast_id: int) -> str:
    with engine.connect() as connection:
        return str(connection.execute(select(Broadcast.status).where(Broadcast.id == broadcast_id)).scalar_one())


def _time_selection(result: Result, url: str, broadcast_id: int, customers: int, started: float) -> None:
    """Watch the database (read-only) from the schedule call until every customer is a recipient (selected) and
    none is pending any more (queued into the outbox or skipped with a reason)."""
    engine = create_engine(url)
    mine = BroadcastRecipient.broadcast_id == broadcast_id
    count = select(func.count()).select_from(BroadcastRecipient).where(mine)
    selected = None
    try:
        deadline = started + 600
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                if selected is None and connection.execute(count).scalar_one() >= customers:
                    selected = time.monotonic()
                    result.select_s = selected - started
                if selected is not None and not connection.execute(
                        count.where(BroadcastRecipient.status == "pending")).scalar_one():
                    result.queue_s = time.monotonic() - selected
                    return
            time.sleep(0.1)
        result.problems.append("recipients were not all selected and queued within 10 minutes")
    finally:
        engine.dispose()


def _check(result: Result, fakes: FakeProviders, people: Population, url: str, broadcast_id: int) -> None:
    sends = _sends(fakes)
    result.sent = len(sends)
    got = Counter(recipient_of(r) for r in sends)
    eligible = set(people.eligible)
    database = create_database(url)
    with database.unit_of_work(read_only=True) as session:
        if session.get_one(Broadcast, broadcast_id).status != "done":
            result.problems.append("the broadcast is not done")
        unconfirmed = {(str(channel), str(address)) for channel, address in session.execute(
            select(OutboxItem.channel, OutboxItem.recipient).where(
                OutboxItem.status == "failed", OutboxItem.last_error.like(f"%{INTERRUPTED}%")))}
        result.lost_unconfirmed = len(unconfirmed)
    database.dispose()
    for customer_id, (channel, address) in people.addresses.items():
        n = got.get((channel, address), 0)
        if customer_id in eligible and n != 1 and not (n == 0 and (channel, address) in unconfirmed):
            result.problems.append(f"eligible customer {customer_id} on {channel} got {n} messages")
        if customer_id not in eligible and n:
            why = "opted out" if customer_id in people.opted_out else "no consent"
            result.problems.append(f"customer {customer_id} ({why}) got {n} messages")
    if len(unconfirmed) > 1:  # one process killed once: at most the one send it was inside
        result.problems.append(f"{len(unconfirmed)} sends left unconfirmed by one kill (at most 1 expected)")
    languages = {cid: ("en" if cid in people.english else "id") for cid in people.customer_ids}
    by_address = {addr: cid for cid, addr in people.addresses.items()}
    for request in sends:
        channel, address = recipient_of(request)
        customer_id = by_address.get((channel, address))
        if customer_id is None:
            result.problems.append(f"a message to an unknown address on {channel}")
            continue
        closed = customer_id in people.window_closed
        body = str(request.params.get("Body") or request.params.get("text") or "")
        if closed and request.params.get("ContentSid") != BROADCAST_TEMPLATE:
            result.problems.append(f"customer {customer_id}: closed WhatsApp window without the approved template")
        if not closed:
            greeting = "Hi " if languages[customer_id] == "en" else "Halo "
            if not body.startswith(greeting + f"Pelanggan {people.index_of[customer_id]}"):
                result.problems.append(f"customer {customer_id}: unexpected text {body[:60]!r}")
    starts = [r.at for r in sends]
    result.send_s = max(starts) - min(starts) if starts else 0.0
    for channel in CHANNELS:
        times = [r.at for r in sends if recipient_of(r)[0] == channel]
        result.busiest_second[channel] = (most_in_one_second(times), result.rate)
        if times and max(times) > min(times):
            result.sent_per_s += len(times) / (max(times) - min(times))
        # The broadcast bucket holds a tenth of a second's worth (bot/outbox.py BROADCAST_BURST_S); 2 more for
        # the jitter between when a send left and when the fake wrote down its arrival.
        if most_in_one_second(times) > result.rate * (1 + BROADCAST_BURST_S) + 2:
            result.problems.append(f"{channel}: {most_in_one_second(times)} messages in one second, "
                                   f"rate {result.rate}/s")
    result.reconciled = len(fakes.requests("twilio", "Messages.list"))
