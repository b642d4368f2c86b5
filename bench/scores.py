"""Customer scores and broadcast numbers benchmark: `store.scores.compute_scores` (CRM-4.1) and
`store.broadcast_stats.broadcast_stats` (CRM-4.4) on generated data.

    .venv/bin/python bench/scores.py [--customers 100000] [--postgres URL] [--seed 1] [--repeat 3] [--keep]

Fills a fresh temporary SQLite database (or the empty --postgres URL), migrated with `sapa db upgrade`, with
`--customers` customers, each with a channel identity and a conversation, and about three transactions per
customer over the last 400 days: a quarter never bought, most bought a few times, a few bought often (the long
tail real shops have); amounts from Rp 50.000 to Rp 5.000.000. About one inbound message per customer, spread
over the last year, and one broadcast to every customer: 90% queued (sent, delivered, read, failed or still
pending, with replies and opt-outs after it), 10% skipped.

Then it times `compute_scores` (every live customer's scores and segment, written in one transaction; best of
`--repeat` runs, each replacing the last), `segment_counts`, and `broadcast_stats` of the broadcast (best of
`--repeat`), and checks that every customer was scored and the broadcast's counts add up. The last line is one
JSON object with the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from workspace import prepare_sapa

from bot.config import load_settings
from store import create_database
from store.broadcast_stats import broadcast_stats
from store.models import (
    Broadcast,
    BroadcastRecipient,
    ChannelIdentity,
    Consent,
    Conversation,
    Customer,
    Message,
    OutboxItem,
    Transaction,
)
from store.scores import compute_scores, segment_counts

NOW = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
SENT = NOW - timedelta(days=3)
BATCH = 5000


def rows_in(database: Any, model: Any, rows: list[dict[str, Any]]) -> None:
    with database.unit_of_work() as session:
        for start in range(0, len(rows), BATCH):
            session.execute(insert(model), rows[start:start + BATCH])


def generate(database: Any, total: int, rng: random.Random) -> dict[str, int]:
    customers = [{"id": i, "name": f"Pelanggan {i}", "source": "whatsapp", "is_vip": False, "created_at": NOW,
                  "updated_at": NOW} for i in range(1, total + 1)]
    rows_in(database, Customer, customers)
    rows_in(database, ChannelIdentity, [{"id": i, "customer_id": i, "channel": "whatsapp", "address": f"+6281{i:09d}",
                                         "created_at": NOW} for i in range(1, total + 1)])
    rows_in(database, Conversation, [{"id": i, "customer_id": i, "identity_id": i, "channel": "whatsapp",
                                      "status": "closed", "language": "id", "pending_data": {}, "opened_at": NOW,
                                      "last_message_at": NOW} for i in range(1, total + 1)])
    transactions: list[dict[str, Any]] = []
    for customer_id in range(1, total + 1):
        if rng.random() < 0.25:
            continue
        for _ in range(min(int(rng.paretovariate(1.3)) + rng.randrange(2), 40)):
            at = NOW - timedelta(days=rng.uniform(0, 400))
            transactions.append({"customer_id": customer_id, "external_id": f"t{len(transactions)}",
                                 "amount": rng.randrange(50_000, 5_000_000, 1000), "occurred_at": at,
                                 "source": "csv", "created_at": at})
    rows_in(database, Transaction, transactions)
    messages = [{"conversation_id": c, "customer_id": c, "channel": "whatsapp", "direction": "in",
                 "sender": "customer", "text": "halo", "buttons": [], "media": [], "meta": {},
                 "created_at": NOW - timedelta(days=rng.uniform(4, 365))}
                for c in (rng.randrange(1, total + 1) for _ in range(total))]
    rows_in(database, Message, messages)
    return {"customers": total, "transactions": len(transactions), "inbound_messages": len(messages)}


def broadcast(database: Any, total: int, rng: random.Random) -> tuple[int, dict[str, int]]:
    with database.unit_of_work() as session:
        row = Broadcast(name="bench", filters={}, messages={"id": "Promo!"}, channels=["whatsapp"], status="done",
                        created_by="bench", created_at=SENT, updated_at=SENT, started_at=SENT)
        session.add(row)
        session.flush()
        broadcast_id = row.id
        first_message = int(session.execute(select(func.coalesce(func.max(Message.id), 0))).scalar_one()) + 1
    messages: list[dict[str, Any]] = []
    outbox: list[dict[str, Any]] = []
    recipients: list[dict[str, Any]] = []
    replies: list[dict[str, Any]] = []
    consents: list[dict[str, Any]] = []
    expected = {"queued": 0, "skipped": 0, "sent": 0, "failed": 0}
    for customer_id in range(1, total + 1):
        if rng.random() < 0.1:
            recipients.append({"broadcast_id": broadcast_id, "customer_id": customer_id, "status": "skipped",
                               "skip_reason": rng.choice(["no marketing consent", "frequency cap"]),
                               "created_at": SENT})
            expected["skipped"] += 1
            continue
        state = rng.choices(["read", "delivered", "sent", "failed", "pending"], [40, 35, 15, 5, 5])[0]
        message_id = first_message + len(messages)
        outbox_status = {"failed": "failed", "pending": "pending"}.get(state, "sent")
        messages.append({"id": message_id, "conversation_id": customer_id, "customer_id": customer_id,
                         "channel": "whatsapp", "direction": "out", "sender": "system", "text": "Promo!",
                         "buttons": [], "media": [], "meta": {}, "created_at": SENT,
                         "delivery_status": "queued" if state == "pending" else state,
                         "delivery_error": "131026 undeliverable" if state == "failed" else None})
        outbox.append({"id": message_id, "message_id": message_id, "conversation_id": customer_id,
                       "channel": "whatsapp", "recipient": f"+6281{customer_id:09d}", "payload": {},
                       "status": outbox_status, "attempts": 1, "next_attempt_at": SENT, "created_at": SENT,
                       "sent_at": SENT if outbox_status == "sent" else None,
                       "last_error": "131026 undeliverable" if state == "failed" else None})
        recipients.append({"broadcast_id": broadcast_id, "customer_id": customer_id, "channel": "whatsapp",
                           "status": "queued", "outbox_id": message_id, "message_id": message_id,
                           "queued_at": SENT, "created_at": SENT})
        expected["queued"] += 1
        expected["sent"] += outbox_status == "sent"
        expected["failed"] += state == "failed"
        if outbox_status == "sent" and rng.random() < 0.08:
            # Explicit ids throughout: PostgreSQL's sequence does not know the ids given above.
            replies.append({"id": first_message + total + len(replies), "conversation_id": customer_id,
                            "customer_id": customer_id, "channel": "whatsapp",
                            "direction": "in", "sender": "customer", "text": "mau", "buttons": [], "media": [],
                            "meta": {}, "created_at": SENT + timedelta(hours=rng.uniform(0, 100))})
            if rng.random() < 0.1:
                consents.append({"customer_id": customer_id, "purpose": "marketing", "granted": False,
                                 "channel": "whatsapp", "recorded_at": replies[-1]["created_at"]})
    rows_in(database, Message, messages)
    rows_in(database, OutboxItem, outbox)
    rows_in(database, BroadcastRecipient, recipients)
    rows_in(database, Message, replies)
    rows_in(database, Consent, consents)
    return broadcast_id, expected


def best_of(repeat: int, run: Any) -> tuple[float, list[float], Any]:
    times, result = [], None
    for _ in range(max(repeat, 1)):
        began = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - began)
    return min(times), times, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000, help="customers to generate (default 100000)")
    parser.add_argument("--postgres", metavar="URL", default=None,
                        help="an empty, throwaway DATABASE_URL (postgresql+psycopg://...) instead of SQLite")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the best is reported")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (database)")
    args = parser.parse_args(argv)
    if args.customers < 100:
        parser.error("--customers must be at least 100")

    workdir = Path(tempfile.mkdtemp(prefix="sapa-bench-scores-"))
    url = args.postgres or f"sqlite:///{workdir / 'sapa.db'}"
    backend = "postgresql" if args.postgres else "sqlite"
    print(f"Sapa scores benchmark: {args.customers} customers, {backend}, python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs")
    try:
        prepare_sapa(workdir, url)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    settings = load_settings(workdir / "config.yml", environ={})
    database = create_database(url)
    rng = random.Random(args.seed)
    started = time.perf_counter()
    generated = generate(database, args.customers, rng)
    broadcast_id, expected = broadcast(database, args.customers, rng)
    print(f"generated and loaded {generated} and a broadcast {expected} in {time.perf_counter() - started:.1f}s")

    def recompute() -> int:
        with database.unit_of_work() as session:
            return compute_scores(session, settings, NOW)

    scores_s, scores_runs, scored = best_of(args.repeat, recompute)
    with database.unit_of_work(read_only=True) as session:
        began = time.perf_counter()
        counts = segment_counts(session)
        counts_s = time.perf_counter() - began

    def stats() -> Any:
        with database.unit_of_work(read_only=True) as session:
            return broadcast_stats(session, settings, broadcast_id, NOW)

    stats_s, stats_runs, numbers = best_of(args.repeat, stats)
    database.dispose()

    print(f"\ncompute_scores: {scored} customers in {scores_s:.2f}s (best of {len(scores_runs)}: "
          f"{', '.join(f'{r:.2f}' for r in scores_runs)})")
    print(f"segment_counts: {counts_s * 1000:.0f} ms: {counts}")
    print(f"broadcast_stats: {numbers.recipients} recipients in {stats_s * 1000:.0f} ms (best of {len(stats_runs)}): "
          f"{numbers.sent} sent, {numbers.delivered} delivered, {numbers.read} read, {numbers.failed} failed, "
          f"{numbers.replies} replies, {numbers.opt_outs} opt-outs")
    problems = []
    if scored != args.customers or sum(counts.values()) != args.customers:
        problems.append(f"scored {scored}, segments sum to {sum(counts.values())}, expected {args.customers}")
    got = {"queued": numbers.queued, "skipped": numbers.skipped, "sent": numbers.sent, "failed": numbers.failed}
    if got != expected:
        problems.append(f"broadcast counts {got}, expected {expected}")
    for problem in problems:
        print(f"MISMATCH {problem}")
    result = {"benchmark": "scores", "backend": backend, **generated, "compute_scores_s": round(scores_s, 3),
              "runs_s": [round(r, 3) for r in scores_runs], "segment_counts_ms": round(counts_s * 1000, 1),
              "segments": counts, "broadcast_recipients": numbers.recipients,
              "broadcast_stats_ms": round(stats_s * 1000, 1), "mismatches": len(problems)}
    if args.keep:
        print(f"kept {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result, sort_keys=True))
    return 0 if not problems else 3


if __name__ == "__main__":
    sys.exit(main())
