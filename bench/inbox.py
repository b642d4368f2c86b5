"""Inbox benchmark: the staff console's queue and transcript queries (store/inbox.py) at 10,000 open conversations.

    .venv/bin/python -m bench.inbox [--db sqlite|postgres|both] [--open 10000] [--history 50000]
                                     [--transcript 5000] [--repeat 40]

A fresh database per backend (a SQLite file in a temporary folder; a throwaway PostgreSQL server from
tests/support/pgserver.py), migrated to head and filled with bulk `INSERT ... SELECT` statements (bench/history.py's
Dialect): 20 staff; --open open conversations (60% waiting, 40% held by one of the staff; one in 20 customers a VIP;
four channels; three messages each; a third with an open complaint ticket whose first-response and resolution dues
are set, half of them answered); --history customers whose conversations are over (closed, a third of them after a
handoff, every eighth still with the bot), two messages and a resolved ticket each; and one customer with
--transcript messages (notes among them) over two channels. Then VACUUM ANALYZE on PostgreSQL; SQLite is measured
twice, as Sapa leaves it (no planner statistics: Sapa never runs ANALYZE) and after ANALYZE.

Each query runs in its own read-only unit of work, as a console request does, --repeat times after two unmeasured
runs: the first queue page; a deep page (the 101st page of 50, through cursors fetched beforehand); VIPs only; the
viewer's own; the count alone; the live marker; the newest transcript page (100 messages); an older one (25 pages
back); messages after an id (live updates). It prints median and p95 milliseconds per query per database and, last,
one JSON object with all of them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/history.py imports its neighbours this way
from history import Dialect, bulk_load  # noqa: E402

from store import create_database, inbox  # noqa: E402
from store.inbox import QueueFilters  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from tests.support.pgserver import PostgresServer  # noqa: E402

CHANNELS = ("whatsapp", "telegram", "sms", "webchat")
STAFF = 20
VIEWER = 1  # the member of staff whose "mine" is measured
T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)  # "now" of the loaded data
SHIFT = 400 * 86400  # Dialect.ts counts forward from a base this long before T0: SQLite's datetime() takes "+N"


def channel_of(number: str) -> str:
    return "CASE (" + number + ") % 4 " + " ".join(f"WHEN {i} THEN '{c}'" for i, c in enumerate(CHANNELS)) + " END"


def statements(d: Dialect, open_: int, history: int, transcript: int) -> list[tuple[str, str]]:
    """(what, statement) filling an empty, migrated database. Ids are explicit: queue customers and their
    conversations are 1..open_, history ones follow, the transcript customer is last."""
    out: list[tuple[str, str]] = []

    def ts(seconds: str) -> str:  # T0 + seconds (negative: in the past)
        return d.ts(f"{SHIFT} + ({seconds})")

    meta, empty = d.json("'{}'"), d.json("'[]'")
    people = open_ + history
    reader = people + 1  # the customer with the long transcript

    def add(what: str, rows: int, sql: str) -> None:
        prefix, source = d.series(rows)
        out.append((what, prefix + sql.replace("{g}", source)))

    add("staff", STAFF, "INSERT INTO agents (id, name, role, active, created_at, availability) "
        f"SELECT n, 'Staff ' || n, 'customer_service', {d.bool(True)}, {ts('0')}, 'online' FROM {{g}}")
    add("customers", people + 1,
        "INSERT INTO customers (id, name, is_vip, vip_tier, source, created_at, updated_at) "
        f"SELECT n, 'Pelanggan ' || n, CASE WHEN n <= {open_} AND n % 20 = 0 THEN {d.bool(True)} "
        f"ELSE {d.bool(False)} END, CASE WHEN n <= {open_} AND n % 20 = 0 THEN 'gold' END, 'webchat', "
        f"{ts('0')}, {ts('0')} FROM {{g}}")
    add("identities", people + 1,
        "INSERT INTO channel_identities (id, customer_id, channel, address, created_at) "
        f"SELECT n, n, {channel_of('n')}, 'addr' || n, {ts('0')} FROM {{g}}")
    out.append(("identities", "INSERT INTO channel_identities (id, customer_id, channel, address, created_at) "
                f"VALUES ({reader + 1}, {reader}, 'telegram', 'addr-second', {ts('0')})"))
    # Open conversations: handed off over the last three days (seconds after T0 - 3 days, spread by a stride).
    since = "(259200 - (n * 7919) % 259200)"
    add("open conversations", open_,
        "INSERT INTO conversations (id, customer_id, identity_id, channel, status, owner_agent_id, priority, "
        "language, pending_data, misunderstood, opened_at, last_message_at, handed_off_at) "
        f"SELECT n, n, n, {channel_of('n')}, CASE WHEN n % 5 < 3 THEN 'waiting' ELSE 'with_agent' END, "
        f"CASE WHEN n % 5 < 3 THEN NULL ELSE 1 + n % {STAFF} END, 0, 'id', {meta}, 0, "
        f"{ts(f'-{since} - 600')}, {ts(f'-{since} + 60')}, {ts(f'-{since}')} FROM {{g}}")
    add("history conversations", history,
        "INSERT INTO conversations (id, customer_id, identity_id, channel, status, priority, language, pending_data, "
        "misunderstood, opened_at, last_message_at, closed_at, handed_off_at) "
        f"SELECT {open_} + n, {open_} + n, {open_} + n, {channel_of('n')}, "
        "CASE WHEN n % 8 = 0 THEN 'bot' ELSE 'closed' END, 0, 'id', "
        f"{meta}, 0, {ts('-31536000 + n * 600')}, {ts('-31536000 + n * 600 + 60')}, "
        f"{ts('-31536000 + n * 600 + 3600')}, CASE WHEN n % 3 = 0 THEN {ts('-31536000 + n * 600 + 30')} END "
        "FROM {g}")
    first_chat = people + 1
    for offset, (identity, status, at) in enumerate(((reader, "closed", "-864000"), (reader + 1, "waiting", "-3600"))):
        out.append(("transcript conversations",
                    "INSERT INTO conversations (id, customer_id, identity_id, channel, status, priority, language, "
                    "pending_data, misunderstood, opened_at, last_message_at, handed_off_at) "
                    f"VALUES ({first_chat + offset}, {reader}, {identity}, "
                    f"'{'webchat' if offset == 0 else 'telegram'}', '{status}', 0, 'id', "
                    f"{meta}, 0, {ts(at)}, {ts(at)}, {ts(at)})"))
    message = ("INSERT INTO messages (id, conversation_id, customer_id, channel, direction, sender, text, buttons, "
               "media, meta, created_at) ")
    add("open messages", 3 * open_,
        message + f"SELECT n, (n - 1) / 3 + 1, (n - 1) / 3 + 1, {channel_of('(n - 1) / 3 + 1')}, "
        "CASE WHEN n % 3 = 2 THEN 'out' ELSE 'in' END, CASE WHEN n % 3 = 2 THEN 'bot' ELSE 'customer' END, "
        f"'pesanan saya nomor ' || n || ' belum sampai, tolong dicek ya kak', {empty}, {empty}, {meta}, "
        f"{ts('-(259200 - (((n - 1) / 3 + 1) * 7919) % 259200) + n % 3')} FROM {{g}}")
    base = 3 * open_
    add("history messages", 2 * history,
        message + f"SELECT {base} + n, {open_} + (n - 1) / 2 + 1, {open_} + (n - 1) / 2 + 1, "
        f"{channel_of('(n - 1) / 2 + 1')}, CASE WHEN n % 2 = 0 THEN 'out' ELSE 'in' END, "
        f"CASE WHEN n % 2 = 0 THEN 'bot' ELSE 'customer' END, 'halo kak', {empty}, {empty}, {meta}, "
        f"{ts('-31536000 + ((n - 1) / 2 + 1) * 600 + n % 2')} FROM {{g}}")
    base += 2 * history
    add("transcript messages", transcript,
        message + f"SELECT {base} + n, CASE WHEN n <= {transcript // 2} THEN {first_chat} ELSE {first_chat + 1} END, "
        f"{reader}, CASE WHEN n <= {transcript // 2} THEN 'webchat' ELSE 'telegram' END, "
        "CASE WHEN n % 10 = 0 THEN 'note' WHEN n % 2 = 0 THEN 'out' ELSE 'in' END, "
        "CASE WHEN n % 2 = 0 THEN 'agent' ELSE 'customer' END, 'pesan ke-' || n, "
        f"{empty}, {empty}, {meta}, {ts('-864000 + n * 100')} FROM {{g}}")
    add("open tickets", open_ // 3,
        "INSERT INTO tickets (id, customer_id, conversation_id, kind, status, priority, subject, description, "
        "first_response_due_at, resolution_due_at, first_responded_at, escalation_level, reopened_count, "
        "created_at, updated_at) "
        f"SELECT n, (n * 37) % {open_} + 1, (n * 37) % {open_} + 1, 'complaint', "  # spread over the queue
        "CASE WHEN n % 2 = 0 THEN 'in_progress' ELSE 'open' END, 1, 'rusak', '', "
        f"{ts('(n * 131) % 14400')}, {ts('86400 + (n * 131) % 14400')}, "
        f"CASE WHEN n % 2 = 0 THEN {ts('-60')} END, 0, 0, {ts('-3600')}, {ts('-3600')} FROM {{g}}")
    add("history tickets", history // 5,
        "INSERT INTO tickets (id, customer_id, conversation_id, kind, status, priority, subject, description, "
        "escalation_level, reopened_count, created_at, updated_at, resolved_at) "
        f"SELECT {open_ // 3} + n, {open_} + 5 * n, {open_} + 5 * n, 'complaint', 'resolved', 1, 'rusak', '', 0, 0, "
        f"{ts('-31536000 + n * 3000')}, {ts('-31536000 + n * 3000')}, {ts('-31536000 + n * 3000')} FROM {{g}}")
    return out


SEQUENCED = ("agents", "customers", "channel_identities", "conversations", "messages", "tickets")


def load(url: str, postgres: bool, args: argparse.Namespace) -> float:
    started = time.perf_counter()
    # Without ANALYZE on SQLite, as Sapa leaves its database (history.bulk_load).
    sql = statements(Dialect(postgres, T0 - timedelta(seconds=SHIFT)), args.open, args.history, args.transcript)
    bulk_load(url, postgres, sql, SEQUENCED, analyze=False)
    return time.perf_counter() - started


def sqlite_analyze(url: str) -> None:
    conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        conn.execute("ANALYZE")
    finally:
        conn.close()


Query = Callable[[Session], Any]


def queries(database: Any, args: argparse.Namespace) -> dict[str, Query]:
    """The measured calls, with what they need (cursors, ids) looked up first, unmeasured."""
    open_all = QueueFilters()
    reader = args.open + args.history + 1
    with database.unit_of_work(read_only=True) as session:
        cursor = None
        for _ in range(100):  # to the 101st page
            cursor = inbox.queue(session, viewer_id=VIEWER, filters=open_all, limit=50, cursor=cursor).next_cursor
        newest = inbox.transcript(session, reader, limit=100)
        older_before = newest.messages[0].id - 25 * 100
        live_after = newest.messages[-1].id - 5
    return {
        "queue first page": lambda s: inbox.queue(s, viewer_id=VIEWER, filters=open_all),
        "queue page 101 (cursor)": lambda s: inbox.queue(s, viewer_id=VIEWER, filters=open_all, cursor=cursor),
        "queue VIPs": lambda s: inbox.queue(s, viewer_id=VIEWER, filters=QueueFilters(vip=True)),
        "queue mine": lambda s: inbox.queue(s, viewer_id=VIEWER, filters=QueueFilters(mine=True)),
        "count (open)": lambda s: inbox.count(s, viewer_id=VIEWER, filters=open_all),
        "queue marker": inbox.queue_marker,
        "transcript newest 100": lambda s: inbox.transcript(s, reader, limit=100),
        "transcript older page": lambda s: inbox.transcript(s, reader, before_id=older_before, limit=100),
        "messages after (live)": lambda s: inbox.messages_after(s, reader, live_after),
    }


def measure(database: Any, calls: dict[str, Query], repeat: int) -> dict[str, dict[str, float]]:
    results = {}
    for name, call in calls.items():
        times = []
        for attempt in range(repeat + 2):
            began = time.perf_counter()
            with database.unit_of_work(read_only=True) as session:
                call(session)
            if attempt >= 2:  # two warm-up runs: caches and statement compilation
                times.append((time.perf_counter() - began) * 1000)
        times.sort()
        results[name] = {"median_ms": round(statistics.median(times), 2),
                         "p95_ms": round(times[min(len(times) - 1, int(0.95 * len(times)))], 2)}
    return results


def check(database: Any, args: argparse.Namespace) -> None:
    """What was loaded is what the queries see (a wrong INSERT would make the timings meaningless)."""
    with database.unit_of_work(read_only=True) as session:
        page = inbox.queue(session, viewer_id=VIEWER, filters=QueueFilters())
        assert page.total == args.open + 1, page.total  # and the long transcript's customer, waiting
        assert page.rows[0].vip and page.rows[0].last_text and page.next_cursor
        assert any(row.sla_due for row in page.rows)
        assert len(inbox.transcript(session, args.open + args.history + 1).messages) == 100


def run(backend: str, root: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    server = None
    if backend == "postgres":
        server = PostgresServer().start()
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute("CREATE DATABASE sapa_bench")
        url = server.url("sapa_bench")
    else:
        url = f"sqlite:///{root / 'inbox.db'}"
    try:
        upgrade(url)
        loaded = load(url, backend == "postgres", args)
        print(f"{backend}: loaded in {loaded:.1f} s", flush=True)
        rows = []
        stages = [("sqlite (no statistics)", None), ("sqlite (ANALYZE)", sqlite_analyze)] if backend == "sqlite" \
            else [("postgres", None)]
        for label, prepare in stages:
            if prepare is not None:
                prepare(url)
            database = create_database(url)
            try:
                check(database, args)
                rows.append({"database": label, "load_s": round(loaded, 1),
                             "queries": measure(database, queries(database, args), args.repeat)})
            finally:
                database.dispose()
        return rows
    finally:
        if server is not None:
            server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--open", type=int, default=10_000, help="open conversations in the queue")
    parser.add_argument("--history", type=int, default=50_000, help="customers with finished conversations")
    parser.add_argument("--transcript", type=int, default=5_000, help="messages of the one long transcript")
    parser.add_argument("--repeat", type=int, default=40, help="measured runs per query")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (the SQLite file)")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="sapa-bench-inbox-"))
    print(f"Sapa inbox benchmark: {args.open:,} open conversations, {args.history:,} finished customers, a "
          f"{args.transcript:,}-message transcript, {args.repeat} runs per query; python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs", flush=True)
    results: list[dict[str, Any]] = []
    try:
        for backend in (["sqlite", "postgres"] if args.db == "both" else [args.db]):
            results += run(backend, root, args)
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    names = list(results[0]["queries"]) if results else []
    print(f"\n{'ms: median / p95':<26}" + "".join(f"{r['database']:>26}" for r in results))
    for name in names:
        cells = "".join(f"{q['median_ms']:>15.1f} / {q['p95_ms']:<8.1f}" for q in (r["queries"][name] for r in results))
        print(f"{name:<26}{cells}")
    print(json.dumps({"benchmark": "inbox", "open": args.open, "history": args.history,
                      "transcript": args.transcript, "repeat": args.repeat, "results": results}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
