"""CRM-4.1: recency / frequency / monetary scores and segments, from transactions and interactions.

Every live customer (not merged away) gets one `customer_scores` row per recomputation. Definitions, so the
numbers can be checked:

- The window is the last `analysis.window_days` days up to `now`. Purchases are the customer's transactions
  in it: `purchases` (count), `spent` (rupiah), `last_purchase_at`; `interactions` counts the customer's
  inbound messages in it (`messages.direction == 'in'`).
- Scores 1..5 are quintiles among the customers who purchased in the window, by mid-rank, so equal values get
  equal scores and a population where everyone bought once scores 3, not 1: recency by whole days since the
  last purchase (fewer days is better: 5), frequency by purchases, monetary by rupiah spent. Customers without
  a purchase in the window score 0 on all three.
- Segments, the first rule that matches wins:

  ==================  ==========================================================================
  prospect            no purchase in the window, but wrote to us in it (interactions only)
  inactive            no purchase and no message in the window
  champions           R >= 4, F >= 4 and M >= 4
  new                 first purchase ever within the last 30 days
  at_risk             R <= 2 and F >= 3: used to buy often, not lately
  hibernating         R <= 2 otherwise
  loyal               F >= 4, or F >= 3 and M >= 4 (and bought not long ago: R >= 3)
  potential           R >= 4 (and F <= 3): bought recently, could buy more
  needs_attention     the rest: R = 3 and neither frequent nor big spenders
  ==================  ==========================================================================

  The rules on frequency (champions, at_risk, loyal) also need at least two purchases: F is relative, and
  where most buyers bought once, one purchase scores 3, yet one purchase is not "buying often".

Recomputation deletes the old rows and inserts the new ones in the caller's transaction, so readers see the
old list or the new one, never half of each. Aggregates are computed with GROUP BY in SQL and only the
quintiles in Python: 100,000 customers take seconds (bench/scores.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.orm import Session

from store.models import Customer, CustomerScore, Message, Transaction

if TYPE_CHECKING:  # the store imports no other project package at run time
    from bot.config import Settings

SEGMENTS = ("champions", "loyal", "potential", "new", "needs_attention", "at_risk", "hibernating", "prospect",
            "inactive")
NEW_DAYS = 30
_BATCH = 5000


@dataclass(frozen=True)
class _Purchases:
    last_at: datetime
    count: int
    spent: int


def quintiles(values: Iterable[int]) -> dict[int, int]:
    """Each distinct value -> its score 1..5 by mid-rank among all values (ties share a score)."""
    counts = Counter(values)
    n = sum(counts.values())
    scores: dict[int, int] = {}
    below = 0
    for value in sorted(counts):
        equal = counts[value]
        # The mid-rank of the tied group, 0..1; a single value sits in the middle.
        position = (below + (equal - 1) / 2) / (n - 1) if n > 1 else 0.5
        scores[value] = min(5, 1 + int(5 * position))
        below += equal
    return scores


def segment_of(recency: int, frequency: int, monetary: int, *, purchases: int, interactions: int,
               is_new: bool) -> str:
    """The segment for one customer's scores, by the rules of the module docstring."""
    if not purchases:
        return "prospect" if interactions else "inactive"
    repeat = purchases >= 2
    if repeat and recency >= 4 and frequency >= 4 and monetary >= 4:
        return "champions"
    if is_new:
        return "new"
    if recency <= 2:
        return "at_risk" if repeat and frequency >= 3 else "hibernating"
    if repeat and (frequency >= 4 or (frequency >= 3 and monetary >= 4)):
        return "loyal"
    if recency >= 4:
        return "potential"
    return "needs_attention"


def _purchases(session: Session, since: datetime, now: datetime) -> dict[int, _Purchases]:
    rows = session.execute(
        select(Transaction.customer_id, func.max(Transaction.occurred_at), func.count(), func.sum(Transaction.amount))
        .where(Transaction.occurred_at >= since, Transaction.occurred_at <= now)
        .group_by(Transaction.customer_id))
    return {int(customer_id): _Purchases(last_at, int(count), int(spent or 0))
            for customer_id, last_at, count, spent in rows}


def compute_scores(session: Session, settings: Settings, now: datetime) -> int:
    """Recompute every live customer's scores and segment; returns how many customers were scored."""
    since = now - timedelta(days=settings.analysis.window_days)
    purchases = _purchases(session, since, now)
    newcomers = set(session.execute(
        select(Transaction.customer_id).where(Transaction.occurred_at <= now).group_by(Transaction.customer_id)
        .having(func.min(Transaction.occurred_at) >= now - timedelta(days=NEW_DAYS))).scalars())
    interactions = {int(customer_id): int(count) for customer_id, count in session.execute(
        select(Message.customer_id, func.count())
        .where(Message.direction == "in", Message.created_at >= since, Message.created_at <= now)
        .group_by(Message.customer_id))}
    live = [int(i) for i in session.execute(
        select(Customer.id).where(Customer.merged_into_id.is_(None)).order_by(Customer.id)).scalars()]
    # Transactions of a merged-away record moved to the survivor; any left over are not scored twice.
    bought = {customer_id: purchases[customer_id] for customer_id in live if customer_id in purchases}
    days = {customer_id: int((now - p.last_at).total_seconds() // 86400) for customer_id, p in bought.items()}
    # Fewer days since the last purchase is better: score the negated days, so the most recent get 5.
    recency = quintiles(-d for d in days.values())
    frequency = quintiles(p.count for p in bought.values())
    monetary = quintiles(p.spent for p in bought.values())

    rows: list[dict[str, Any]] = []
    for customer_id in live:
        p = bought.get(customer_id)
        wrote = interactions.get(customer_id, 0)
        r, f, m = (recency[-days[customer_id]], frequency[p.count], monetary[p.spent]) if p else (0, 0, 0)
        rows.append({
            "customer_id": customer_id, "recency": r, "frequency": f, "monetary": m,
            "segment": segment_of(r, f, m, purchases=p.count if p else 0, interactions=wrote,
                                  is_new=customer_id in newcomers),
            "last_purchase_at": p.last_at if p else None, "purchases": p.count if p else 0,
            "spent": p.spent if p else 0, "interactions": wrote, "computed_at": now,
        })
    session.execute(delete(CustomerScore))
    _write(session, rows)
    return len(rows)


_COLUMNS = ("customer_id", "recency", "frequency", "monetary", "segment", "last_purchase_at", "purchases", "spent",
            "interactions", "computed_at")


def _write(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert the rows in the session's transaction, the fastest way each database offers.

    PostgreSQL: COPY (an executemany goes row by row through psycopg, 8 s for 100,000 rows; COPY takes a
    fraction of that). SQLite: a Core executemany (the ORM's bulk insert splits rows by which columns are
    None, here last_purchase_at, into tens of thousands of statements).
    """
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        raw: Any = connection.connection.dbapi_connection
        with raw.cursor() as cursor, cursor.copy(
                f"COPY customer_scores ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(tuple(row[column] for column in _COLUMNS))
        return
    table = cast(Table, CustomerScore.__table__)
    for start in range(0, len(rows), _BATCH):
        connection.execute(insert(table), rows[start:start + _BATCH])


def segment_counts(session: Session) -> dict[str, int]:
    """Customers per segment as last computed, every segment listed (0 when empty), in SEGMENTS order."""
    found = {segment: int(count) for segment, count in session.execute(
        select(CustomerScore.segment, func.count()).group_by(CustomerScore.segment))}
    return {segment: found.pop(segment, 0) for segment in SEGMENTS} | found


def last_computed_at(session: Session) -> datetime | None:
    return session.execute(select(func.max(CustomerScore.computed_at))).scalar_one_or_none()


def score_of(session: Session, customer_id: int) -> CustomerScore | None:
    return session.get(CustomerScore, customer_id)
