"""Dashboard benchmark: the managers' dashboard (/console/dashboard) over a year of data, through the real app.

    .venv/bin/python -m bench.dashboard [--db sqlite|postgres|both] [--customers 100000] [--messages 1000000]
                                         [--repeat 5]

A fresh database per backend (a SQLite file in a temporary folder; a throwaway PostgreSQL server from
tests/support/pgserver.py), migrated to head and filled with bulk `INSERT ... SELECT` statements (bench/history.py's
Dialect), a year up to "now" (T0, a Sunday): --customers customers (one in 50 a gold VIP), one identity each, four
channels; a conversation per five messages (--messages / 5), opened evenly over the year, a quarter of them handed
to one of 20 agents (who write one reply in them), the last 300 still open (waiting or with an agent); five
messages each; a ticket per eight conversations (two thirds complaints, with a category and a root cause), due
times of 1 h / 24 h, answered and resolved after spread-out delays so that a share breach; ticket events (opened,
resolved, escalated for one in ten with level 1 or 2, reopened for one in 50); a CSAT survey asked per resolved
ticket (45% answered, scores 1-5) and an NPS survey per 20 conversations (30% answered, scores 0-10). Then VACUUM
ANALYZE on PostgreSQL; SQLite is left as Sapa leaves it (no ANALYZE).

The measured requests go through the real ASGI app (fastapi TestClient), signed in as a supervisor, exactly as a
browser asks: GET /console/dashboard?days=7|30|90|365, a drill page (first-response SLA breached over 30 days) and
the per-conversation export (CSV, 30 days). Each runs --repeat times after one unmeasured run; the script prints
median and worst milliseconds per request per database, the baseline of the same run (GET /console/password, a
signed-in page that reads nothing else), the ratio to it, and, last, one JSON object with all the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/history.py imports its neighbours this way
from history import Dialect, bulk_load  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from argon2 import PasswordHasher  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from bot.app import build, create_app  # noqa: E402
from bot.clock import ManualClock  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.console import auth  # noqa: E402
from handlers.permissions import ROLES  # noqa: E402
from nlu.embedded import load_or_train  # noqa: E402
from store import create_database  # noqa: E402
from store import staff as staff_store  # noqa: E402
from store.migrate import downgrade, upgrade  # noqa: E402
from tests.support.pgserver import PostgresServer  # noqa: E402

CHANNELS = ("whatsapp", "telegram", "sms", "webchat")
CATEGORIES = ("delivery", "payment", "product", "account", "refund")
CAUSES = ("courier_delay", "stock_error", "app_bug", "customer_error", "packaging")
STAFF = 20
OPEN = 300  # the newest conversations are still open: the live queue
T0 = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)  # "now": Sunday 10:00 in Jakarta
YEAR = 365 * 86400
SHIFT = YEAR + 86400  # Dialect.ts counts forward from a base this long before T0
PASSWORD = "kopi-susu-gula-aren"
MANAGER = "manager@bench.example"


def channel_of(number: str) -> str:
    return "CASE (" + number + ") % 4 " + " ".join(f"WHEN {i} THEN '{c}'" for i, c in enumerate(CHANNELS)) + " END"


def pick(values: tuple[str, ...], number: str) -> str:
    return "CASE (" + number + f") % {len(values)} " + \
        " ".join(f"WHEN {i} THEN '{v}'" for i, v in enumerate(values)) + " END"


def statements(d: Dialect, customers: int, messages: int) -> list[tuple[str, str]]:
    """(what, statement) filling an empty, migrated database. Ids are explicit."""
    out: list[tuple[str, str]] = []
    conversations = max(OPEN + 1, messages // 5)
    tickets = conversations // 8
    gap = YEAR / conversations  # seconds between two conversations' openings

    def ts(seconds: str) -> str:  # T0 + seconds (negative: in the past)
        return d.ts(f"{SHIFT} + ({seconds})")

    def add(what: str, rows: int, sql: str) -> None:
        prefix, source = d.series(rows)
        out.append((what, prefix + sql.replace("{g}", source)))

    meta, empty = d.json("'{}'"), d.json("'[]'")
    owner = f"((c * 7919) % {customers} + 1)"  # the customer of conversation c
    opened = f"(-{YEAR} + CAST(c * {gap:.4f} AS INTEGER))"  # seconds after T0 conversation c was opened
    vip = "% 50 = 0"  # customer ids that are VIPs
    add("staff", STAFF, "INSERT INTO agents (id, name, role, active, created_at, availability) "
        f"SELECT n, 'Agen ' || n, 'customer_service', {d.bool(True)}, {ts(f'-{YEAR}')}, 'online' FROM {{g}}")
    add("customers", customers,
        "INSERT INTO customers (id, name, is_vip, vip_tier, source, created_at, updated_at) "
        f"SELECT n, 'Pelanggan ' || n, CASE WHEN n {vip} THEN {d.bool(True)} ELSE {d.bool(False)} END, "
        f"CASE WHEN n {vip} THEN 'gold' END, {channel_of('n')}, {ts(f'-{YEAR}')}, {ts(f'-{YEAR}')} FROM {{g}}")
    add("identities", customers,
        "INSERT INTO channel_identities (id, customer_id, channel, address, created_at) "
        f"SELECT n, n, {channel_of('n')}, 'addr' || n, {ts(f'-{YEAR}')} FROM {{g}}")
    handed = "c % 4 = 0"
    add("conversations", conversations,
        "INSERT INTO conversations (id, customer_id, identity_id, channel, status, owner_agent_id, priority, language, "
        "pending_data, misunderstood, opened_at, last_message_at, closed_at, handed_off_at) "
        f"SELECT c, {owner}, {owner}, {channel_of(owner)}, "
        f"CASE WHEN c > {conversations - OPEN} THEN (CASE WHEN c % 2 = 0 THEN 'waiting' ELSE 'with_agent' END) "
        f"WHEN {handed} THEN 'closed' ELSE 'bot' END, "
        f"CASE WHEN {handed} OR (c > {conversations - OPEN} AND c % 2 = 1) THEN 1 + c % {STAFF} END, 0, 'id', "
        f"{meta}, 0, {ts(opened)}, {ts(f'{opened} + 120')}, "
        f"CASE WHEN {handed} AND c <= {conversations - OPEN} THEN {ts(f'{opened} + 3600')} END, "
        f"CASE WHEN {handed} OR c > {conversations - OPEN} THEN {ts(f'{opened} + 30')} END "
        f"FROM (SELECT n AS c FROM {{g}}) x")
    # Five messages per conversation: in, out (bot), in, out (an agent's reply where handed off), in.
    c_of = "((n - 1) / 5 + 1)"
    add("messages", conversations * 5,
        "INSERT INTO messages (id, conversation_id, customer_id, channel, direction, sender, agent_id, text, buttons, "
        "media, meta, created_at) "
        f"SELECT n, c, {owner}, {channel_of(owner)}, CASE WHEN k % 2 = 1 THEN 'out' ELSE 'in' END, "
        f"CASE WHEN k % 2 = 0 THEN 'customer' WHEN k = 3 AND {handed} THEN 'agent' ELSE 'bot' END, "
        f"CASE WHEN k = 3 AND {handed} THEN 1 + c % {STAFF} END, 'pesanan saya belum sampai kak', "
        f"{empty}, {empty}, {meta}, {ts(f'{opened} + k * 20')} "
        f"FROM (SELECT n, {c_of} AS c, (n - 1) % 5 AS k FROM {{g}}) x")
    # A ticket per eighth conversation (t: ticket id, c = 8t its conversation).
    created = f"({ts(f'(-{YEAR} + CAST(8 * t * {gap:.4f} AS INTEGER)) + 40')})"
    base = f"(-{YEAR} + CAST(8 * t * {gap:.4f} AS INTEGER)) + 40"
    open_ticket = f"8 * t > {conversations - OPEN}"
    tvip = f"(((8 * t) * 7919) % {customers} + 1) {vip}"
    answered = f"{base} + 60 * ((t * 37) % {'240'})"  # up to 4 h: a share misses the 1 h (VIP) / 4 h target
    resolved = f"{base} + 60 * ((t * 53) % 2000)"  # up to 33 h: a share misses 24 h
    add("tickets", tickets,
        "INSERT INTO tickets (id, customer_id, conversation_id, kind, status, priority, category, root_cause, subject, "
        "description, assigned_agent_id, first_response_due_at, resolution_due_at, first_responded_at, resolved_at, "
        "escalation_level, reopened_count, created_at, updated_at) "
        f"SELECT t, ((8 * t) * 7919) % {customers} + 1, 8 * t, "
        "CASE WHEN t % 3 = 0 THEN 'request' ELSE 'complaint' END, "
        f"CASE WHEN {open_ticket} THEN 'open' ELSE 'resolved' END, 1, {pick(CATEGORIES, 't')}, "
        f"CASE WHEN t % 3 <> 0 AND NOT ({open_ticket}) THEN {pick(CAUSES, 't / 3')} END, 'Pesanan', '', "
        f"1 + (8 * t) % {STAFF}, {ts(f'{base} + CASE WHEN {tvip} THEN 3600 ELSE 14400 END')}, "
        f"{ts(f'{base} + 86400')}, CASE WHEN NOT ({open_ticket}) THEN {ts(answered)} END, "
        f"CASE WHEN NOT ({open_ticket}) THEN {ts(resolved)} END, "
        f"CASE WHEN t % 10 = 0 THEN 1 + t % 2 ELSE 0 END, CASE WHEN t % 50 = 0 THEN 1 ELSE 0 END, "
        f"{created}, {created} FROM (SELECT n AS t FROM {{g}}) x")
    event = ("INSERT INTO ticket_events (id, ticket_id, kind, agent_id, detail, created_at) ")
    add("ticket events: opened", tickets,
        event + f"SELECT t, t, 'opened', NULL, {meta}, {created} FROM (SELECT n AS t FROM {{g}}) x")
    add("ticket events: resolved", tickets,
        event + f"SELECT {tickets} + t, t, 'resolved', 1 + (8 * t) % {STAFF}, {meta}, {ts(resolved)} "
        f"FROM (SELECT n AS t FROM {{g}}) x WHERE NOT ({open_ticket})")
    level = d.json("'{\"level\": ' || (1 + t % 2) || '}'")
    add("ticket events: escalated", tickets,
        event + f"SELECT {2 * tickets} + t, t, 'escalated', NULL, {level}, {ts(f'{base} + 7200')} "
        "FROM (SELECT n AS t FROM {g}) x WHERE t % 10 = 0")
    add("ticket events: reopened", tickets,
        event + f"SELECT {3 * tickets} + t, t, 'reopened', NULL, {meta}, {ts(f'{base} + 600')} "
        "FROM (SELECT n AS t FROM {g}) x WHERE t % 50 = 0")
    survey = ("INSERT INTO surveys (id, kind, customer_id, ticket_id, conversation_id, agent_id, channel, category, "
              "tier, status, score, comment, asked_at, answered_at) ")
    tcust = f"(((8 * t) * 7919) % {customers} + 1)"
    add("surveys: csat", tickets,
        survey + f"SELECT t, 'csat', {tcust}, t, 8 * t, 1 + (8 * t) % {STAFF}, {channel_of(tcust)}, "
        f"{pick(CATEGORIES, 't')}, CASE WHEN {tvip} THEN 'vip' ELSE 'regular' END, "
        "CASE WHEN t % 20 < 9 THEN 'answered' ELSE 'asked' END, "
        "CASE WHEN t % 20 < 9 THEN 1 + (t * 7) % 5 END, CASE WHEN t % 20 = 0 THEN 'lambat sekali' END, "
        f"{ts(f'{resolved} + 60')}, CASE WHEN t % 20 < 9 THEN {ts(f'{resolved} + 900')} END "
        f"FROM (SELECT n AS t FROM {{g}}) x WHERE NOT ({open_ticket})")
    ccust = f"((20 * s * 7919) % {customers} + 1)"
    sbase = f"(-{YEAR} + CAST(20 * s * {gap:.4f} AS INTEGER))"
    add("surveys: nps", conversations // 20,
        survey + f"SELECT {tickets} + s, 'nps', {ccust}, NULL, 20 * s, NULL, {channel_of(ccust)}, NULL, "
        f"CASE WHEN {ccust} {vip} THEN 'vip' ELSE 'regular' END, "
        "CASE WHEN s % 10 < 3 THEN 'answered' ELSE 'asked' END, CASE WHEN s % 10 < 3 THEN (s * 7) % 11 END, NULL, "
        f"{ts(f'{sbase} + 4000')}, CASE WHEN s % 10 < 3 THEN {ts(f'{sbase} + 5000')} END "
        f"FROM (SELECT n AS s FROM {{g}}) x WHERE 20 * s <= {conversations - OPEN}")
    return out


SEQUENCED = ("agents", "customers", "channel_identities", "conversations", "messages", "tickets", "ticket_events",
             "surveys")


def load(url: str, postgres: bool, args: argparse.Namespace) -> float:
    started = time.perf_counter()
    # Without ANALYZE on SQLite, as Sapa leaves its database (history.bulk_load).
    sql = statements(Dialect(postgres, T0 - timedelta(seconds=SHIFT)), args.customers, args.messages)
    bulk_load(url, postgres, sql, SEQUENCED, analyze=False)
    return time.perf_counter() - started


def counts(database: Any) -> dict[str, int]:
    from sqlalchemy import text

    with database.unit_of_work(read_only=True) as session:
        return {t: int(session.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()) for t in SEQUENCED}


REQUESTS = {
    "dashboard 7 days": "/console/dashboard?days=7",
    "dashboard 30 days": "/console/dashboard?days=30",
    "dashboard 90 days": "/console/dashboard?days=90",
    "dashboard 365 days": "/console/dashboard?days=365",
    "drill: first response breached, 30 days": "/console/dashboard/drill?metric=fr_breached&days=30",
    "export: a row per conversation, 30 days (csv)":
        "/console/dashboard/export?table=conversation_list&days=30&format=csv",
}
BASELINE = "/console/password"


def measure(client: TestClient, path: str, repeat: int) -> dict[str, Any]:
    times = []
    size = 0
    first = 0.0
    for attempt in range(repeat + 1):
        began = time.perf_counter()
        answer = client.get(path)
        spent = (time.perf_counter() - began) * 1000
        if answer.status_code != 200:
            raise RuntimeError(f"GET {path}: {answer.status_code} {answer.text[:300]}")
        size = len(answer.content)
        if attempt >= 1:  # one warm-up run: caches, statement compilation, the dashboard's daily_counts filled
            times.append(spent)
        else:
            first = spent
    return {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1),
            "first_ms": round(first, 1), "bytes": size}


def run(backend: str, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    server = None
    if backend == "postgres":
        server = PostgresServer().start()
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute("CREATE DATABASE sapa_bench")
        url = server.url("sapa_bench")
    else:
        url = f"sqlite:///{root / 'dashboard.db'}"
    try:
        upgrade(url)
        if args.without_indexes:  # the "before" of migration 0012: the same data without the dashboard's indexes
            downgrade(url, "0011")
        loaded = load(url, backend == "postgres", args)
        print(f"{backend}: loaded in {loaded:.1f} s", flush=True)
        settings = load_settings(ROOT / "config.yml", environ={})
        settings = settings.model_copy(update={"database": settings.database.model_copy(update={"url": url})})
        database = create_database(url)
        clock = ManualClock(T0)
        rows = counts(database)
        auth.HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # signing in is not measured
        with database.unit_of_work() as session:
            staff_store.create_staff(session, name="Manajer", email=MANAGER, role="supervisor", roles=ROLES,
                                     now=clock.now(), password_hash=auth.hash_password(PASSWORD))
        interpreter = load_or_train(settings.nlu.confidence_threshold, None, ROOT / "var" / "nlu")
        sapa = build(settings, clock=clock, interpreter=interpreter, database=database, model_cache=None)
        try:
            with TestClient(create_app(sapa, background=False)) as client:
                form = client.get("/console/sign-in").text
                token = form.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
                signed = client.post("/console/sign-in", data={"email": MANAGER, "password": PASSWORD,
                                                               "csrf_token": token}, follow_redirects=False)
                assert signed.status_code == 303, signed.text
                results = {"baseline (signed-in page)": measure(client, BASELINE, args.repeat)}
                for name, path in REQUESTS.items():
                    results[name] = measure(client, path, args.repeat)
                    print(f"  {name}: {results[name]['median_ms']:.0f} ms "
                          f"(first run {results[name]['first_ms']:.0f} ms)", flush=True)
        finally:
            sapa.stop_background()
            database.dispose()
        return {"database": backend, "load_s": round(loaded, 1), "rows": rows, "requests": results}
    finally:
        if server is not None:
            server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="measured runs per request")
    parser.add_argument("--without-indexes", action="store_true",
                        help="migrate to 0011 only: measure without the dashboard's indexes (migration 0012)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (the SQLite file)")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="sapa-bench-dashboard-"))
    print(f"Sapa dashboard benchmark: {args.customers:,} customers, {args.messages:,} messages over a year, "
          f"{args.repeat} runs per request; python {platform.python_version()}, {os.cpu_count()} CPUs", flush=True)
    results: list[dict[str, Any]] = []
    try:
        for backend in (["sqlite", "postgres"] if args.db == "both" else [args.db]):
            results.append(run(backend, root, args))
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    if results:
        print("\nrows: " + ", ".join(f"{t} {n:,}" for t, n in results[0]["rows"].items()))
        base = {r["database"]: r["requests"]["baseline (signed-in page)"]["median_ms"] for r in results}
        print(f"\n{'ms: median / max (x baseline)':<44}" + "".join(f"{r['database']:>28}" for r in results))
        for name in results[0]["requests"]:
            cells = "".join(f"{q['median_ms']:>10.0f} / {q['max_ms']:<6.0f} (x{q['median_ms'] / base[db]:>5.1f})"
                            for db, q in ((r["database"], r["requests"][name]) for r in results))
            print(f"{name:<44}{cells}")
    print(json.dumps({"benchmark": "dashboard", "customers": args.customers, "messages": args.messages,
                      "without_indexes": args.without_indexes,
                      "repeat": args.repeat, "now": T0.isoformat(), "results": results}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
