"""History benchmark: server CPU per inbound web chat message as the stored history grows (issue 15, item 9).

    .venv/bin/python -m bench.history [--db sqlite|postgres|both] [--rows 1000000] [--messages 300] [--repeat 5]

For each size (0, 20,000, 200,000 and --rows stored messages) a fresh database is migrated with `sapa db upgrade`
and filled with bulk `INSERT ... SELECT` statements (a recursive CTE on SQLite, generate_series on PostgreSQL):
customers with identities on WhatsApp, Telegram, SMS and the web chat (a quarter with a second one), closed
conversations of 10 messages (inbound and the bot's reply in turn, every reply with reply_to_id, every message
with a provider_message_id), a sent outbox row per outbound message, a data-processing consent per customer, a
finished task per conversation and a ticket (with two events) for 3% of conversations; then ANALYZE (SQLite) or
VACUUM ANALYZE (PostgreSQL), as the server's own maintenance would have. On PostgreSQL each size gets its own
throwaway server (tests/support/pgserver.py), so the database CPU of one size is not mixed with another's.

Then one real `sapa serve` per size runs (bench/inbound.py's machinery), all at once, and the repeats go round
the sizes in turn (repeat 1 on every size, then repeat 2, ...) so that a change in the machine's load hits every
size alike. Each repeat creates fresh web chat sessions (not measured), sends --messages messages with
--concurrency senders, waits for the outbox to deliver every reply, and reads the CPU time (user + system, from
/proc) the Sapa process used, and on PostgreSQL also the PostgreSQL server's processes. CPU time, not wall
time: the machine is shared. The table shows the median over the repeats per size and its ratio to the empty
database; the idle column is what the server burns per second doing nothing (outbox and scheduler polls,
periodic sweeps), measured on all servers at once before the repeats.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

# bench/inbound.py imports its neighbour `workspace` the way a script run from bench/ does.
sys.path.insert(0, str(Path(__file__).resolve().parent))
import inbound  # noqa: E402
from workspace import prepare_sapa, sapa_command  # noqa: E402

from tests.support.pgserver import PostgresServer  # noqa: E402

CHANNELS = ("whatsapp", "telegram", "sms", "webchat")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
TEXTS_IN = ("halo kak", "pesanan saya sudah sampai mana?", "jam buka toko jam berapa?", "terima kasih",
            "ongkir ke surabaya brp kak")
INTENTS_IN = ("greet", "order_status", "opening_hours", "thanks", "shipping_cost")


# ---------------------------------------------------------------- loading history


class Dialect:
    """The few spellings SQLite and PostgreSQL disagree on, for the INSERT ... SELECT statements below."""

    def __init__(self, postgres: bool, t0: datetime) -> None:
        self.postgres = postgres
        self.t0 = t0.strftime("%Y-%m-%d %H:%M:%S")

    def series(self, n: int) -> tuple[str, str]:
        """(prefix, source): `{prefix}INSERT INTO t (...) SELECT ... FROM {source}` numbers rows g.n = 1..n."""
        if self.postgres:
            return "", f"generate_series(1, {n}) AS g(n)"
        return f"WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {n}) ", "g"

    def ts(self, seconds: str) -> str:
        """t0 + seconds, stored as the application stores it."""
        if self.postgres:
            return f"(TIMESTAMPTZ '{self.t0}+00' + ({seconds}) * INTERVAL '1 second')"
        return f"(datetime('{self.t0}', '+' || ({seconds}) || ' seconds') || '.000000')"

    def json(self, text: str) -> str:
        return f"CAST({text} AS JSON)" if self.postgres else text

    def bool(self, value: bool) -> str:
        return ("true" if value else "false") if self.postgres else str(int(value))


def channel_of(index: str) -> str:
    return f"CASE ({index}) % 4 " + " ".join(f"WHEN {i} THEN '{c}'" for i, c in enumerate(CHANNELS[:3])) + \
        f" ELSE '{CHANNELS[3]}' END"


def address_of(channel: str, number: str) -> str:
    """A unique address per channel: phones for WhatsApp and SMS, chat ids for Telegram, session tokens for the
    web chat (they must look like the tokens POST /api/webchat/sessions hands out)."""
    return (f"CASE {channel} WHEN 'telegram' THEN '' || (700000000 + {number}) "
            f"WHEN 'webchat' THEN 'benchwebchatsession' || (100000000 + {number}) "
            f"ELSE '+62812' || (10000000 + {number}) END")


def history_statements(d: Dialect, messages: int) -> list[tuple[str, str]]:
    """(table, statement) filling an empty, migrated database with `messages` stored messages and what goes
    with them. Every id is given explicitly (PostgreSQL's sequences are moved past them afterwards)."""
    n_conv = math.ceil(messages / 10)
    n_cust = max(1, n_conv // 2)  # two conversations (about 20 messages) per customer
    n_second = (n_cust + 3) // 4  # customers k % 4 == 0 also have a second identity, on another channel
    n_tickets = (n_conv + 32) // 33
    gap = max(1, 365 * 86400 // max(n_conv, 1))  # conversations spread over a year
    out: list[tuple[str, str]] = []

    def add(table: str, rows: int, columns: str, select: str) -> None:
        prefix, source = d.series(rows)
        out.append((table, f"{prefix}INSERT INTO {table} ({columns}) {select.replace('{g}', source)}"))

    add("customers", n_cust,
        "id, name, phone, email, language, is_vip, vip_tier, source, created_at, updated_at",
        f"SELECT n, 'Pelanggan ' || n, CASE WHEN k % 2 = 0 THEN '+62812' || (10000000 + k) END, "
        f"CASE WHEN k % 3 = 0 THEN 'p' || k || '@contoh.id' END, CASE WHEN k % 10 = 0 THEN 'en' ELSE 'id' END, "
        f"CASE WHEN k % 50 = 0 THEN {d.bool(True)} ELSE {d.bool(False)} END, "
        f"CASE WHEN k % 50 = 0 THEN 'gold' END, {channel_of('k')}, {d.ts(f'k * {gap}')}, {d.ts(f'k * {gap}')} "
        "FROM (SELECT n, n - 1 AS k FROM {g}) x")
    add("channel_identities", n_cust,
        "id, customer_id, channel, address, display_name, language_hint, created_at, last_inbound_at",
        f"SELECT n, n, ch, {address_of('ch', 'k')}, 'Pelanggan ' || n, 'id', {d.ts(f'k * {gap}')}, "
        f"{d.ts(f'k * {gap} + 240')} FROM (SELECT n, n - 1 AS k, {channel_of('n - 1')} AS ch FROM {{g}}) x")
    add("channel_identities", n_second,
        "id, customer_id, channel, address, display_name, language_hint, created_at, last_inbound_at",
        f"SELECT {n_cust} + n, 4 * (n - 1) + 1, ch, {address_of('ch', f'{n_cust} + n')}, 'Pelanggan', 'id', "
        f"{d.ts(f'4 * (n - 1) * {gap}')}, {d.ts(f'4 * (n - 1) * {gap}')} "
        f"FROM (SELECT n, {channel_of('1 + (n - 1) % 3')} AS ch FROM {{g}}) x")
    add("webchat_sessions", 1, "token, language, created_at",
        "SELECT address, 'id', created_at FROM channel_identities WHERE channel = 'webchat'")
    # Conversation c belongs to customer c % n_cust; every other one of a two-identity customer is on the second.
    add("conversations", n_conv,
        "id, customer_id, identity_id, channel, status, priority, language, pending_data, misunderstood, "
        "opened_at, last_message_at, last_inbound_at, closed_at",
        f"SELECT x.n, x.k + 1, ci.id, ci.channel, 'closed', 0, 'id', {d.json(repr('{}'))}, 0, "
        f"{d.ts(f'x.c * {gap}')}, {d.ts(f'x.c * {gap} + 270')}, {d.ts(f'x.c * {gap} + 240')}, "
        f"{d.ts(f'x.c * {gap} + 14670')} "
        f"FROM (SELECT n, n - 1 AS c, (n - 1) % {n_cust} AS k, (n - 1) / {n_cust} AS r FROM {{g}}) x "
        f"JOIN channel_identities ci ON ci.id = CASE WHEN x.k % 4 = 0 AND x.r % 2 = 1 "
        f"THEN {n_cust} + x.k / 4 + 1 ELSE x.k + 1 END")
    texts = "CASE x.m % 5 " + " ".join(f"WHEN {i} THEN '{t}'" for i, t in enumerate(TEXTS_IN[:4])) + \
        f" ELSE '{TEXTS_IN[4]}' END"
    intents = "CASE x.m % 5 " + " ".join(f"WHEN {i} THEN '{t}'" for i, t in enumerate(INTENTS_IN[:4])) + \
        f" ELSE '{INTENTS_IN[4]}' END"
    meta_in = ('{"nlu": {"backend": "embedded", "entities": []}, "sentiment": {"score": 0.1, "label": "neutral", '
               '"angry": false, "cues": []}}')
    buttons = '[{"title": "Cek pesanan", "payload": "intent:order_status"}, {"title": "Bicara dengan petugas", ' \
              '"payload": "intent:human"}]'
    add("messages", messages,
        "id, conversation_id, customer_id, channel, direction, sender, text, buttons, media, intent, confidence, "
        "language, provider_message_id, delivery_status, reply_to_id, meta, created_at",
        "SELECT x.n, cv.id, cv.customer_id, cv.channel, "
        "CASE WHEN x.p % 2 = 0 THEN 'in' ELSE 'out' END, CASE WHEN x.p % 2 = 0 THEN 'customer' ELSE 'bot' END, "
        f"CASE WHEN x.p % 2 = 0 THEN {texts} ELSE 'Baik kak, pesan nomor ' || x.n || ' sudah kami terima.' END, "
        f"CASE WHEN x.p = 1 THEN {d.json(repr(buttons))} ELSE {d.json(repr('[]'))} END, {d.json(repr('[]'))}, "
        f"CASE WHEN x.p % 2 = 0 THEN {intents} END, CASE WHEN x.p % 2 = 0 THEN 0.87 END, 'id', "
        "cv.channel || CASE WHEN x.p % 2 = 0 THEN '.in.' ELSE '.out.' END || x.n, "
        "CASE WHEN x.p % 2 = 0 THEN 'received' WHEN x.m % 7 = 1 THEN 'delivered' WHEN x.m % 7 = 3 THEN 'sent' "
        "ELSE 'read' END, CASE WHEN x.p % 2 = 1 THEN x.n - 1 END, "
        f"CASE WHEN x.p % 2 = 0 THEN {d.json(repr(meta_in))} ELSE {d.json(repr('{}'))} END, "
        f"{d.ts(f'x.c * {gap} + x.p * 30')} "
        "FROM (SELECT n, n - 1 AS m, (n - 1) / 10 AS c, (n - 1) % 10 AS p FROM {g}) x "
        "JOIN conversations cv ON cv.id = x.c + 1")
    payload = ("'{\"text\": \"' || m.text || '\", \"buttons\": [], \"purpose\": \"reply\", \"language\": \"id\", "
               "\"template_variables\": {\"name\": \"Pelanggan\", \"company\": \"PT Contoh Sejahtera\"}}'")
    add("outbox", 1,
        "id, message_id, conversation_id, channel, recipient, payload, status, attempts, next_attempt_at, "
        "provider_message_id, created_at, sent_at",
        f"SELECT m.id / 2, m.id, m.conversation_id, m.channel, ci.address, {d.json(payload)}, 'sent', 1, "
        "m.created_at, m.provider_message_id, m.created_at, m.created_at "
        "FROM messages m JOIN conversations cv ON cv.id = m.conversation_id "
        "JOIN channel_identities ci ON ci.id = cv.identity_id WHERE m.direction = 'out'")
    add("consents", 1, "id, customer_id, purpose, granted, channel, evidence, recorded_at",
        f"SELECT id, id, 'data_processing', {d.bool(True)}, source, '1', created_at FROM customers")
    add("tasks", n_conv,
        "id, kind, due_at, payload, status, attempts, dedupe_key, created_at, finished_at",
        f"SELECT n, CASE n % 3 WHEN 0 THEN 'survey.csat' WHEN 1 THEN 'sla.check' ELSE 'conversation.close_idle' "
        f"END, {d.ts(f'(n - 1) * {gap} + 3600')}, {d.json(repr('{}'))}, 'done', 1, 'bench:' || n, "
        f"{d.ts(f'(n - 1) * {gap}')}, {d.ts(f'(n - 1) * {gap} + 3600')} FROM {{g}}")
    add("tickets", n_tickets,
        "id, customer_id, conversation_id, kind, status, priority, category, subject, description, "
        "escalation_level, reopened_count, first_responded_at, resolved_at, created_at, updated_at",
        "SELECT x.n, cv.customer_id, cv.id, CASE WHEN x.n % 2 = 0 THEN 'complaint' ELSE 'request' END, 'closed', "
        "0, 'delivery', 'Paket belum sampai ' || x.n, '', 0, 0, cv.last_message_at, cv.closed_at, cv.opened_at, "
        "cv.closed_at FROM (SELECT n FROM {g}) x JOIN conversations cv ON cv.id = (x.n - 1) * 33 + 1")
    add("ticket_events", 1, "id, ticket_id, kind, detail, created_at",
        f"SELECT 2 * t.id - 1, t.id, 'opened', {d.json(repr('{}'))}, t.created_at FROM tickets t "
        f"UNION ALL SELECT 2 * t.id, t.id, 'resolved', {d.json(repr('{}'))}, t.updated_at FROM tickets t")
    return out


SEQUENCED = ("customers", "channel_identities", "conversations", "messages", "outbox", "consents", "tasks",
             "tickets", "ticket_events")


def bulk_load(url: str, postgres: bool, statements: list[tuple[str, str]], sequenced: tuple[str, ...], *,
              analyze: bool = True) -> dict[str, float]:
    """Run bulk `INSERT ... SELECT` statements ((step, sql) pairs) into the migrated database at `url` in one
    transaction, set the id sequences of `sequenced` past the rows, and return {step: seconds}. The benches share it
    (history, inbox, dashboard).

    `analyze` False leaves a SQLite file without planner statistics (sqlite_stat1), as Sapa itself leaves it:
    it never runs ANALYZE or PRAGMA optimize. PostgreSQL is always VACUUM ANALYZEd, as autovacuum would."""
    steps: dict[str, float] = {}
    if postgres:
        import psycopg

        dsn = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn) as conn:
            conn.execute("SET session_replication_role = replica")  # no FK triggers while bulk loading
            conn.execute("SET maintenance_work_mem = '256MB'")
            for step, statement in statements:
                began = time.perf_counter()
                conn.execute(statement)  # type: ignore[arg-type]  # no parameters: % is modulo, not a placeholder
                steps[step] = steps.get(step, 0.0) + time.perf_counter() - began
            for table in sequenced:
                conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # type: ignore[arg-type]
                             f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)")
            conn.commit()
        began = time.perf_counter()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        steps["vacuum analyze"] = time.perf_counter() - began
    else:
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("PRAGMA cache_size=-400000")  # 400 MB: the indexes stay in memory while loading
            conn.execute("BEGIN")
            for step, statement in statements:
                began = time.perf_counter()
                try:
                    conn.execute(statement)
                except sqlite3.Error as exc:
                    raise RuntimeError(f"{step}: {exc}") from exc
                steps[step] = steps.get(step, 0.0) + time.perf_counter() - began
            conn.execute("COMMIT")
            if analyze:
                began = time.perf_counter()
                conn.execute("ANALYZE")
                steps["analyze"] = time.perf_counter() - began
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
    return steps


def load_history(url: str, messages: int, postgres: bool, t0: datetime, *, analyze: bool = True
                 ) -> tuple[float, dict[str, float]]:
    """Fill the migrated database at `url`; returns (wall seconds, {table or step: seconds}) (see `bulk_load`)."""
    started = time.perf_counter()
    statements = history_statements(Dialect(postgres, t0), messages) if messages else []
    steps = bulk_load(url, postgres, statements, SEQUENCED, analyze=analyze)
    return time.perf_counter() - started, steps


def count_rows(url: str, postgres: bool) -> dict[str, int]:
    tables = ("messages", "conversations", "customers", "channel_identities", "outbox", "tickets", "tasks")
    query = " UNION ALL ".join(f"SELECT '{t}', COUNT(*) FROM {t}" for t in tables)
    if postgres:
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            return {t: int(c) for t, c in conn.execute(query).fetchall()}  # type: ignore[arg-type]
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        return {t: int(c) for t, c in conn.execute(query).fetchall()}
    finally:
        conn.close()


# ---------------------------------------------------------------- CPU of a process tree


def _stat(pid: str) -> tuple[int, int, int] | None:
    """(ppid, own CPU ticks, CPU ticks of reaped children) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def tree_cpu_s(root: int) -> float:
    """CPU seconds (user + system) a process and all its descendants used, those that exited included (their
    time moves to the parent's children counters when the parent reaps them, so the sum never drops)."""
    stats = {int(pid): s for pid in os.listdir("/proc") if pid.isdigit() and (s := _stat(pid)) is not None}
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += stats[pid][1] + stats[pid][2]
            todo.extend(children.get(pid, []))
    return total / CLOCK_TICKS


# ---------------------------------------------------------------- one size: a database and a server


@dataclass
class Target:
    size: int
    url: str
    workdir: Path
    postgres: PostgresServer | None = None
    env: dict[str, str] = field(default_factory=dict)
    server: inbound.Server | None = None
    load_s: float = 0.0
    load_steps: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    idle_ms_per_s: tuple[float, float] = (0.0, 0.0)  # sapa, database server
    runs: list[dict[str, Any]] = field(default_factory=list)
    poller: Any = None  # the connection unsent() reads the outbox with

    @property
    def db_pid(self) -> int | None:
        if self.postgres is None:
            return None
        return int((self.postgres.data / "postmaster.pid").read_text().split()[0])

    def cpu(self) -> tuple[float, float]:
        """(CPU seconds of sapa serve, CPU seconds of the PostgreSQL server: 0 on SQLite)."""
        assert self.server is not None
        db_pid = self.db_pid
        return tree_cpu_s(self.server.process.pid), tree_cpu_s(db_pid) if db_pid else 0.0

    def unsent(self) -> int:
        """Replies not yet delivered, read on one kept connection (a new PostgreSQL connection per poll would
        fork a backend each time and add its CPU to the measurement)."""
        query = "SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'sending')"
        if self.poller is None:
            if self.postgres is not None:
                import psycopg

                self.poller = psycopg.connect(self.url.replace("postgresql+psycopg://", "postgresql://"),
                                              autocommit=True)
            else:
                self.poller = sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=30, isolation_level=None)
        row = self.poller.execute(query).fetchone()
        return int(row[0]) if row else -1


def make_target(size: int, backend: str, root: Path, t0: datetime, analyze: bool = True) -> Target:
    workdir = root / f"{backend}-{size}"
    workdir.mkdir()
    if backend == "postgres":
        server = PostgresServer().start()
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute("CREATE DATABASE sapa_bench")
        target = Target(size, server.url("sapa_bench"), workdir, postgres=server)
    else:
        target = Target(size, f"sqlite:///{workdir / 'sapa.db'}", workdir)
    target.env = prepare_sapa(workdir, target.url, reuse_nlu=True)
    target.load_s, target.load_steps = load_history(target.url, size, backend == "postgres", t0, analyze=analyze)
    target.counts = count_rows(target.url, backend == "postgres")
    return target


def upgrade(target: Target) -> None:
    """`sapa db upgrade` again just before the server starts: a migration added to the checkout while the history
    was loading would otherwise stop `sapa serve` (it refuses an unmigrated database)."""
    done = subprocess.run([*sapa_command(), "--log-level", "WARNING", "db", "upgrade"], cwd=target.workdir,
                          env=target.env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"`sapa db upgrade` failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def new_sessions(base_url: str, count: int) -> list[str]:
    """Fresh web chat sessions, one at a time, waiting out a 429 (Retry-After) as a browser would: the server
    limits new sessions per client address, and every session here comes from 127.0.0.1."""
    tokens: list[str] = []
    deadline = time.monotonic() + 300
    with httpx.Client(trust_env=False, timeout=30) as http:
        while len(tokens) < count:
            response = http.post(f"{base_url}/api/webchat/sessions", json={"language": "id"})
            if response.status_code == 201:
                tokens.append(response.json()["session_id"])
            elif response.status_code == 429 and time.monotonic() < deadline:
                time.sleep(float(response.headers.get("Retry-After", "1")))
            else:
                raise RuntimeError(f"creating a web chat session: HTTP {response.status_code}: {response.text[:200]}")
    return tokens


def measure(target: Target, texts: list[str], sessions: int, concurrency: int, run_id: str) -> dict[str, Any]:
    assert target.server is not None
    base_url = target.server.base_url
    tokens = new_sessions(base_url, sessions)
    time.sleep(0.3)
    sapa0, db0 = target.cpu()
    result = asyncio.run(inbound.run_load("sapa", base_url, tokens, texts, concurrency, run_id))
    deadline = time.monotonic() + 60
    while (left := target.unsent()) and time.monotonic() < deadline:
        time.sleep(0.05)
    sapa1, db1 = target.cpu()
    ok = max(result.ok, 1)
    return {
        "ok": result.ok, "failed": result.non_200 + sum(result.errors.values()), "unsent": left,
        "samples": result.samples, "wall_s": round(result.wall_s, 2),
        "sapa_ms": (sapa1 - sapa0) * 1000 / ok, "db_ms": (db1 - db0) * 1000 / ok,
        "total_ms": ((sapa1 - sapa0) + (db1 - db0)) * 1000 / ok,
    }


def idle_rates(targets: list[Target], seconds: float) -> None:
    before = [t.cpu() for t in targets]
    time.sleep(seconds)
    for target, (sapa0, db0) in zip(targets, before, strict=True):
        sapa1, db1 = target.cpu()
        target.idle_ms_per_s = ((sapa1 - sapa0) * 1000 / seconds, (db1 - db0) * 1000 / seconds)


def run_backend(backend: str, sizes: list[int], args: argparse.Namespace, root: Path) -> dict[str, Any]:
    t0 = (datetime.now(UTC) - timedelta(days=400)).replace(microsecond=0)
    targets: list[Target] = []
    try:
        for size in sizes:
            target = make_target(size, backend, root, t0, analyze=not args.sqlite_no_analyze)
            targets.append(target)
            steps = ", ".join(f"{k} {v:.1f}s" for k, v in target.load_steps.items())
            print(f"[{backend}] {size:>9,} messages loaded in {target.load_s:.1f}s wall ({steps}); rows: "
                  f"{target.counts}", flush=True)
        for target in targets:
            upgrade(target)
            target.server = inbound.start_sapa(target.workdir, target.env)
        for target in targets:
            target.server.wait_healthy()  # type: ignore[union-attr]
        print(f"[{backend}] {len(targets)} sapa servers healthy; warming up", flush=True)
        run_id = f"h{int(time.time())}"
        for target in targets:
            measure(target, inbound.message_plan(args.warmup, args.seed - 1), args.sessions, args.concurrency,
                    f"{run_id}w")
        idle_rates(targets, args.idle_seconds)
        for r in range(args.repeat):
            texts = inbound.message_plan(args.messages, args.seed + r)
            # Rotate the order each round: no size is always measured first or last in a round.
            for i in range(len(targets)):
                target = targets[(i + r) % len(targets)]
                run = measure(target, texts, args.sessions, args.concurrency, f"{run_id}r{r}")
                target.runs.append(run)
                print(f"[{backend}] repeat {r + 1}/{args.repeat} {target.size:>9,} rows: "
                      f"{run['total_ms']:.2f} ms CPU/msg (sapa {run['sapa_ms']:.2f}, db {run['db_ms']:.2f}), "
                      f"{run['ok']} ok, {run['failed']} failed, {run['unsent']} unsent, {run['wall_s']}s wall",
                      flush=True)
    finally:
        for target in targets:
            if target.server is not None:
                target.server.stop()
                problems, lines = inbound.problems_in_log(target.server.log())
                if problems:
                    print(f"[{backend}] {target.size:,} rows: sapa serve logged {dict(problems)}")
                    for line in lines[:5]:
                        print(f"  {line}")
            if target.poller is not None:
                target.poller.close()
            if target.postgres is not None:
                target.postgres.stop()
    return report(backend, targets)


def report(backend: str, targets: list[Target]) -> dict[str, Any]:
    def median(target: Target, key: str) -> float:
        return statistics.median(run[key] for run in target.runs) if target.runs else float("nan")

    base = median(targets[0], "total_ms") if targets and targets[0].size == 0 else float("nan")
    print(f"\n{backend}: server CPU per inbound web chat message, median of {len(targets[0].runs)} repeats")
    header = (f"{'stored msgs':>12} {'load s':>7} {'sapa ms':>8} {'db ms':>7} {'total ms':>9} {'min-max':>13} "
              f"{'vs empty':>9} {'idle ms/s':>10} {'failed':>7}")
    print(header)
    print("-" * len(header))
    rows = []
    for t in targets:
        totals = [run["total_ms"] for run in t.runs]
        total = median(t, "total_ms")
        failed = sum(run["failed"] + run["unsent"] for run in t.runs)
        idle = sum(t.idle_ms_per_s)
        print(f"{t.size:>12,} {t.load_s:>7.1f} {median(t, 'sapa_ms'):>8.2f} {median(t, 'db_ms'):>7.2f} "
              f"{total:>9.2f} {min(totals):>6.2f}-{max(totals):<6.2f} {total / base:>9.3f} {idle:>10.1f} "
              f"{failed:>7}")
        rows.append({"stored_messages": t.size, "rows": t.counts, "load_s": round(t.load_s, 1),
                     "load_steps_s": {k: round(v, 2) for k, v in t.load_steps.items()},
                     "sapa_ms": round(median(t, "sapa_ms"), 3), "db_ms": round(median(t, "db_ms"), 3),
                     "total_ms": round(total, 3), "runs_total_ms": [round(x, 3) for x in totals],
                     "ratio": round(total / base, 3), "idle_ms_per_s": round(idle, 1), "failed": failed})
        for run in t.runs:
            for sample in run["samples"][:2]:
                print(f"  e.g. {sample}")
    return {"backend": backend, "sizes": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--rows", type=int, default=1_000_000, help="stored messages of the largest size")
    parser.add_argument("--sizes", default=None, help="comma-separated sizes instead of 0,20000,200000,ROWS")
    parser.add_argument("--messages", type=int, default=300, help="messages per measured repeat (default 300)")
    parser.add_argument("--repeat", type=int, default=5, help="measured repeats per size (default 5)")
    parser.add_argument("--warmup", type=int, default=60, help="unmeasured messages per server first")
    parser.add_argument("--sessions", type=int, default=16, help="fresh web chat sessions per repeat")
    parser.add_argument("--concurrency", type=int, default=4, help="concurrent senders (default 4)")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="idle CPU measured this long")
    parser.add_argument("--sqlite-no-analyze", action="store_true",
                        help="leave SQLite without planner statistics, as Sapa leaves its file (no ANALYZE)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (SQLite files, logs)")
    args = parser.parse_args(argv)
    sizes = sorted({int(s) for s in args.sizes.split(",")} if args.sizes else
                   {0, *(s for s in (20_000, 200_000) if s < args.rows), args.rows})
    if sizes[0] != 0:
        sizes.insert(0, 0)  # the empty database is the baseline, measured in the same run
    backends = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    root = Path(tempfile.mkdtemp(prefix="sapa-bench-history-"))
    print(f"Sapa history benchmark: sizes {sizes}, {args.repeat} x {args.messages} messages per size, "
          f"concurrency {args.concurrency}, {', '.join(backends)}, python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs; work folder {root}", flush=True)
    results = []
    try:
        for backend in backends:
            results.append(run_backend(backend, sizes, args, root))
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps({"benchmark": "history", "messages": args.messages, "repeat": args.repeat,
                      "concurrency": args.concurrency, "results": results}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
