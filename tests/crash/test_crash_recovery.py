"""Issue 15, crash tests: real `sapa serve` processes on the throwaway PostgreSQL, the fake providers, and a
provider-like load of signed webhooks (SMS, WhatsApp, Telegram; distinct customers, several messages each,
sent concurrently and re-delivered until acknowledged with a 2xx: tests/support/serve.py).

1. The server is SIGKILLed three times, at seeded points of the load (around 25%, 50% and 75% of the messages
   acknowledged), and started again each time on the same port; the outbox then drains.
2. PostgreSQL is restarted with `pg_ctl restart -m immediate` mid-load while one `sapa serve` keeps running; it
   must recover by itself (the pool renewed after the first disconnect and idle connections pinged, store/db.py;
   the webhook's 503 and the provider's re-delivery; the outbox's retry).

Then every reply is accounted for, per channel, by joining the database with what the fake providers received:

- lost: an acknowledged inbound message Sapa has no row for, or a reply that never reached the provider and
  whose outbox row says neither "still to send" nor "unconfirmed" (sent without a copy at the provider, failed);
- doubled: copies at the provider beyond one per reply (Twilio: sids that no reply row records; Telegram: more
  messages with a reply's text to its chat than rows with that text);
- unsent: replies still pending or sending when the drain timed out;
- unconfirmed: replies the outbox could not confirm after a crash and did not repeat (Telegram, at most once).

Twilio channels must show 0 lost, 0 doubled, 0 unsent (a lookup before a resend makes them exactly once);
Telegram must show 0 doubled, and every reply that did not arrive must be `unconfirmed` in the outbox.
The counts are printed and written to var/adversarial/crash-<name>.json.

SAPA_CRASH_MESSAGES sets the load (default 120, `make soak` runs 1,000+); SAPA_CRASH_SEED the seed.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml
from sqlalchemy import create_engine, select

from bot.devtools.fake_providers import FakeProviders
from store.models import Message, OutboxItem
from tests.support.pgserver import PostgresServer
from tests.support.providers import PUBLIC, SECRETS, TWILIO_SID, TWILIO_TOKEN, channel_config
from tests.support.serve import (
    CHANNELS,
    Inbound,
    Lives,
    WebhookLoad,
    customer_messages,
    restart_postgres_immediately,
)
from tests.support.server import ROOT, wait_for

pytestmark = pytest.mark.postgres

MESSAGES = int(os.environ.get("SAPA_CRASH_MESSAGES", "120"))
SEED = int(os.environ.get("SAPA_CRASH_SEED", "15"))
PER_CUSTOMER = 4
KILLS = 3
OVERLAY = "crash.yml"
INTERRUPTED = "interrupted by a crash"  # the outbox's reason for a send it cannot confirm (bot/outbox.py)
UNCONFIRMED = "unconfirmed"  # the outbox status for it (the outbox engineer's change)
UNFINISHED = ("pending", "sending")
# Questions with an answer of their own (FAQ entries, greetings, thanks, points): nothing here hands the
# conversation to a person, so every message is answered by the bot.
TEXTS = ("Halo", "Jam berapa toko buka?", "Berapa ongkos kirim ke Bandung?", "Terima kasih",
         "Cabang terdekat di mana?", "Poin saya berapa?", "Selamat pagi", "Bisa bayar pakai transfer?",
         "Hello, what time do you open?", "Makasih ya kak")
# The log line that announced a traceback, then the traceback up to its exception line.
TRACEBACK = re.compile(r"^(?P<said>.*)\nTraceback \(most recent call last\):\n(?:[ \t].*\n|\n)*(?P<raised>\S.*)$",
                       re.MULTILINE)


def code_version() -> dict[str, str]:
    """Which outbox and channel code was measured (the files' hashes, and whether they differ from HEAD)."""
    found = {}
    for name in ("bot/outbox.py", "store/messages.py", "channels/twilio.py", "channels/telegram.py"):
        digest = hashlib.sha1((ROOT / name).read_bytes()).hexdigest()[:12]
        diff = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", name], cwd=ROOT, capture_output=True)
        found[name] = digest + {0: "", 1: " (uncommitted changes)"}.get(diff.returncode, " (not a git checkout)")
    return found


@dataclass
class Counts:
    """One channel's accounting."""

    inbound: int = 0  # distinct messages the customers wrote
    acked: int = 0  # ... acknowledged with a 2xx (re-delivered until then)
    deliveries: int = 0  # webhook requests, re-deliveries included
    refused: int = 0  # answered with a 4xx: not re-delivered
    stored: int = 0  # acknowledged messages Sapa has a row for
    unanswered: int = 0  # stored, but no reply row
    replies: int = 0  # reply rows (messages out, with an outbox row)
    delivered: int = 0  # replies that reached the provider
    lost: int = 0
    doubled: int = 0
    unsent: int = 0
    unconfirmed: int = 0
    unconfirmed_arrived: int = 0  # ... of which the provider did get a copy (Telegram: more copies than sent rows)
    outbox: dict[str, int] = field(default_factory=dict)  # reply rows by outbox status


@dataclass
class Report:
    name: str
    messages: int
    seed: int
    events: list[str] = field(default_factory=list)
    channels: dict[str, Counts] = field(default_factory=lambda: {c: Counts() for c in CHANNELS})
    lookups: int = 0  # Twilio GET Messages.json (reconciling interrupted sends)
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)  # what the accounting could not place, with details
    tracebacks: list[str] = field(default_factory=list)  # distinct tracebacks in the server logs
    code: dict[str, str] = field(default_factory=code_version)

    def write(self) -> Path:
        folder = ROOT / "var" / "adversarial"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"crash-{self.name}.json"
        path.write_text(json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n")
        return path

    def table(self) -> str:
        keys = ("inbound", "acked", "deliveries", "stored", "unanswered", "replies", "delivered", "lost",
                "doubled", "unsent", "unconfirmed", "unconfirmed_arrived")
        lines = [f"crash-{self.name}: {self.messages} messages, seed {self.seed}, {self.seconds:.0f}s, "
                 f"{self.lookups} Twilio lookups", f"{'':10}" + "".join(f"{k[:11]:>12}" for k in keys)]
        for channel, counts in self.channels.items():
            lines.append(f"{channel:10}" + "".join(f"{getattr(counts, k):>12}" for k in keys)
                         + f"   outbox {counts.outbox}")
        lines += [f"  event: {e}" for e in self.events] + [f"  problem: {p}" for p in self.problems[:40]]
        return "\n".join(lines)


def overlay(fakes: FakeProviders) -> dict[str, Any]:
    """config.yml on the fakes, with a public URL (webhooks are signed for it), provider limits that do not bind,
    a short claim timeout (an interrupted row is looked at again within seconds) and short backoffs."""
    channels = channel_config(fakes)
    channels["sms"]["messages_per_second"] = 200
    channels["whatsapp"]["messages_per_second"] = 200
    channels["telegram"]["global_per_second"] = 200
    return {
        "extends": "config.yml",
        "server": {"public_base_url": PUBLIC},
        "channels": channels,
        "outbox": {"poll_interval_s": 0.05, "batch_size": 50, "claim_timeout_s": 3.0, "backoff_base_s": 0.5,
                   "backoff_max_s": 4.0, "max_attempts": 20},
        "scheduler": {"poll_interval_s": 0.5},
        "surveys": {"nps": {"enabled": False}},
    }


def crash_database(server: PostgresServer, name: str) -> str:
    """A fresh migrated database. Commits are made durable in it (the throwaway server runs with
    synchronous_commit=off, which an immediate restart would turn into lost commits: not what is tested)."""
    with psycopg.connect(f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres",
                         autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name} TEMPLATE sapa_template")
        conn.execute(f"ALTER DATABASE {name} SET synchronous_commit = on")
    return server.url(name)


def kill_points(total: int, rng: random.Random) -> list[int]:
    """Around 25%, 50% and 75% of the load, each moved by a seeded amount."""
    return sorted(max(1, int(total * (fraction + rng.uniform(-0.08, 0.08)))) for fraction in (0.25, 0.5, 0.75))


def until(probe: Callable[[], bool], what: str, timeout_s: float) -> None:
    """wait_for with a fine poll: a kill point is hit within a message or two, not 0.2 s of load later."""
    deadline = time.monotonic() + timeout_s
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.005)


def drained(url: str) -> bool:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(
                select(OutboxItem.id).where(OutboxItem.status.in_(UNFINISHED)).limit(1)).first() is None
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def nlu_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained NLU model (cached by its data's fingerprint) shared by this module's servers: each server's
    cache is its workdir's var/nlu, and training again costs seconds of the test's time."""
    return tmp_path_factory.mktemp("crash-nlu")


def run_load(tmp_path: Path, url: str, name: str, disrupt: Any,
             nlu_cache: Path) -> tuple[Report, list[Inbound], FakeProviders, Lives]:
    """Start a server, send the load, call `disrupt(lives, load, report)` meanwhile, wait for the load and the
    drain; returns what is needed to account."""
    report = Report(name, MESSAGES, SEED)
    customers = max(len(CHANNELS), MESSAGES // PER_CUSTOMER)
    people = customer_messages(customers, PER_CUSTOMER, TEXTS, seed=SEED)
    messages = [m for person in people for m in person]
    started = time.monotonic()
    fakes = FakeProviders(twilio_auth_token=TWILIO_TOKEN).start()
    (tmp_path / OVERLAY).write_text(yaml.safe_dump(overlay(fakes)))
    lives = Lives(tmp_path, config=OVERLAY, env=dict(SECRETS), database_url=url)
    shutil.copytree(nlu_cache, tmp_path / "var" / "nlu", dirs_exist_ok=True)
    load = WebhookLoad(lives.base_url, people)
    try:
        lives.start()
        shutil.copytree(tmp_path / "var" / "nlu", nlu_cache, dirs_exist_ok=True)
        load.start()
        disrupt(lives, load, report)
        finished = load.join(timeout_s=300 + len(messages))
        report.events.append(f"load {'finished' if finished else 'NOT finished'}: {load.acked} acknowledged")
        assert not load.failures, load.failures
        assert finished, "the webhook load did not finish"
        if not lives.alive():
            report.problems.append("the server was not running at the end of the load")
            lives.stop()
            lives.start()
        try:
            wait_for(lambda: drained(url), "the outbox to drain", timeout_s=60 + len(messages) / 5)
        except AssertionError as exc:
            report.events.append(str(exc))
        time.sleep(0.5)  # the last sends' requests are recorded by the fake after it answered
    except BaseException:
        load.cancel()
        fakes.stop()
        raise
    finally:
        lives.stop()
        report.seconds = time.monotonic() - started
    return report, messages, fakes, lives


def account(report: Report, messages: list[Inbound], fakes: FakeProviders, url: str, lives: Lives) -> None:
    """Fill `report` from the load, the database and the fake providers (see the module docstring)."""
    report.lookups = len(fakes.requests("twilio", "Messages.list"))
    twilio_copies = _twilio_messages(fakes)  # sid -> (to, body): every message Twilio accepted
    telegram_copies = Counter((str(r.params.get("chat_id")), str(r.params.get("text", "")))
                              for r in fakes.sent("telegram"))
    fakes.stop()
    for message in messages:
        counts = report.channels[message.channel]
        counts.inbound += 1
        counts.deliveries += message.deliveries
        counts.acked += message.acked
        counts.refused += message.refused is not None
        if message.refused is not None or not message.acked:
            report.problems.append(f"{message.channel} {message.provider_id} not acknowledged: {message.errors[-3:]}")
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            inbound = {(str(channel), str(pid)): int(mid) for mid, channel, pid in connection.execute(
                select(Message.id, Message.channel, Message.provider_message_id).where(Message.direction == "in"))}
            rows = connection.execute(
                select(Message.id, Message.reply_to_id, OutboxItem.channel, OutboxItem.recipient, OutboxItem.status,
                       OutboxItem.provider_message_id, OutboxItem.last_error, OutboxItem.payload)
                .join(OutboxItem, OutboxItem.message_id == Message.id)
                .where(Message.direction == "out")).all()
    finally:
        engine.dispose()
    replied = {row.reply_to_id for row in rows}
    for message in messages:
        if not message.acked:
            continue
        counts = report.channels[message.channel]
        row_id = inbound.get((message.channel, message.provider_id))
        if row_id is None:
            counts.lost += 1
            report.problems.append(f"LOST {message.channel} {message.provider_id}: acknowledged, never stored")
            continue
        counts.stored += 1
        if row_id not in replied:
            counts.unanswered += 1
            report.problems.append(f"{message.channel} {message.provider_id} ({message.text!r}) got no reply row")
    twilio_rows: dict[tuple[str, str], list[Any]] = defaultdict(list)
    telegram_rows: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for row in rows:
        found = report.channels.get(row.channel)
        if found is None:
            continue
        found.replies += 1
        status = str(row.status)
        unconfirmed = status == UNCONFIRMED or (status == "failed" and INTERRUPTED in str(row.last_error or ""))
        label = UNCONFIRMED if unconfirmed else status
        found.outbox[label] = found.outbox.get(label, 0) + 1
        if row.channel == "telegram":
            telegram_rows[(str(row.recipient), str(row.payload.get("text", "")))].append((row, label))
        else:
            twilio_rows[(row.channel, str(row.recipient))].append((row, label))
    _account_twilio(report, twilio_rows, twilio_copies)
    _account_telegram(report, telegram_rows, telegram_copies)
    report.tracebacks = distinct_tracebacks(lives.logs())


def _twilio_messages(fakes: FakeProviders) -> dict[str, tuple[str, str]]:
    """What Twilio would list for the account: every message it accepted (the fake's public Messages.json)."""
    response = httpx.get(f"{fakes.twilio_base_url}/2010-04-01/Accounts/{TWILIO_SID}/Messages.json",
                         params={"PageSize": 10_000_000}, auth=(TWILIO_SID, TWILIO_TOKEN), trust_env=False)
    response.raise_for_status()
    return {str(m["sid"]): (str(m["to"]), str(m["body"])) for m in response.json()["messages"]}


def _account_twilio(report: Report, rows: dict[tuple[str, str], list[Any]],
                    copies: dict[str, tuple[str, str]]) -> None:
    """By sid: a sent reply must name a message Twilio accepted for its number, no two replies the same one;
    every message Twilio accepted for a customer must be named by a reply (else it is a second copy)."""
    by_to: dict[str, set[str]] = defaultdict(set)
    for sid, (to, _) in copies.items():
        by_to[to].add(sid)
    for (channel, recipient), entries in rows.items():
        counts = report.channels[channel]
        to = f"whatsapp:{recipient}" if channel == "whatsapp" else recipient
        claimed: set[str] = set()
        for row, label in entries:
            sid = str(row.provider_message_id or "")
            if label == "sent" and sid in by_to[to] and sid not in claimed:
                counts.delivered += 1
                claimed.add(sid)
            elif label in UNFINISHED:
                counts.unsent += 1
                report.problems.append(f"UNSENT {channel} reply {row.id} to {recipient}: still {label}")
            elif label == UNCONFIRMED:
                counts.unconfirmed += 1
                report.problems.append(f"UNCONFIRMED {channel} reply {row.id} to {recipient}: {row.last_error}")
            else:
                counts.lost += 1
                report.problems.append(f"LOST {channel} reply {row.id} to {recipient}: {label}, sid {sid!r} "
                                       f"{'named twice' if sid in claimed else 'not at Twilio'}; {row.last_error}")
        extra = by_to[to] - claimed
        # An unconfirmed row's message may have arrived: that copy is not a second one.
        extra_count = max(0, len(extra) - sum(1 for _, label in entries if label == UNCONFIRMED))
        if extra_count:
            counts.doubled += extra_count
            report.problems.append(f"DOUBLED {channel} {recipient}: {extra_count} message(s) no reply row names: "
                                   f"{sorted(copies[s][1][:50] for s in extra)}")


def _account_telegram(report: Report, rows: dict[tuple[str, str], list[Any]], copies: Counter[tuple[str, str]]
                      ) -> None:
    """By (chat, text): copies at Telegram against reply rows with that text to that chat."""
    counts = report.channels["telegram"]
    for key, entries in rows.items():
        have = copies.get(key, 0)
        labels = Counter(label for _, label in entries)
        sent, unconfirmed = labels.get("sent", 0), labels.get(UNCONFIRMED, 0)
        unfinished = sum(labels.get(s, 0) for s in UNFINISHED)
        counts.delivered += min(have, sent)
        counts.unconfirmed += unconfirmed
        counts.unconfirmed_arrived += max(0, min(have - sent, unconfirmed))
        counts.unsent += unfinished
        if have > sent + unconfirmed:
            counts.doubled += have - sent - unconfirmed
            report.problems.append(f"DOUBLED telegram {key[0]}: {have} copies of {key[1][:50]!r}, "
                                   f"{sent} sent and {unconfirmed} unconfirmed rows")
        missing = max(0, sent - have) + sum(n for label, n in labels.items()
                                            if label not in ("sent", UNCONFIRMED, *UNFINISHED))
        if missing:
            counts.lost += missing
            report.problems.append(f"LOST telegram {key[0]}: {missing} of {key[1][:50]!r} not at Telegram, "
                                   f"neither unconfirmed nor unsent (outbox {dict(labels)})")
        if unfinished:
            report.problems.append(f"UNSENT telegram {key[0]}: {unfinished} of {key[1][:50]!r}")
    for key, have in copies.items():
        if key not in rows:
            counts.doubled += have
            report.problems.append(f"telegram {key[0]}: {have} message(s) {key[1][:50]!r} no reply row has")


def distinct_tracebacks(log: str) -> list[str]:
    """Each distinct traceback of the servers' logs once (the line that logged it, without its time stamp, and
    the exception it ended in), with how often it occurred; `full_tracebacks` keeps one whole example of each."""
    seen: Counter[str] = Counter()
    for match in TRACEBACK.finditer(log):
        said = re.sub(r"^[\d-]+ [\d:,.]+ ", "", match.group("said"))
        seen[f"{said[:200]} -> {match.group('raised')[:300]}"] += 1
    return [f"({n}x) {text}" for text, n in seen.most_common(20)]


def check(report: Report) -> None:
    print("\n" + report.table())
    print(f"written to {report.write()}")
    for text in report.tracebacks:
        print(f"  server traceback: {text}")
    failures = []
    for channel, counts in report.channels.items():
        if counts.acked != counts.inbound or counts.refused:
            failures.append(f"{channel}: {counts.inbound - counts.acked} messages never acknowledged, "
                            f"{counts.refused} refused")
        if counts.lost or counts.doubled or counts.unanswered:
            failures.append(f"{channel}: {counts.lost} lost, {counts.doubled} doubled, "
                            f"{counts.unanswered} unanswered")
        if channel != "telegram" and (counts.unsent or counts.unconfirmed):
            failures.append(f"{channel}: {counts.unsent} unsent, {counts.unconfirmed} unconfirmed (Twilio can be "
                            "asked: every reply must arrive)")
        if channel == "telegram" and counts.unsent:
            failures.append(f"telegram: {counts.unsent} replies never sent nor marked unconfirmed")
        if channel == "telegram" and counts.delivered + counts.unconfirmed < counts.replies:
            failures.append(f"telegram: {counts.replies - counts.delivered} replies did not arrive, only "
                            f"{counts.unconfirmed} are '{UNCONFIRMED}' in the outbox")
    assert not failures, "\n".join(failures) + "\n" + "\n".join(report.problems[:30])


def test_sapa_serve_killed_three_times_mid_load_loses_and_doubles_no_reply(
        tmp_path: Path, pg_server: PostgresServer, nlu_cache: Path) -> None:
    url = crash_database(pg_server, f"crash_kill_{os.getpid()}")
    rng = random.Random(SEED)

    def kill_three_times(lives: Lives, load: WebhookLoad, report: Report) -> None:
        for point in kill_points(len(load.messages), rng)[:KILLS]:
            # At least a few acknowledgements in each life: a kill right after a start-up tests less.
            point = min(max(point, load.acked + 3), len(load.messages))
            def reached(target: int = point) -> bool:
                return load.acked >= target

            until(reached, f"{point} messages acknowledged", timeout_s=120 + point)
            time.sleep(rng.uniform(0.0, 0.3))  # not always right after an acknowledgement
            at = load.acked
            lives.kill()
            began = time.monotonic()
            lives.start()
            report.events.append(f"SIGKILL after {at} acknowledged; restarted in {time.monotonic() - began:.1f}s")

    report, messages, fakes, lives = run_load(tmp_path, url, "kill", kill_three_times, nlu_cache)
    account(report, messages, fakes, url, lives)
    assert lives.kills == KILLS
    check(report)


def test_postgres_restarted_immediately_mid_load_recovers_without_losing_or_doubling_replies(
        tmp_path: Path, pg_server: PostgresServer, nlu_cache: Path) -> None:
    url = crash_database(pg_server, f"crash_pg_{os.getpid()}")
    rng = random.Random(SEED + 1)

    def restart_postgres(lives: Lives, load: WebhookLoad, report: Report) -> None:
        point = max(1, int(len(load.messages) * rng.uniform(0.35, 0.65)))
        until(lambda: load.acked >= point, f"{point} messages acknowledged", timeout_s=120 + point)
        at = load.acked
        took = restart_postgres_immediately(pg_server)
        report.events.append(f"pg_ctl restart -m immediate after {at} acknowledged; took {took:.1f}s")
        # The same process must go on: still running, healthy, and acknowledging again.
        again = at + 1
        try:
            wait_for(lambda: load.acked > again or not lives.alive(), "acknowledgements after the restart",
                     timeout_s=60)
        except AssertionError as exc:
            report.problems.append(f"RECOVERY: {exc}")
        if not lives.alive():
            report.problems.append("RECOVERY: `sapa serve` exited after the PostgreSQL restart")
        report.events.append(f"{load.acked} acknowledged 0-60s after the restart; server alive: {lives.alive()}")

    report, messages, fakes, lives = run_load(tmp_path, url, "postgres-restart", restart_postgres, nlu_cache)
    account(report, messages, fakes, url, lives)
    healthy_after = not any(p.startswith("RECOVERY") for p in report.problems)
    check(report)
    assert healthy_after, [p for p in report.problems if p.startswith("RECOVERY")]
    assert lives.kills == 0
