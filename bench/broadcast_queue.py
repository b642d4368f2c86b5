"""Broadcast fan-out benchmark (issue 18): select and queue one broadcast to `--customers` customers, in-process.

    .venv/bin/python -m bench.broadcast_queue [--customers 100000] [--postgres URL|auto] [--repeat 1]
        [--queue-batch N]

A fresh database (SQLite in a temporary folder; with `--postgres` a fresh database on that server, or on a
throwaway server with `auto`) is migrated and filled with `bench.history.bulk_load` (INSERT ... SELECT, no Python
per row): customers on WhatsApp, SMS and Telegram in turn, each with a phone; marketing consent granted, every
tenth later withdrawn (STOP), every 25th never asked; a tenth with English as their language; half the WhatsApp
windows closed; a fifth with a loyalty account (points and tier in the text). Then, through the service
(handlers/broadcasts.py), a broadcast to everyone on whatsapp,sms,telegram is created and scheduled, and timed:

- select: the `broadcast.select` task (every customer a recipient, pending or skipped with a reason), one
  transaction as the scheduler runs it;
- queue: `feed_step` in a loop, one transaction per step as the `broadcast.feed` chain runs it, until no recipient
  is pending (every eligible customer's message and outbox row written).

Each is reported as wall time and CPU time of this process (SQLite runs inside it) plus, on PostgreSQL, the
server's CPU when it is a throwaway one (`auto`). The longest feed step is reported too: it is how long inbound
messages can wait for SQLite's writer lock during a campaign. A digest of what was written (recipients, message
texts, outbox payloads, by customer) lets two runs of different code be compared for identical output.
The last line is one JSON object with all the numbers.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select  # noqa: E402

from handlers import broadcasts as service  # noqa: E402
from store import broadcasts as store  # noqa: E402
from store import create_database  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from store.models import BroadcastRecipient, Message, OutboxItem, Task  # noqa: E402
from tests.support.population import broadcast_settings  # noqa: E402

CHANNELS = ("whatsapp", "sms", "telegram")
TEXTS = {"id": "Halo {{ name }}, poin Anda {{ points }} ({{ tier }}) dobel minggu ini di {{ company }}!",
         "en": "Hi {{ first_name }}, your {{ points }} points double this week at {{ company }}!"}
SEQUENCED = ("customers", "channel_identities", "consents")
NOWHERE = "http://127.0.0.1:9"  # the settings need provider URLs; nothing is sent here


def population_statements(d: Any, customers: int, days: int) -> list[tuple[str, str]]:
    """(table, statement) filling an empty, migrated database with `customers` customers (`d`: a
    bench.history.Dialect whose t0 is `days` ago)."""
    now = days * 86400
    channel = "CASE k % 3 WHEN 0 THEN 'whatsapp' WHEN 1 THEN 'sms' ELSE 'telegram' END"
    out: list[tuple[str, str]] = []

    def add(table: str, rows: int, columns: str, body: str) -> None:
        prefix, source = d.series(rows)
        out.append((table, f"{prefix}INSERT INTO {table} ({columns}) {body.replace('{g}', source)}"))

    add("customers", customers, "id, name, phone, language, is_vip, source, created_at, updated_at",
        f"SELECT n, 'Pelanggan ' || k, '+62811' || (10000000 + k), CASE WHEN k % 10 = 0 THEN 'en' END, "
        f"{d.bool(False)}, 'import', {d.ts('0')}, {d.ts('0')} FROM (SELECT n, n - 1 AS k FROM {{g}}) x")
    # Half the WhatsApp customers wrote three days ago (window closed), the rest an hour ago.
    add("channel_identities", customers, "id, customer_id, channel, address, created_at, last_inbound_at",
        f"SELECT n, n, {channel}, CASE WHEN k % 3 = 2 THEN '' || (700000000 + k) ELSE '+62811' || (10000000 + k) "
        f"END, {d.ts('0')}, CASE WHEN k % 3 = 0 AND (k / 3) % 2 = 1 THEN {d.ts(f'{now} - 3 * 86400')} "
        f"ELSE {d.ts(f'{now} - 3600')} END FROM (SELECT n, n - 1 AS k FROM {{g}}) x")
    add("consents", customers, "id, customer_id, purpose, granted, channel, evidence, recorded_at",
        f"SELECT n, n, 'marketing', {d.bool(True)}, {channel}, 'ya', {d.ts(f'{now} - 20 * 86400')} "
        "FROM (SELECT n, n - 1 AS k FROM {g}) x WHERE k % 25 <> 24")
    add("consents", customers, "id, customer_id, purpose, granted, channel, evidence, recorded_at",
        f"SELECT {customers} + n, n, 'marketing', {d.bool(False)}, {channel}, 'STOP', {d.ts(f'{now} - 2 * 86400')} "
        "FROM (SELECT n, n - 1 AS k FROM {g}) x WHERE k % 10 = 9 AND k % 25 <> 24")
    add("loyalty_accounts", customers,
        "customer_id, balance, lifetime_points, tier, tier_since, created_at, updated_at",
        f"SELECT n, k * 7 % 5000, k * 7 % 5000, CASE WHEN k % 2 = 0 THEN 'silver' ELSE 'gold' END, {d.ts('0')}, "
        f"{d.ts('0')}, {d.ts('0')} FROM (SELECT n, n - 1 AS k FROM {{g}}) x WHERE k % 5 = 0")
    return out


@dataclass
class Phase:
    wall_s: float = 0.0
    cpu_s: float = 0.0  # this process (SQLite's work included)
    db_cpu_s: float = 0.0  # the PostgreSQL server, when it is ours
    steps: int = 0
    longest_step_s: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in vars(self).items()}


@dataclass
class Run:
    backend: str
    customers: int
    select: Phase = field(default_factory=Phase)
    queue: Phase = field(default_factory=Phase)
    counts: dict[str, int] = field(default_factory=dict)
    digest: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "customers": self.customers, "select": self.select.as_dict(),
                "queue": self.queue.as_dict(), "total_wall_s": round(self.select.wall_s + self.queue.wall_s, 3),
                "total_cpu_s": round(self.select.cpu_s + self.queue.cpu_s, 3), "counts": self.counts,
                "digest": self.digest}


class Meter:
    """Wall and CPU time of a stretch of work: this process, and the PostgreSQL server's processes if known."""

    def __init__(self, db_pid: int | None) -> None:
        from bench.history import tree_cpu_s

        self.db_pid = db_pid
        self.tree_cpu_s = tree_cpu_s

    def read(self) -> tuple[float, float, float]:
        return time.perf_counter(), time.process_time(), self.tree_cpu_s(self.db_pid) if self.db_pid else 0.0

    def add(self, phase: Phase, before: tuple[float, float, float]) -> float:
        after = self.read()
        wall = after[0] - before[0]
        phase.wall_s += wall
        phase.cpu_s += after[1] - before[1]
        phase.db_cpu_s += after[2] - before[2]
        phase.steps += 1
        phase.longest_step_s = max(phase.longest_step_s, wall)
        return wall


def run_once(url: str, backend: str, customers: int, db_pid: int | None, queue_batch: int | None = None) -> Run:
    from bench.history import Dialect, bulk_load

    now = datetime.now(UTC).replace(microsecond=0)
    days = 30
    upgrade(url)
    bulk_load(url, backend == "postgresql", population_statements(Dialect(backend == "postgresql",
                                                                          now - timedelta(days=days)),
                                                                  customers, days), SEQUENCED)
    stub = SimpleNamespace(telegram_base_url=NOWHERE, twilio_base_url=NOWHERE, slack_base_url=NOWHERE)
    batch: dict[str, Any] = {} if queue_batch is None else {"queue_batch": queue_batch}
    settings = broadcast_settings(url, stub, quiet_start="00:00", quiet_end="00:00", max_per_customer=50,
                                  cap_days=1, **batch)
    database = create_database(url)
    run = Run(backend, customers)
    meter = Meter(db_pid)
    try:
        with database.unit_of_work() as session:
            made = service.create(session, settings, name="Poin dobel", filters={}, messages=TEXTS,
                                  channels=list(CHANNELS), created_by="bench", now=now)
            service.schedule(session, settings, made.id, now=now, actor="bench")
            broadcast_id = made.id
        # The set-up's garbage (migrations, settings, the bulk load) is collected before the clock starts: else a
        # full collection that the set-up owes (~0.1 s) lands in whichever measured step comes first.
        gc.collect()
        while True:  # one step per pending `broadcast.select` task, as the scheduler would run them
            before = meter.read()
            with database.unit_of_work() as session:
                task = session.execute(select(Task).where(Task.kind == service.SELECT, Task.status == "pending")
                                       .order_by(Task.id).limit(1)).scalar_one_or_none()
                if task is None:
                    break
                service.select_task(settings)(session, task, now)
                task.status, task.finished_at = "done", now
            meter.add(run.select, before)
        while True:
            before = meter.read()
            with database.unit_of_work() as session:
                service.feed_step(session, settings, broadcast_id, now)
            meter.add(run.queue, before)
            with database.unit_of_work(read_only=True) as session:
                if store.next_pending(session, broadcast_id, now) is None:
                    break
        with database.unit_of_work(read_only=True) as session:
            run.counts, run.digest = written(session, broadcast_id)
    finally:
        database.dispose()
    return run


def written(session: Any, broadcast_id: int) -> tuple[dict[str, int], str]:
    """Counts of what the broadcast wrote, and a digest of it by customer (ids left out: they differ per run)."""
    digest = hashlib.sha256()
    counts: dict[str, int] = {}
    rows = session.execute(
        select(BroadcastRecipient.customer_id, BroadcastRecipient.status, BroadcastRecipient.skip_reason,
               BroadcastRecipient.channel, BroadcastRecipient.address, BroadcastRecipient.language,
               Message.text, Message.language, Message.channel, Message.meta, OutboxItem.recipient,
               OutboxItem.channel, OutboxItem.payload, OutboxItem.status)
        .outerjoin(Message, Message.id == BroadcastRecipient.message_id)
        .outerjoin(OutboxItem, OutboxItem.id == BroadcastRecipient.outbox_id)
        .where(BroadcastRecipient.broadcast_id == broadcast_id).order_by(BroadcastRecipient.customer_id))
    for row in rows:
        key = f"{row[1]}:{row[2] or row[3]}"
        counts[key] = counts.get(key, 0) + 1
        digest.update(json.dumps(list(row), sort_keys=True, default=str).encode())
    counts["outbox_rows"] = int(session.execute(select(func.count()).select_from(OutboxItem)).scalar_one())
    counts["messages"] = int(session.execute(select(func.count()).select_from(Message)).scalar_one())
    return dict(sorted(counts.items())), digest.hexdigest()[:16]


# ---------------------------------------------------------------- databases


def fresh_postgres(admin_url: str) -> tuple[str, Any]:
    """A new empty database on the server of `admin_url`, and how to drop it."""
    import psycopg

    name = f"sapa_bench_{uuid.uuid4().hex[:8]}"
    dsn = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # a generated name, not input

    def drop() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    base = admin_url.rsplit("/", 1)[0]
    if not base.startswith("postgresql+psycopg"):
        base = base.replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}", drop


def run_backend(args: argparse.Namespace) -> list[Run]:
    runs: list[Run] = []
    if args.postgres:
        from tests.support.pgserver import PostgresServer

        server = PostgresServer().start() if args.postgres == "auto" else None
        try:
            admin = server.url() if server else args.postgres
            db_pid = int((server.data / "postmaster.pid").read_text().split()[0]) if server else None
            for _ in range(args.repeat):
                url, drop = fresh_postgres(admin)
                try:
                    runs.append(run_once(url, "postgresql", args.customers, db_pid, args.queue_batch))
                finally:
                    drop()
        finally:
            if server:
                server.stop()
        return runs
    for _ in range(args.repeat):
        workdir = Path(tempfile.mkdtemp(prefix="sapa-bench-queue-"))
        try:
            runs.append(run_once(f"sqlite:///{workdir / 'sapa.db'}", "sqlite", args.customers, None,
                                 args.queue_batch))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL server URL (a fresh database is made on "
                        "it and dropped after), or 'auto' for a throwaway server; default SQLite")
    parser.add_argument("--repeat", type=int, default=1, help="fresh databases, one run each")
    parser.add_argument("--queue-batch", type=int, help="broadcasts.queue_batch (default: config.yml's)")
    args = parser.parse_args(argv)
    runs = run_backend(args)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"{'backend':10} {'customers':>9} {'phase':6} {'wall s':>7} {'cpu s':>7} {'db cpu s':>8} {'steps':>5} "
          f"{'longest step s':>14}")
    for run in runs:
        for name, phase in (("select", run.select), ("queue", run.queue)):
            print(f"{run.backend:10} {run.customers:9d} {name:6} {phase.wall_s:7.2f} {phase.cpu_s:7.2f} "
                  f"{phase.db_cpu_s:8.2f} {phase.steps:5d} {phase.longest_step_s:14.3f}")
        print(f"  written: {run.counts} digest {run.digest}")
    best = min(runs, key=lambda r: r.select.wall_s + r.queue.wall_s)
    print(json.dumps({"customers": args.customers, "backend": best.backend, "runs": [r.as_dict() for r in runs],
                      "best_total_wall_s": round(best.select.wall_s + best.queue.wall_s, 3)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
