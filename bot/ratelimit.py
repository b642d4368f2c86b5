"""Token buckets for provider rate limits, on the injected clock (tests move time, never sleep).

These buckets live in one process: enough for SQLite, which runs one. On PostgreSQL, where several replicas
may send, the outbox uses bot/ratelimit_shared.py instead, whose buckets are rows every replica draws from; both
answer `reserve` the same way (the Limiter protocol).
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Protocol

from bot.clock import Clock
from channels.base import RateKey


class Limiter(Protocol):
    def reserve(self, keys: list[RateKey]) -> float:
        """0.0 and take the tokens if every bucket allows the send now; else the seconds to wait."""
        ...


class RateLimiter:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._buckets: dict[str, tuple[float, datetime]] = {}  # key -> (tokens, as of)
        self._lock = threading.Lock()

    def _tokens(self, key: RateKey, now: datetime) -> float:
        capacity = max(key.per_second if key.burst is None else key.burst, key.cost)
        tokens, as_of = self._buckets.get(key.key, (capacity, now))
        elapsed = max((now - as_of).total_seconds(), 0.0)
        return min(capacity, tokens + elapsed * key.per_second)

    def keys_held(self) -> int:
        """How many keys have a bucket (each key ever reserved keeps one)."""
        return len(self._buckets)

    def reserve(self, keys: list[RateKey]) -> float:
        """0.0 and take the tokens if every bucket allows the send now; else the seconds to wait."""
        with self._lock:
            now = self.clock.now()
            levels = {key.key: self._tokens(key, now) for key in keys}
            waits = [(key.cost - levels[key.key]) / key.per_second for key in keys if levels[key.key] < key.cost]
            if waits:
                return max(waits)
            for key in keys:
                self._buckets[key.key] = (levels[key.key] - key.cost, now)
            return 0.0
