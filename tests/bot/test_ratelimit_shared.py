"""Rate limits shared by replicas on PostgreSQL: the same answers as the in-process limiter, and three replicas
(three engines, as three processes have) together never pass the configured rate plus the burst."""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest

from bot.clock import ManualClock
from bot.ratelimit import RateLimiter
from bot.ratelimit_shared import SharedRateLimiter, limiter_for
from channels.base import RateKey
from store import Database, create_database
from tests.support.pgserver import PostgresServer

_counter = itertools.count()


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> str:
    """A freshly migrated PostgreSQL database (the shared limiter exists for PostgreSQL only)."""
    return pg_server.copy_of("sapa_template", f"rl{os.getpid()}_{next(_counter)}")


@pytest.fixture
def replicas(pg_url: str) -> Iterator[list[Database]]:
    """Three engines on one database, as three `sapa serve` processes have."""
    databases = [create_database(pg_url, pool_size=2) for _ in range(3)]
    yield databases
    for database in databases:
        database.dispose()


def test_postgres_shares_buckets_and_sqlite_keeps_them_in_memory(replicas, tmp_path):
    clock = ManualClock()
    assert isinstance(limiter_for(replicas[0], clock), SharedRateLimiter)
    sqlite = create_database(f"sqlite:///{tmp_path}/one.db")
    try:
        assert isinstance(limiter_for(sqlite, clock), RateLimiter)
    finally:
        sqlite.dispose()


def test_one_per_second_per_chat_and_thirty_overall_across_replicas(replicas):
    clock = ManualClock()
    first, second, third = (SharedRateLimiter(database, clock) for database in replicas)
    chat = [RateKey("tg:global", 30), RateKey("tg:chat:1", 1)]
    assert first.reserve(chat) == 0.0
    assert second.reserve(chat) == pytest.approx(1.0)  # the chat's bucket is empty for a second, for everyone
    others = [(first, second, third)[n % 3].reserve([RateKey("tg:global", 30), RateKey(f"tg:chat:{n}", 1)])
              for n in range(2, 32)]
    assert others.count(0.0) == 29  # 30 per second overall, across the three: one was already used
    assert others[-1] > 0
    clock.advance(timedelta(seconds=1))
    assert third.reserve(chat) == 0.0


def test_sms_segments_cost_more_than_one_token(replicas):
    clock = ManualClock()
    first, second, _ = (SharedRateLimiter(database, clock) for database in replicas)
    assert first.reserve([RateKey("sms:sender", 1, cost=3)]) == 0.0  # a 3-segment message
    assert second.reserve([RateKey("sms:sender", 1, cost=1)]) == pytest.approx(1.0)
    clock.advance(timedelta(seconds=1))
    assert second.reserve([RateKey("sms:sender", 1, cost=1)]) == 0.0


def test_a_refused_reservation_takes_nothing(replicas):
    clock = ManualClock()
    first, second, _ = (SharedRateLimiter(database, clock) for database in replicas)
    first.reserve([RateKey("a", 1)])
    assert second.reserve([RateKey("a", 1), RateKey("b", 1)]) == pytest.approx(1.0)
    assert first.reserve([RateKey("b", 1)]) == 0.0  # b was not charged by the refused send


def test_a_replica_whose_clock_is_behind_does_not_refill_twice(replicas):
    ahead, behind = ManualClock(), ManualClock()
    ahead.advance(timedelta(seconds=0.5))
    key = [RateKey("sms:sender", 2, burst=1)]
    assert SharedRateLimiter(replicas[0], ahead).reserve(key) == 0.0
    assert SharedRateLimiter(replicas[1], behind).reserve(key) > 0  # no token appears for being half a second late
    ahead.advance(timedelta(seconds=0.5))
    assert SharedRateLimiter(replicas[0], ahead).reserve(key) == 0.0


def test_three_replicas_sending_at_once_keep_the_rate_plus_the_burst(replicas):
    """Each replica sends as fast as it is allowed while time moves in 50 ms steps over 3 s: together they get
    3 s x 20/s + a burst of 2, as one replica alone would, and neither more nor much less."""
    clock = ManualClock()
    keys = [RateKey("broadcast:telegram", 20, burst=2), RateKey("telegram:global", 30)]
    limiters = [SharedRateLimiter(database, clock) for database in replicas]
    granted = [0, 0, 0]
    stop = threading.Event()

    def send(replica: int) -> None:
        while not stop.is_set():
            if limiters[replica].reserve(keys) == 0.0:
                granted[replica] += 1

    threads = [threading.Thread(target=send, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(60):
            stop.wait(0.02)  # let the replicas drain the tokens of this step
            clock.advance(timedelta(milliseconds=50))
        stop.wait(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert sum(granted) <= 3 * 20 + 2
    assert sum(granted) >= 3 * 20 * 0.9  # the limiter paces; it does not starve
    assert all(granted)  # every replica sent some
