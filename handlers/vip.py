"""Who is a VIP (VIP-1.1, VIP-1.3): transactions in, the rules in `vip:` applied, changes told to account managers.

A customer is a VIP when their transactions in the last `vip.period_days` total at least
`vip.min_total_rupiah` (tier `vip.value_tier`), or when they have been a customer at least
`vip.min_relationship_days` and the period's total is at least `vip.loyal_min_total_rupiah`
(tier `vip.loyal_tier`). The relationship starts at the earlier of the first transaction and the
customer record. A strategic VIP (tier "strategic", set with `/sapa vip add CUSTOMER REASON`) is never
demoted by the rules. Rules run after a CSV import, after each API transaction, and daily (`vip.reevaluate`).

Also here: the account manager's alert when a VIP writes (VIP-2.3), and the open tickets a VIP greeting mentions.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.clock import Clock
from bot.config import Settings
from bot.contacts import normalise_email, normalise_phone
from bot.limits import is_ascii_number
from handlers.desk import open_tickets, ticket_reference
from handlers.slack_text import escape_slack
from handlers.turn import Turn
from store import Database, loyalty
from store.audit import record
from store.customers import find_customers, get_customer
from store.messages import add_desk_post
from store.models import Agent, Customer, Message, Task, Transaction
from store.transactions import (
    add_transaction,
    customers_to_reevaluate,
    first_transaction_at,
    parse_amount,
    parse_occurred_at,
    total_since,
)

STRATEGIC = "strategic"  # the tier `/sapa vip add` gives; the rules never take it away
REEVALUATE = "vip.reevaluate"
CUSTOMER_KEYS = ("customer_id", "customer_phone", "customer_email")
BATCH = 500


def rupiah(amount: int) -> str:
    return "Rp " + f"{amount:,}".replace(",", ".")


@dataclass(frozen=True)
class VipChange:
    """A customer gained or lost VIP status."""

    customer_id: int
    gained: bool
    tier: str  # the tier gained, or the tier lost
    reason: str


@dataclass(frozen=True)
class Standing:
    """What the rules say about a customer today."""

    total: int
    relationship_days: int
    tier: str | None
    reason: str


def assess(session: Session, settings: Settings, customer: Customer, now: datetime) -> Standing:
    rules = settings.vip
    total = total_since(session, customer.id, now - timedelta(days=rules.period_days), now)
    first = first_transaction_at(session, customer.id)
    start = min(customer.created_at, first) if first else customer.created_at
    days = max((now - start).days, 0)
    spent = f"{rupiah(total)} in the last {rules.period_days} days"
    if total >= rules.min_total_rupiah:
        return Standing(total, days, rules.value_tier, f"{spent} (at least {rupiah(rules.min_total_rupiah)})")
    if days >= rules.min_relationship_days and total >= rules.loyal_min_total_rupiah:
        return Standing(total, days, rules.loyal_tier,
                        f"customer for {days} days and {spent} (at least {rules.min_relationship_days} days "
                        f"and {rupiah(rules.loyal_min_total_rupiah)})")
    return Standing(total, days, None,
                    f"{spent} and customer for {days} days (needs {rupiah(rules.min_total_rupiah)}, or "
                    f"{rules.min_relationship_days} days and {rupiah(rules.loyal_min_total_rupiah)})")


def set_by_hand(session: Session, customer: Customer, agent: Agent, *, add: bool, reason: str, now: datetime) -> None:
    """A person's VIP decision (`/sapa vip add|remove`, the console's customer page), for roles with vip.manage.

    A VIP made by hand is `strategic`, which the rules never undo (`evaluate` leaves it alone); the reason is kept
    as the VIP reason (VIP-1.1) and in the audit log. An account manager making a VIP becomes their manager."""
    customer.is_vip = add
    customer.vip_tier = STRATEGIC if add else None
    customer.vip_reason = reason[:300] if add else None
    customer.vip_since = now if add else None
    if add and agent.role == "account_manager" and customer.account_manager_id is None:
        customer.account_manager_id = agent.id
    customer.updated_at = now
    record(session, actor=f"agent:{agent.id}", action="vip.add" if add else "vip.remove", subject_type="customer",
           subject_id=customer.id, now=now, detail={"reason": reason})


def evaluate(session: Session, settings: Settings, customer: Customer, now: datetime) -> VipChange | None:
    """Apply the rules to one customer: set or clear the VIP flag, audit it, tell the account manager."""
    if customer.merged_into_id is not None or (customer.is_vip and customer.vip_tier == STRATEGIC):
        return None
    standing = assess(session, settings, customer, now)
    if standing.tier is not None and not customer.is_vip:
        change = VipChange(customer.id, True, standing.tier, standing.reason)
        customer.is_vip, customer.vip_tier, customer.vip_reason, customer.vip_since = (
            True, standing.tier, standing.reason[:300], now)
    elif standing.tier is None and customer.is_vip:
        change = VipChange(customer.id, False, customer.vip_tier or "vip", standing.reason)
        customer.is_vip, customer.vip_tier, customer.vip_reason, customer.vip_since = False, None, None, None
    else:
        return None
    customer.updated_at = now
    record(session, actor="system", action="vip.gained" if change.gained else "vip.lost", subject_type="customer",
           subject_id=customer.id, now=now, detail={"tier": change.tier, "reason": change.reason,
                                                    "total": standing.total, "days": standing.relationship_days})
    _report(session, settings, customer, change, now)
    return change


def _mentions(session: Session, customer: Customer) -> str:
    """The customer's account manager; without one, every account manager."""
    manager = session.get(Agent, customer.account_manager_id) if customer.account_manager_id else None
    people = [manager] if manager else session.execute(
        select(Agent).where(Agent.role == "account_manager", Agent.active.is_(True)).order_by(Agent.id)).scalars()
    return " ".join(f"<@{p.slack_user_id}>" for p in people if p.slack_user_id)


def _report(session: Session, settings: Settings, customer: Customer, change: VipChange, now: datetime) -> None:
    if not settings.slack.enabled:
        return
    who = f"{escape_slack(customer.name or customer.phone or customer.email or 'Customer')} (#{customer.id})"
    if change.gained:
        text = f"⭐ {who} is now a VIP ({escape_slack(str(change.tier))}): {escape_slack(change.reason)}."
    else:
        text = f"{who} is no longer a VIP (was {escape_slack(str(change.tier))}): {escape_slack(change.reason)}."
    mentions = _mentions(session, customer)
    add_desk_post(session, recipient=settings.slack.vip_channel or settings.slack.queue_channel,
                  text=f"{text} {mentions}".strip(), now=now, conversation_id=None)


def reevaluate_task(settings: Settings) -> Callable[[Session, Task, datetime], None]:
    """VIP-1.3: every customer with transactions or VIP status, against today's rules."""

    def run(session: Session, task: Task, now: datetime) -> None:
        for customer_id in customers_to_reevaluate(session):
            evaluate(session, settings, session.get_one(Customer, customer_id), now)

    return run


# --- transactions in (CSV and API share one reading of a row) ---------------------------------------------


@dataclass(frozen=True)
class TransactionInput:
    customer_id: int | None
    phone: str | None
    email: str | None
    external_id: str
    amount: int
    occurred_at: datetime


def read_transaction(raw: Mapping[str, Any], settings: Settings, now: datetime) -> TransactionInput:
    """One transaction from a CSV row or an API body; ValueError naming every problem."""
    problems: list[str] = []

    def text(key: str) -> str:
        value = raw.get(key)
        return "" if value is None else str(value).strip()

    customer_id = phone = email = None
    if text("customer_id"):
        value = raw.get("customer_id")
        if isinstance(value, bool) or not is_ascii_number(text("customer_id").lstrip("#")):
            problems.append(f"customer_id {value!r} is not a number")
        else:
            customer_id = int(text("customer_id").lstrip("#"))
    if text("customer_phone"):
        phone = normalise_phone(text("customer_phone"))
        if phone is None:
            problems.append(f"customer_phone {text('customer_phone')!r} is not a valid phone number")
    if text("customer_email"):
        email = normalise_email(text("customer_email"))
        if email is None:
            problems.append(f"customer_email {text('customer_email')!r} is not a valid address")
    if not any(text(key) for key in CUSTOMER_KEYS):
        problems.append("a transaction needs customer_phone, customer_email or customer_id")
    external_id = text("external_id")
    if not external_id:
        problems.append("external_id is missing")
    elif len(external_id) > 120:
        problems.append("external_id is longer than 120 characters")
    amount = 0
    try:
        amount = parse_amount(raw.get("amount"))
    except ValueError as exc:
        problems.append(str(exc))
    occurred_at = now
    try:
        occurred_at = parse_occurred_at(raw.get("occurred_at"), settings.tz)
        if occurred_at > now + timedelta(days=1):
            problems.append(f"occurred_at {text('occurred_at')!r} is in the future")
    except ValueError as exc:
        problems.append(str(exc))
    if problems:
        raise ValueError("; ".join(problems))
    return TransactionInput(customer_id, phone, email, external_id, amount, occurred_at)


def customer_for(session: Session, item: TransactionInput, now: datetime) -> tuple[Customer | None, bool]:
    """(customer, created): by id (must exist), else by phone, else by email; a new phone or email is a new customer."""
    if item.customer_id is not None:
        return get_customer(session, item.customer_id), False
    if item.phone:
        found = find_customers(session, phone=item.phone, limit=1)
        if found:
            return found[0], False
    if item.email:
        found = [c for c in find_customers(session, email=item.email, limit=5) if not (item.phone and c.phone)]
        if found:
            return found[0], False
    customer = Customer(phone=item.phone, email=item.email, source="transactions", is_vip=False, created_at=now,
                        updated_at=now)
    try:
        with session.begin_nested():
            session.add(customer)
            session.flush()
    except IntegrityError:  # the same phone created at the same moment by another import
        return find_customers(session, phone=item.phone, limit=1)[0], False
    return customer, True


@dataclass(frozen=True)
class Recorded:
    transaction: Transaction
    added: bool  # False: this external_id was already stored (nothing changed)
    customer: Customer
    customer_created: bool


def record_transaction(session: Session, settings: Settings, item: TransactionInput, *, source: str,
                       now: datetime) -> Recorded | None:
    """Store one transaction once (by external_id); None when its customer_id is unknown.

    CRM-4.2: a newly stored transaction earns loyalty points here, in the same transaction, so the API and
    the CSV import earn alike and a repeated external_id earns nothing.
    """
    customer, created = customer_for(session, item, now)
    if customer is None:
        return None
    transaction, added = add_transaction(session, customer_id=customer.id, external_id=item.external_id,
                                         amount=item.amount, occurred_at=item.occurred_at, source=source, now=now)
    if added:
        loyalty.earn(session, settings, customer.id, transaction, now)
    return Recorded(transaction, added, customer, created)


@dataclass
class ImportReport:
    added: int = 0
    duplicates: int = 0
    new_customers: int = 0
    gained: list[VipChange] = field(default_factory=list)
    lost: list[VipChange] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip().lower() for h in reader.fieldnames or []]
        missing = [c for c in ("external_id", "amount", "occurred_at") if c not in header]
        if not set(CUSTOMER_KEYS) & set(header):
            missing.append("customer_phone or customer_email or customer_id")
        if missing:
            raise ValueError(f"{path}: header must have columns customer_phone (or customer_email or customer_id), "
                             f"external_id, amount, occurred_at; missing {', '.join(missing)}")
        reader.fieldnames = header
        for row in reader:
            yield reader.line_num, {k: (v or "").strip() for k, v in row.items() if k}


def import_transactions(database: Database, settings: Settings, clock: Clock, path: Path,
                        progress: Callable[[int], None] = lambda n: None) -> ImportReport:
    """`sapa transactions import`: bad rows reported by line, known external ids skipped, then the VIP rules."""
    report = ImportReport()
    touched: set[int] = set()
    rows = _rows(path)
    while True:
        batch = [row for _, row in zip(range(BATCH), rows, strict=False)]
        if not batch:
            break
        now = clock.now()
        with database.unit_of_work() as session:
            for line, raw in batch:
                try:
                    item = read_transaction(raw, settings, now)
                except ValueError as exc:
                    report.errors.append((line, str(exc)))
                    continue
                recorded = record_transaction(session, settings, item, source="csv", now=now)
                if recorded is None:
                    report.errors.append((line, f"no customer #{item.customer_id}"))
                elif recorded.added:
                    report.added += 1
                    report.new_customers += recorded.customer_created
                    touched.add(recorded.customer.id)
                else:
                    report.duplicates += 1
        progress(len(batch))
    ids = sorted(touched)
    for start in range(0, len(ids), BATCH):
        now = clock.now()
        with database.unit_of_work() as session:
            for customer_id in ids[start:start + BATCH]:
                change = evaluate(session, settings, session.get_one(Customer, customer_id), now)
                if change is not None:
                    (report.gained if change.gained else report.lost).append(change)
    with database.unit_of_work() as session:
        record(session, actor="cli", action="transactions.import", subject_type="file", subject_id=path.name,
               now=clock.now(), detail={"added": report.added, "duplicates": report.duplicates,
                                        "bad_rows": len(report.errors), "vip_gained": len(report.gained),
                                        "vip_lost": len(report.lost)})
    return report


# --- a VIP writes (VIP-2.1, VIP-2.3) --------------------------------------------------------------------


def open_ticket_refs(turn: Turn) -> str:
    """The customer's open tickets, for the VIP greeting's one sentence ("Tiket TKT-000001 sedang kami proses")."""
    return ", ".join(ticket_reference(t.id) for t in open_tickets(turn.session, turn.customer.id))


def alert_account_manager(turn: Turn) -> None:
    """A VIP opened a conversation: their account manager hears of it in the VIP channel."""
    customer, conversation = turn.customer, turn.conversation
    if not customer.is_vip or not turn.settings.slack.enabled:
        return
    inbound = turn.session.execute(select(func.count()).select_from(Message).where(
        Message.conversation_id == conversation.id, Message.direction == "in")).scalar_one()
    if inbound > 1:
        return  # told at the conversation's first message already
    name = escape_slack(customer.name or turn.identity.display_name or "A VIP")
    tickets = open_ticket_refs(turn)
    text = (f"⭐ VIP {name} ({customer.vip_tier or 'vip'}) is writing on {conversation.channel}: "
            f"“{escape_slack(turn.message.text[:200])}”{f' · open tickets {tickets}' if tickets else ''}")
    mentions = _mentions(turn.session, customer)
    add_desk_post(turn.session, recipient=turn.settings.slack.vip_channel or turn.settings.slack.queue_channel,
                  text=f"{text} {mentions}".strip(), now=turn.clock.now(), conversation_id=conversation.id)
