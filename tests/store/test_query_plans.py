"""Issue 15, item 9: no hot-path query may cost more as history grows.

The hot paths run through the real app on the real database (web chat, signed Telegram and SMS webhooks, a
Twilio status callback, Slack desk buttons and a thread reply, the outbox draining, the scheduler claiming and
running due tasks). Every statement the engine executes is recorded with its own bound parameters, then each
distinct SELECT / UPDATE / DELETE is EXPLAINed on the same database: SQLite `EXPLAIN QUERY PLAN` must show
no `SCAN <table>` (a full table scan) and PostgreSQL, with `enable_seqscan = off` so that small test tables do
not hide a missing index, no `Seq Scan on <table>`, for every table that grows with the company's history.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from sqlalchemy import Engine, event, select

from bot.app import Sapa
from store.models import Message
from tests.support.providers import ProviderCustomer, drain
from tests.support.slack import desk_sapa, desk_settings, handed_off

# Tables whose row count grows with history (every message, send, task, customer...). A full scan of one of
# these on a hot path is a cost that grows until the server stops keeping up.
GROWING = frozenset({
    "messages", "outbox", "tasks", "conversations", "channel_identities", "customers", "tickets",
    "ticket_events", "consents", "audit_log", "broadcast_recipients", "loyalty_ledger",
})

# Statements allowed to scan a growing table: {a substring of the statement: why it may}. Empty today; an entry
# is for a bounded periodic job, never for a per-message path (add the index in a migration instead).
ALLOWED: dict[str, str] = {}

EXPLAINED_KINDS = ("SELECT", "UPDATE", "DELETE", "WITH")
ROOT = Path(__file__).resolve().parents[2]
APP_PACKAGES = {"bot", "channels", "handlers", "nlu", "scheduler", "store"}


@dataclass
class Recorded:
    statement: str
    parameters: Any


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database) -> Iterator[Sapa]:
    yield from desk_sapa(desk_settings(db_url, fakes), clock, interpreter, database)


def from_the_app() -> bool:
    """Whether Sapa's own code (not only the test and its helpers) is on the stack of this statement."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        if path.is_relative_to(ROOT) and path.relative_to(ROOT).parts[0] in APP_PACKAGES:
            return True
        frame = frame.f_back
    return False


def record(engine: Engine) -> tuple[list[Recorded], Any]:
    seen: list[Recorded] = []

    def listener(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if not from_the_app():
            return  # the test's own look-ups (tests/support helpers) are not hot paths
        if executemany and isinstance(parameters, list) and parameters:
            parameters = parameters[0]  # one row's values stand for all of them
        seen.append(Recorded(statement, parameters))

    event.listen(engine, "before_cursor_execute", listener)
    return seen, listener


def distinct_explainable(seen: list[Recorded]) -> list[Recorded]:
    unique: dict[str, Recorded] = {}
    for item in seen:
        if item.statement.lstrip().split(None, 1)[0].upper() in EXPLAINED_KINDS:
            unique.setdefault(item.statement, item)
    return list(unique.values())


def aliases(statement: str) -> dict[str, str]:
    """SQLite's plan names a table by its alias (`SCAN messages_1`): map aliases back to tables."""
    names = {table: table for table in GROWING}
    for table, alias in re.findall(r"\b(\w+)\s+AS\s+(\w+)\b", statement, flags=re.IGNORECASE):
        if table in GROWING:
            names[alias] = table
    return names


# PostgreSQL: each index of a growing table and its leading column (an index only narrows a scan on that one).
PG_INDEXES = """
    SELECT index.relname, tab.relname, col.attname
    FROM pg_index i
    JOIN pg_class index ON index.oid = i.indexrelid
    JOIN pg_class tab ON tab.oid = i.indrelid
    JOIN pg_attribute col ON col.attrelid = i.indrelid AND col.attnum = i.indkey[0]
"""


def pg_scanned(node: dict[str, Any], indexes: dict[str, tuple[str, str]], limited: bool = False) -> set[str]:
    """The growing tables a PostgreSQL plan (FORMAT JSON) reads in full.

    With enable_seqscan off, a missing index shows as a Seq Scan, or as an index scan that only walks an index
    for its order (no Index Cond on the index's leading column, the rows sifted by a Filter): both read every
    row. A walk with no Filter under a Limit (the newest row) stops early and is not a full scan."""
    found: set[str] = set()
    kind = node["Node Type"]
    if kind == "Seq Scan" and node.get("Relation Name") in GROWING:
        found.add(node["Relation Name"])
    if kind in ("Index Scan", "Index Only Scan", "Bitmap Index Scan") and node.get("Index Name") in indexes:
        table, leading = indexes[node["Index Name"]]
        narrowed = re.search(rf"\b{leading}\b", node.get("Index Cond", ""))
        if table in GROWING and not narrowed and not (limited and "Filter" not in node):
            found.add(table)
    for child in node.get("Plans", []):
        found |= pg_scanned(child, indexes, limited or kind == "Limit")
    return found


def full_scans(engine: Engine, statements: list[Recorded]) -> list[tuple[Recorded, list[str], set[str]]]:
    """(statement, its plan, the growing tables it scans in full) for each statement that scans one."""
    found = []
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        postgres = engine.dialect.name == "postgresql"
        if postgres:
            # In the same transaction as the EXPLAINs (rolled back below): tiny test tables would otherwise
            # always get a sequential scan, index or not. With it off, a Seq Scan means there is no usable index.
            cursor.execute("SET enable_seqscan = off")
            cursor.execute(PG_INDEXES)
            indexes = {index: (table, column) for index, table, column in cursor.fetchall()}
        else:
            settled_history(cursor)
        for item in statements:
            if postgres:
                cursor.execute("EXPLAIN " + item.statement, item.parameters or None)
                plan = [row[0] for row in cursor.fetchall()]
                cursor.execute("EXPLAIN (FORMAT JSON) " + item.statement, item.parameters or None)
                (tree,) = cursor.fetchone() or ("[]",)
                tree = json.loads(tree) if isinstance(tree, str) else tree  # psycopg may parse the JSON itself
                scanned = pg_scanned(tree[0]["Plan"], indexes)
            else:
                cursor.execute("EXPLAIN QUERY PLAN " + item.statement, item.parameters or ())
                plan = [row[3] for row in cursor.fetchall()]
                names = aliases(item.statement)
                scanned = {names[m] for line in plan
                           for m in re.findall(r"^SCAN (\w+)(?!.*USING (?:COVERING )?INDEX)", line) if m in names}
            if scanned:
                found.append((item, plan, scanned))
    finally:
        raw.rollback()
        raw.close()
    return found


def settled_history(cursor: Any) -> None:
    """SQLite: a year of settled history and its statistics, in the transaction the EXPLAINs run in (rolled back).

    With ANALYZE's statistics saying nearly every outbox row is `sent` and every task `done` (what `PRAGMA
    optimize` records on a real installation), SQLite answered the claim queries' `status = 'pending' … OR
    status = 'sending' …` with a whole-table scan (bench/history.py: 3.5× the CPU per message at 1,000,000
    messages), while on empty test tables without statistics it chose the index. So the plans are judged here
    under such statistics."""
    history = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) ")
    cursor.execute(history + "INSERT INTO outbox (channel, recipient, payload, status, attempts, next_attempt_at, "
                   "created_at) SELECT 'telegram', 'h' || (i % 2000), '{}', 'sent', 1, '2025-01-01 00:00:00', "
                   "'2025-01-01 00:00:00' FROM n")
    cursor.execute(history + "INSERT INTO tasks (kind, due_at, payload, status, attempts, created_at) "
                   "SELECT 'history', '2025-01-01 00:00:00', '{}', 'done', 1, '2025-01-01 00:00:00' FROM n")
    cursor.execute("ANALYZE")


def allowed(statement: str) -> bool:
    return any(key in statement for key in ALLOWED)


def hot_paths(sapa: Sapa, client: Any, fakes: Any, clock: Any, customer: Any, slack: Any) -> None:
    # A web chat customer talks to the bot and is handed to an agent in Slack (card, relays, outbox, tasks).
    conversation, card_ts = handed_off(customer, slack)
    customer.say("halo? masih ada orang?")
    customer.history()
    # Desk actions: claim, a reply in the card's thread relayed to the customer, resolve.
    assert slack.press("U0RINA", "claim", conversation.id, card_ts) == 200
    slack.settle()
    assert slack.reply("U0RINA", card_ts, "Halo Budi, saya Rina.") == 200
    slack.settle()
    customer.say("terima kasih")
    assert slack.press("U0RINA", "resolve", conversation.id, card_ts) == 200
    slack.settle()

    # Telegram and SMS customers through the signed webhooks; the outbox sends the replies.
    telegram = ProviderCustomer(client, fakes, "telegram", "777001", "Sari")
    sms = ProviderCustomer(client, fakes, "sms", "+6281234567890", "Andi")
    for person in (telegram, sms):
        assert person.write("halo") == 200
        assert person.write("1") == 200  # the privacy notice: agree
        assert person.write("jam buka toko kapan?") == 200
    # A provider re-delivers a message it already delivered: the duplicate path answers with the replies given
    # the first time (replies_to(), the one path that still reads them back).
    assert sms.write("ongkir ke bandung?", message_id="SM" + "d" * 32) == 200
    assert sms.write("ongkir ke bandung?", message_id="SM" + "d" * 32) == 200
    drain(sapa, clock)

    # Twilio's status callbacks for what Sapa sent the SMS customer.
    with sapa.database.unit_of_work(read_only=True) as session:
        sids = [sid for sid in session.execute(select(Message.provider_message_id).where(
            Message.channel == "sms", Message.direction == "out")).scalars() if sid]
    assert sids
    assert sms.report(sids[-1], "delivered") == 200
    assert sms.report(sids[0], "read") == 200

    # Time passes: follow-ups, surveys and SLA checks fall due and the scheduler claims and runs them.
    for hours in (1, 4, 24, 72):
        clock.advance(timedelta(hours=hours))
        sapa.runner.run_due()
        drain(sapa, clock)
    customer.say("5")  # a survey answer if one was asked, another inbound turn either way
    slack.settle()


def test_hot_path_queries_use_indexes(sapa, client, fakes, clock, customer, slack):
    engine = sapa.database.engine
    seen, listener = record(engine)
    try:
        hot_paths(sapa, client, fakes, clock, customer, slack)
    finally:
        event.remove(engine, "before_cursor_execute", listener)

    statements = distinct_explainable(seen)
    assert len(statements) > 30, "the scenario hardly touched the database: is the listener on the right engine?"
    assert any("reply_to_id =" in s.statement for s in statements), "the scenario no longer reaches replies_to()"
    assert any("provider_message_id =" in s.statement for s in statements), "nor the duplicate check"
    scans = [(item, plan, tables) for item, plan, tables in full_scans(engine, statements)
             if not allowed(item.statement)]
    report = "\n\n".join(
        f"full scan of {', '.join(sorted(tables))}:\n{item.statement}\nparameters: {item.parameters!r}\nplan:\n  "
        + "\n  ".join(plan)
        for item, plan, tables in scans)
    assert not scans, f"{len(scans)} hot-path statement(s) scan a table that grows with history:\n\n{report}"


def test_replies_to_is_an_index_lookup(database):
    """The scan issue 15 found, pinned on its own: replies_to() must not read the whole messages table."""
    from store.messages import replies_to

    seen, listener = record(database.engine)
    try:
        with database.unit_of_work(read_only=True) as session:
            replies_to(session, 1)
    finally:
        event.remove(database.engine, "before_cursor_execute", listener)
    statements = distinct_explainable(seen)
    assert [s for s in statements if "reply_to_id" in s.statement]
    assert full_scans(database.engine, statements) == []


def test_the_dashboards_period_queries_use_indexes(database, base_settings):
    """Issue 17: the managers' dashboard for a period (`sapa report`'s numbers and the counts per day) reads ranges
    of the migration 0012 indexes, never a whole growing table (bench/dashboard.py: 4.4 s for a week on SQLite with
    a million messages before them)."""
    from datetime import UTC, datetime

    from bot.reports import daily_counts, dashboard

    now = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
    period = dashboard.choose_period(base_settings, now, days="30")
    seen, listener = record(database.engine)
    try:
        with database.unit_of_work(read_only=True) as session:
            dashboard.build(session, base_settings, period, now=now)
        # And with the completed days kept: the table, and the VIPs' share counted live from their own entries.
        with database.unit_of_work() as session:
            daily_counts.fill(session, base_settings, period.previous_first, period.last, now)
        with database.unit_of_work(read_only=True) as session:
            dashboard.build(session, base_settings, period, now=now)
    finally:
        event.remove(database.engine, "before_cursor_execute", listener)
    statements = distinct_explainable(seen)
    assert [s for s in statements if "messages.created_at" in s.statement]
    assert full_scans(database.engine, statements) == []
