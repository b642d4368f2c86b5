"""Token buckets on the injected clock: a send waits exactly as long as its slowest bucket says."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import ManualClock
from bot.ratelimit import RateLimiter
from channels.base import RateKey


def test_one_per_second_per_chat_and_thirty_overall():
    clock = ManualClock()
    limiter = RateLimiter(clock)
    chat = [RateKey("tg:global", 30), RateKey("tg:chat:1", 1)]
    assert limiter.reserve(chat) == 0.0
    assert limiter.reserve(chat) == 1.0  # the chat's bucket is empty for a second
    other_chats = [limiter.reserve([RateKey("tg:global", 30), RateKey(f"tg:chat:{n}", 1)]) for n in range(2, 32)]
    assert other_chats.count(0.0) == 29  # 30 per second overall: one was already used
    assert other_chats[-1] > 0
    clock.advance(timedelta(seconds=1))
    assert limiter.reserve(chat) == 0.0


def test_sms_segments_cost_more_than_one_token():
    clock = ManualClock()
    limiter = RateLimiter(clock)
    assert limiter.reserve([RateKey("sms:sender", 1, cost=3)]) == 0.0  # a 3-segment message
    assert limiter.reserve([RateKey("sms:sender", 1, cost=1)]) == 1.0
    clock.advance(timedelta(seconds=1))
    assert limiter.reserve([RateKey("sms:sender", 1, cost=1)]) == 0.0


def test_a_refused_reservation_takes_nothing():
    clock = ManualClock()
    limiter = RateLimiter(clock)
    limiter.reserve([RateKey("a", 1)])
    assert limiter.reserve([RateKey("a", 1), RateKey("b", 1)]) == 1.0
    assert limiter.reserve([RateKey("b", 1)]) == 0.0  # b was not charged by the refused send
