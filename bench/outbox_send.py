"""Outbox send benchmark (issue 18): CPU and SQL statements per message the dispatcher sends.

    .venv/bin/python bench/outbox_send.py [--rows 3000] [--db sqlite|postgresql] [--kind broadcast|reply|both]
                                          [--profile var/outbox_send.html]

`--rows` outbox rows are queued for customers on SMS, WhatsApp (half of them outside the 24-hour window, so
sent as the approved template) and Telegram in turn, as a broadcast queues them (conversation, message and
outbox row per recipient; `at_most_once`), as replies (the same, purpose "reply", not at-most-once), and as web
chat replies queued one at a time, each drained by its own pass (what one inbound web chat message costs the
outbox on a quiet server; queuing is not measured).
The real OutboxDispatcher drains them (`run_once` until nothing is due, rate limits set far above what is
reached) against the fake providers (bot/devtools/fake_providers.py) running as a separate process, so the
CPU measured is this process's alone: the dispatcher, the channels' HTTP clients and the database driver.

Reported per kind: sends/s (wall time inside the passes), process CPU per send (time.process_time, every
thread of this process), SQL statements per send (a SQLAlchemy `before_cursor_execute` listener; an
executemany counts once) and transactions per send. Every row must end `sent` with a distinct provider id,
or the run fails.
The last line is one JSON object with all the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event, func, insert, select  # noqa: E402

from bot.clock import SystemClock  # noqa: E402
from bot.config import OutboxConfig  # noqa: E402
from bot.outbox import OutboxDispatcher  # noqa: E402
from channels.base import Sender  # noqa: E402
from channels.telegram import TelegramChannel  # noqa: E402
from channels.twilio import TwilioChannel  # noqa: E402
from channels.webchat import WebchatChannel  # noqa: E402
from store import Database  # noqa: E402
from store.db import create_database  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from store.models import ChannelIdentity, Conversation, Customer, Message, OutboxItem  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TWILIO_SID, TWILIO_TOKEN = "AC" + "1" * 32, "bench-twilio-auth-token"
TELEGRAM_TOKEN = "123456:BENCH-token-for-the-fake"
REPLY_TEMPLATE, BROADCAST_TEMPLATE = "HX" + "a" * 32, "HX" + "b" * 32
CHANNELS = ("sms", "whatsapp", "telegram")
FAST = 1_000_000.0  # messages per second: no rate limit is ever reached


@dataclass
class Result:
    kind: str
    rows: int
    wall_s: float
    cpu_s: float
    statements: int
    transactions: int

    @property
    def sends_per_s(self) -> float:
        return self.rows / self.wall_s

    @property
    def cpu_ms_per_send(self) -> float:
        return 1000 * self.cpu_s / self.rows

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "sends_per_s": round(self.sends_per_s, 1),
                "cpu_ms_per_send": round(self.cpu_ms_per_send, 3),
                "statements_per_send": round(self.statements / self.rows, 3),
                "transactions_per_send": round(self.transactions / self.rows, 3)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_fakes(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.devtools.fake_providers", "--port", str(port), "--twilio-auth-token",
         TWILIO_TOKEN], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/bot{TELEGRAM_TOKEN}/getMe", timeout=1).read()
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the fake providers did not start")


def build_channels(base: str) -> dict[str, Sender]:
    templates: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {"reply": {"id": (REPLY_TEMPLATE, ("name",))},
                 "broadcast": {"id": (BROADCAST_TEMPLATE, ("name", "text"))}}
    return {
        "sms": TwilioChannel("sms", TWILIO_SID, TWILIO_TOKEN, from_number="+15005550006", messages_per_second=FAST,
                             api_base_url=base, public_base_url="https://sapa.example.test"),
        "whatsapp": TwilioChannel("whatsapp", TWILIO_SID, TWILIO_TOKEN, from_number="+14155238886",
                                  messages_per_second=FAST, api_base_url=base,
                                  public_base_url="https://sapa.example.test", templates=templates),
        "telegram": TelegramChannel(TELEGRAM_TOKEN, "bench-secret", api_base_url=f"{base}/bot",
                                    per_chat_per_second=FAST, global_per_second=FAST),
        "webchat": WebchatChannel(),
    }


def queue(database: Database, rows: int, *, kind: str, start: int) -> None:
    """`rows` customers (numbered from `start`), each with one identity and one queued outbox row."""
    clock = SystemClock()
    now = clock.now()
    with database.unit_of_work() as session:
        for first in range(start, start + rows, 1000):
            indexes = range(first, min(first + 1000, start + rows))
            base_id = int(session.execute(select(func.coalesce(func.max(Customer.id), 0))).scalar_one())
            session.execute(insert(Customer), [
                {"id": base_id + 1 + n, "name": f"Pelanggan {i}", "phone": f"+62811{i:08d}", "is_vip": False,
                 "source": "import", "created_at": now, "updated_at": now} for n, i in enumerate(indexes)])
            for n, i in enumerate(indexes):
                customer_id = base_id + 1 + n
                channel = "webchat" if kind == "webchat" else CHANNELS[i % 3]
                address = {"telegram": str(700_000_000 + i), "webchat": f"wc-session-{i}"}.get(channel,
                                                                                              f"+62811{i:08d}")
                closed = channel == "whatsapp" and (i // 3) % 2 == 1
                identity = session.execute(insert(ChannelIdentity).returning(ChannelIdentity.id), [{
                    "customer_id": customer_id, "channel": channel, "address": address,
                    "created_at": now - timedelta(days=30),
                    "last_inbound_at": now - (timedelta(days=3) if closed else timedelta(hours=1))}]).scalar_one()
                conversation = session.execute(insert(Conversation).returning(Conversation.id), [{
                    "customer_id": customer_id, "identity_id": identity, "channel": channel, "status": "closed",
                    "priority": 0, "language": "id", "pending_data": {}, "misunderstood": 0, "opened_at": now,
                    "last_message_at": now, "closed_at": now}]).scalar_one()
                text = f"Halo Pelanggan {i}, promo minggu ini: diskon 20% untuk semua menu."
                message = session.execute(insert(Message).returning(Message.id), [{
                    "conversation_id": conversation, "customer_id": customer_id, "channel": channel,
                    "direction": "out", "sender": "system" if kind == "broadcast" else "bot", "text": text,
                    "buttons": [], "media": [], "language": "id", "delivery_status": "queued", "meta": {},
                    "created_at": now}]).scalar_one()
                payload: dict[str, Any] = {"text": text, "buttons": [], "language": "id"}
                if kind == "broadcast":
                    payload.update(purpose="broadcast", at_most_once=True, broadcast_id=1,
                                   template_variables={"name": f"Pelanggan {i}", "text": text})
                else:
                    payload.update(purpose="reply", template_variables={"name": f"Pelanggan {i}"})
                session.execute(insert(OutboxItem), [{
                    "message_id": message, "conversation_id": conversation, "channel": channel,
                    "recipient": address, "payload": payload, "status": "pending", "attempts": 0,
                    "next_attempt_at": now, "created_at": now}])


def drain(database: Database, dispatcher: OutboxDispatcher, kind: str, rows: int, profiler: Any,
          one_by_one: bool = False) -> Result:
    """Passes of the dispatcher until nothing is due, measured. `one_by_one`: each row is queued just before its
    pass (queuing not measured), as web chat replies arrive one at a time on a quiet server."""
    counts = {"measuring": 0, "statements": 0, "transactions": 0}

    def on_execute(*_: Any) -> None:
        counts["statements"] += counts["measuring"]

    def on_commit(*_: Any) -> None:
        counts["transactions"] += counts["measuring"]

    event.listen(database.engine, "before_cursor_execute", on_execute)
    event.listen(database.engine, "commit", on_commit)
    cpu = wall = 0.0
    try:
        for index in range(rows if one_by_one else 1):
            if one_by_one:
                queue(database, 1, kind=kind, start=20_000_000 + index)
            if profiler is not None:
                profiler.start()
            counts["measuring"], started_cpu, started_wall = 1, time.process_time(), time.perf_counter()
            while dispatcher.run_once() >= dispatcher.config.batch_size:  # as its background loop goes on
                pass
            cpu, wall = cpu + time.process_time() - started_cpu, wall + time.perf_counter() - started_wall
            counts["measuring"] = 0
            if profiler is not None:
                profiler.stop()
    finally:
        event.remove(database.engine, "before_cursor_execute", on_execute)
        event.remove(database.engine, "commit", on_commit)
    return Result(kind, rows, wall, cpu, counts["statements"], counts["transactions"])


def check(database: Database, expected: int) -> None:
    with database.unit_of_work(read_only=True) as session:
        statuses = dict(session.execute(select(OutboxItem.status, func.count()).group_by(OutboxItem.status)).all())
        ids = session.execute(select(func.count(func.distinct(OutboxItem.provider_message_id)))).scalar_one()
    if statuses != {"sent": expected} or ids != expected:
        raise SystemExit(f"not every row was sent exactly once: {statuses}, {ids} distinct provider ids")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3000, help="outbox rows per kind (default 3000)")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--kind", choices=("broadcast", "reply", "webchat", "all"), default="all")
    parser.add_argument("--batch-size", type=int, default=OutboxConfig().batch_size)
    parser.add_argument("--profile", help="a pyinstrument profile of the last kind drained (.txt: text, else HTML)")
    args = parser.parse_args()
    kinds = ["broadcast", "reply", "webchat"] if args.kind == "all" else [args.kind]
    workdir = Path(tempfile.mkdtemp(prefix="sapa-bench-outbox-"))
    port = free_port()
    fakes = start_fakes(port)
    server = None
    try:
        if args.db == "postgresql":
            from tests.support.pgserver import PostgresServer

            server = PostgresServer().start()
            url = server.url()
        else:
            url = f"sqlite:///{workdir / 'bench.db'}"
        upgrade(url)
        database = create_database(url)
        channels = build_channels(f"http://127.0.0.1:{port}")
        config = OutboxConfig(batch_size=args.batch_size)
        dispatcher = OutboxDispatcher(database, channels, SystemClock(), config)
        queue(database, 30, kind="reply", start=10_000_000)  # warm-up: connections opened, getMe asked
        while dispatcher.run_once() > 0:
            pass
        results, done = [], 30
        for index, kind in enumerate(kinds):
            if kind != "webchat":
                queue(database, args.rows, kind=kind, start=index * args.rows)
            profiler = None
            if args.profile and index == len(kinds) - 1:
                from pyinstrument import Profiler

                profiler = Profiler(interval=0.0005)
            # A web chat reply is claimed on its own as the pipeline wakes the dispatcher: one row per pass.
            results.append(drain(database, dispatcher, kind, args.rows, profiler, one_by_one=kind == "webchat"))
            done += args.rows
            check(database, done)
            if profiler is not None:
                Path(args.profile).parent.mkdir(parents=True, exist_ok=True)
                Path(args.profile).write_text(profiler.output_text(unicode=True, show_all=False)
                                              if args.profile.endswith(".txt") else profiler.output_html())
        for channel in channels.values():
            close = getattr(channel, "close", None)
            if close is not None:
                close()
        database.dispose()
    finally:
        fakes.terminate()
        fakes.wait(10)
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{args.db}, batch {args.batch_size}, fake providers in their own process")
    print(f"{'kind':10s} {'rows':>6s} {'sends/s':>8s} {'CPU ms/send':>12s} {'SQL/send':>9s} {'tx/send':>8s}")
    for result in results:
        row = result.as_dict()
        print(f"{result.kind:10s} {result.rows:6d} {row['sends_per_s']:8.1f} {row['cpu_ms_per_send']:12.3f} "
              f"{row['statements_per_send']:9.3f} {row['transactions_per_send']:8.3f}")
    print(json.dumps({"bench": "outbox_send", "db": args.db, "batch_size": args.batch_size,
                      "results": {result.kind: result.as_dict() for result in results}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
