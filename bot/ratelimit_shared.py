"""Provider rate limits shared by every replica: token buckets held in PostgreSQL (issue 18).

The outbox asks `reserve(keys)` before each send, as it asks the in-process RateLimiter: 0.0 and the tokens
taken from every bucket, or the seconds to wait with nothing taken. Here each reservation is one short
transaction on the shared `rate_buckets` rows (store/rate_buckets.py), so three replicas together send at the
configured rate (plus the burst), not three times it. It costs one round trip per send; a send already makes
several, and a provider call is slower still.
"""

from __future__ import annotations

from bot.clock import Clock
from bot.ratelimit import Limiter, RateLimiter
from channels.base import RateKey
from store import Database
from store.rate_buckets import Draw, take


def _draws(keys: list[RateKey]) -> list[Draw]:
    """One draw per bucket (a key named twice pays both costs), as the in-process limiter sizes them."""
    draws: dict[str, Draw] = {}
    for key in keys:
        capacity = max(key.per_second if key.burst is None else key.burst, key.cost)
        earlier = draws.get(key.key)
        cost = key.cost + (earlier.cost if earlier else 0.0)
        draws[key.key] = Draw(key.key, key.per_second, cost, max(capacity, cost))
    return list(draws.values())


class SharedRateLimiter:
    def __init__(self, database: Database, clock: Clock) -> None:
        self.database = database
        self.clock = clock

    def reserve(self, keys: list[RateKey]) -> float:
        """0.0 and take the tokens if every bucket allows the send now; else the seconds to wait."""
        if not keys:
            return 0.0
        draws = _draws(keys)
        with self.database.engine.connect() as connection:
            left = take(connection, draws, self.clock.now())
            waits = [-left[draw.key] / draw.per_second for draw in draws if left[draw.key] < 0]
            if waits:
                connection.rollback()  # all or nothing: the buckets that could pay keep their tokens
                return max(waits)
            connection.commit()
        return 0.0


def limiter_for(database: Database, clock: Clock) -> Limiter:
    """PostgreSQL may have several replicas: they share buckets. SQLite has one process: memory is enough."""
    if database.dialect == "postgresql":
        return SharedRateLimiter(database, clock)
    return RateLimiter(clock)
