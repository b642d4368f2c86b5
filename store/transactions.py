"""Customers' transactions: added once per external id, summed for the VIP rules."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.models import Customer, Transaction

_ID_STYLE = re.compile(r"^\d{1,3}(\.\d{3})+(,\d{1,2})?$")  # 1.500.000 or 1.500.000,00
_EN_STYLE = re.compile(r"^\d{1,3}(,\d{3})+(\.\d{1,2})?$")  # 1,500,000 or 1,500,000.00
_PLAIN = re.compile(r"^\d+([.,]\d{1,2})?$")  # 1500000 or 1500000,00


def parse_amount(raw: Any) -> int:
    """Whole rupiah from 1500000, "1500000", "Rp 1.500.000", "Rp1.500.000,00" or "1,500,000"; ValueError if not."""
    if isinstance(raw, bool):
        raise ValueError(f"amount {raw!r} is not a number of rupiah")
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, float) and raw.is_integer():
        value = int(raw)
    elif isinstance(raw, str):
        text = re.sub(r"\s+", "", raw).removeprefix("Rp").removeprefix("rp").removeprefix("IDR").strip()
        if _ID_STYLE.match(text):
            whole, _, cents = text.partition(",")
            value, fraction = int(whole.replace(".", "")), cents
        elif _EN_STYLE.match(text):
            whole, _, cents = text.partition(".")
            value, fraction = int(whole.replace(",", "")), cents
        elif _PLAIN.match(text):
            whole, fraction = re.split(r"[.,]", text)[0], (re.split(r"[.,]", text) + [""])[1]
            value = int(whole)
        else:
            raise ValueError(f"amount {raw!r} is not a number of rupiah (e.g. 1500000 or Rp 1.500.000)")
        if fraction.strip("0"):
            raise ValueError(f"amount {raw!r} has sen; give whole rupiah")
    else:
        raise ValueError(f"amount {raw!r} is not a number of rupiah (e.g. 1500000 or Rp 1.500.000)")
    if value <= 0:
        raise ValueError(f"amount {raw!r} must be more than zero")
    return value


def parse_occurred_at(raw: Any, zone: ZoneInfo) -> datetime:
    """An ISO date (the start of that day in `zone`) or date-time (without an offset: in `zone`); ValueError if not."""
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(f"occurred_at {raw!r} is not an ISO date such as 2026-01-05 or 2026-01-05T14:30:00+07:00")
    text = raw.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), zone)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"occurred_at {raw!r} is not an ISO date such as 2026-01-05 or 2026-01-05T14:30:00+07:00"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def find_transaction(session: Session, external_id: str) -> Transaction | None:
    return session.execute(select(Transaction).where(Transaction.external_id == external_id)).scalar_one_or_none()


def add_transaction(
    session: Session, *, customer_id: int, external_id: str, amount: int, occurred_at: datetime, source: str,
    now: datetime,
) -> tuple[Transaction, bool]:
    """(the transaction, True) when added; (the one already stored, False) when the external id is known.

    Safe against two senders at once: the loser of the unique-index race re-reads.
    """
    existing = find_transaction(session, external_id)
    if existing is not None:
        return existing, False
    row = Transaction(customer_id=customer_id, external_id=external_id, amount=amount, occurred_at=occurred_at,
                      source=source, created_at=now)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return session.execute(select(Transaction).where(Transaction.external_id == external_id)).scalar_one(), False
    return row, True


def total_since(session: Session, customer_id: int, since: datetime, until: datetime) -> int:
    """Rupiah the customer spent in (since, until]."""
    return int(session.execute(
        select(func.coalesce(func.sum(Transaction.amount), 0)).where(
            Transaction.customer_id == customer_id, Transaction.occurred_at > since, Transaction.occurred_at <= until)
    ).scalar_one())


def first_transaction_at(session: Session, customer_id: int) -> datetime | None:
    first: datetime | None = session.execute(
        select(func.min(Transaction.occurred_at)).where(Transaction.customer_id == customer_id)
    ).scalar_one()
    return first


def customers_to_reevaluate(session: Session) -> list[int]:
    """Live customers with transactions or VIP status: the ones whose status the rules may change."""
    with_transactions = select(Transaction.customer_id).distinct()
    return list(session.execute(
        select(Customer.id).where(
            Customer.merged_into_id.is_(None),
            or_(Customer.is_vip.is_(True), Customer.id.in_(with_transactions)),
        ).order_by(Customer.id)
    ).scalars())


def history(session: Session, customer_id: int) -> tuple[int, int, datetime | None]:
    """(how many purchases, their total in rupiah, the last one's time) — for profile views (CRM-1.2)."""
    count, total, last = session.execute(
        select(func.count(), func.coalesce(func.sum(Transaction.amount), 0), func.max(Transaction.occurred_at))
        .where(Transaction.customer_id == customer_id)
    ).one()
    return int(count), int(total), last
