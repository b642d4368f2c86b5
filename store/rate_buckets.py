"""Token buckets held in PostgreSQL, so every replica draws from the same ones (issue 18).

One statement takes a send's tokens from all its buckets: an upsert that creates a missing bucket full and
otherwise refills it by the time since `as_of` (capped at its capacity) and subtracts the cost. Rows are upserted
in key order, so two sends sharing buckets lock them in the same order and never deadlock; a concurrent send
waits on the row lock and then computes from the committed row, so no token is handed out twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, text

_TAKE = text("""
WITH wanted(key, per_second, cost, capacity) AS (
    SELECT * FROM unnest(CAST(:keys AS varchar[]), CAST(:rates AS float8[]), CAST(:costs AS float8[]),
                         CAST(:capacities AS float8[]))
)
INSERT INTO rate_buckets AS bucket (key, tokens, as_of)
SELECT wanted.key, wanted.capacity - wanted.cost, CAST(:now AS timestamptz) FROM wanted ORDER BY wanted.key
ON CONFLICT (key) DO UPDATE SET
    tokens = (SELECT LEAST(wanted.capacity, bucket.tokens + wanted.per_second
                           * GREATEST(EXTRACT(EPOCH FROM excluded.as_of - bucket.as_of), 0)) - wanted.cost
              FROM wanted WHERE wanted.key = excluded.key),
    -- a replica whose clock is a little behind must not move the refill point back (that would refill twice)
    as_of = GREATEST(bucket.as_of, excluded.as_of)
RETURNING bucket.key, bucket.tokens
""")


@dataclass(frozen=True)
class Draw:
    """`cost` tokens from bucket `key`, which refills at `per_second` up to `capacity`."""

    key: str
    per_second: float
    cost: float
    capacity: float


def take(connection: Connection, draws: list[Draw], now: datetime) -> dict[str, float]:
    """Take every draw's tokens inside the caller's transaction; returns each bucket's tokens left after it.

    A negative level means that bucket could not pay: the caller rolls back (nothing taken) and waits
    -level / per_second seconds.
    """
    rows = connection.execute(_TAKE, {
        "keys": [draw.key for draw in draws], "rates": [draw.per_second for draw in draws],
        "costs": [draw.cost for draw in draws], "capacities": [draw.capacity for draw in draws], "now": now,
    })
    return {str(key): float(tokens) for key, tokens in rows}
