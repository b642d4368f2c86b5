"""The outbox dispatcher: claims queued rows, sends them through their channel, records the outcome.

Claiming and recording are separate short transactions, so a slow provider never holds a lock.
A row whose worker died mid-send is claimed again after `claim_timeout_s`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy.orm import Session

from bot.clock import Clock
from bot.config import OutboxConfig
from bot.messages import Button, OutboundMessage
from bot.ratelimit import RateLimiter
from channels.base import RetryLater, Sender, Undeliverable
from store import Database
from store.messages import (
    claim_outbox,
    last_inbound_at,
    mark_undeliverable,
    outbox_defer,
    outbox_failed,
    outbox_retry,
    outbox_sent,
    waiting_behind,
)
from store.models import Conversation, OutboxItem

log = logging.getLogger(__name__)


RECORD_EVERY = 50
RECORD_WITHIN_S = 1.0


@dataclass(frozen=True)
class Outcome:
    item_id: int
    status: Literal["sent", "retry", "failed", "deferred"]
    provider_id: str = ""
    error: str = ""
    delay_s: float = 0.0
    channel: str = ""
    recipient: str = ""
    permanent: bool = False  # the provider refused for good: the address is marked undeliverable


def backoff_seconds(attempt: int, config: OutboxConfig) -> float:
    """Exponential: base, 2*base, 4*base ... capped."""
    return min(config.backoff_base_s * (2 ** max(attempt - 1, 0)), config.backoff_max_s)


def to_outbound(item: OutboxItem, window_open: bool | None, options: dict[str, Any] | None = None
                ) -> OutboundMessage:
    payload = item.payload
    return OutboundMessage(
        channel=item.channel,
        recipient=item.recipient,
        text=payload.get("text", ""),
        buttons=tuple(Button(b["title"], b["payload"]) for b in payload.get("buttons", [])),
        template=payload.get("template"),
        template_variables=dict(payload.get("template_variables", {})),
        purpose=payload.get("purpose", "reply"),
        language=payload.get("language"),
        window_open=window_open,
        options=options if options is not None else dict(payload.get("options", {})),
    )


def desk_options(session: Session, item: OutboxItem) -> dict[str, Any] | None:
    """Options with the conversation's card thread filled in; None while the card is not posted yet."""
    options = dict(item.payload.get("options", {}))
    for key, target in (("thread_of", "thread_ts"), ("update_card_of", "update_ts")):
        if key in options:
            conversation = session.get(Conversation, options.pop(key))
            if conversation is None or conversation.desk_ts is None:
                return None
            options[target] = conversation.desk_ts
    return options


class OutboxDispatcher:
    def __init__(
        self,
        database: Database,
        channels: dict[str, Sender],
        clock: Clock,
        config: OutboxConfig,
        worker: str | None = None,
    ) -> None:
        self.database = database
        self.channels = channels
        self.clock = clock
        self.config = config
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.limiter = RateLimiter(clock)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """Send everything due now; returns how many rows were attempted."""
        now = self.clock.now()
        with self.database.unit_of_work() as session:
            items = claim_outbox(
                session, now=now, worker=self.worker, limit=self.config.batch_size,
                claim_timeout=timedelta(seconds=self.config.claim_timeout_s),
            )
            held = waiting_behind(session, items, now=now, hold_s=self.config.poll_interval_s)
            claimed = []
            for item in items:
                options = desk_options(session, item)
                if options is None:  # a thread post whose card is not in Slack yet
                    if item.attempts >= self.config.max_attempts:
                        outbox_failed(session, item.id, error="the conversation's Slack card was never posted")
                    else:
                        delay = backoff_seconds(item.attempts, self.config)
                        outbox_retry(session, item.id, error="waiting for the desk card to be posted",
                                     next_attempt_at=now + timedelta(seconds=delay))
                    continue
                if item.id in held:  # an older message to this customer goes first
                    outbox_defer(session, item.id, next_attempt_at=held[item.id])
                    continue
                claimed.append((item.id, item.attempts, item.message_id is not None,
                                to_outbound(item, self._window_open(session, item, now), options)))
        # Oldest first: a retried row (later next_attempt_at, lower id) goes before what was written after it.
        claimed.sort(key=lambda entry: entry[0])
        outcomes: list[Outcome] = []
        waiting: dict[tuple[str, str], float] = {}  # customer addresses whose earlier message did not go
        last_flush = time.monotonic()
        for item_id, attempts, to_customer, message in claimed:
            address = (message.channel, message.recipient)
            if to_customer and address in waiting:
                outcomes.append(Outcome(item_id, "deferred", delay_s=waiting[address]))
                continue
            outcome = self._send_one(item_id, attempts, message)
            if to_customer and outcome.status in ("retry", "deferred"):
                waiting[address] = outcome.delay_s
            outcomes.append(outcome)
            # Outcomes are written together (one transaction, not one per message), but never held
            # long: a crash loses at most this small window, whose rows are then sent again.
            if len(outcomes) >= RECORD_EVERY or time.monotonic() - last_flush > RECORD_WITHIN_S:
                self._record(outcomes)
                outcomes, last_flush = [], time.monotonic()
        self._record(outcomes)
        return len(claimed)

    def _window_open(self, session: Session, item: OutboxItem, now: datetime) -> bool | None:
        """For channels with a session window (WhatsApp): did the customer write recently enough?"""
        channel = self.channels.get(item.channel)
        window = getattr(channel, "session_window", None)
        if window is None:
            return None
        last = last_inbound_at(session, item.channel, item.recipient)
        return last is not None and now - last < window

    def _send_one(self, item_id: int, attempts: int, message: OutboundMessage) -> Outcome:
        channel = self.channels.get(message.channel)
        try:
            if channel is None:
                raise Undeliverable(f"channel {message.channel!r} is not enabled", address_dead=False)
            wait = self.limiter.reserve(channel.rate_keys(message))
            if wait > 0:
                return Outcome(item_id, "deferred", delay_s=wait)
            return Outcome(item_id, "sent", provider_id=channel.send(message))
        except Undeliverable as exc:
            log.warning("outbox %s undeliverable on %s: %s", item_id, message.channel, exc.reason)
            return Outcome(item_id, "failed", error=exc.reason, recipient=message.recipient,
                           channel=message.channel, permanent=exc.address_dead)
        except Exception as exc:  # RetryLater, and anything unexpected: retry with backoff
            after = exc.after_s if isinstance(exc, RetryLater) else None
            reason = exc.reason if isinstance(exc, RetryLater) else f"{type(exc).__name__}: {exc}"
            if attempts >= self.config.max_attempts:
                log.error("outbox %s failed after %d attempts: %s", item_id, attempts, reason)
                return Outcome(item_id, "failed", error=f"gave up after {attempts} attempts: {reason}")
            delay = max(after or 0.0, backoff_seconds(attempts, self.config))
            log.warning("outbox %s retry in %.1fs (attempt %d): %s", item_id, delay, attempts, reason)
            return Outcome(item_id, "retry", error=reason, delay_s=delay)

    def _record(self, outcomes: list[Outcome]) -> None:
        if not outcomes:
            return
        now = self.clock.now()
        with self.database.unit_of_work() as session:
            for outcome in outcomes:
                if outcome.status == "sent":
                    outbox_sent(session, outcome.item_id, provider_message_id=outcome.provider_id, now=now)
                elif outcome.status == "deferred":
                    outbox_defer(session, outcome.item_id, next_attempt_at=now + timedelta(seconds=outcome.delay_s))
                elif outcome.status == "failed":
                    outbox_failed(session, outcome.item_id, error=outcome.error)
                    if outcome.permanent:
                        mark_undeliverable(session, outcome.channel, outcome.recipient, reason=outcome.error, now=now)
                else:
                    outbox_retry(session, outcome.item_id, error=outcome.error,
                                 next_attempt_at=now + timedelta(seconds=outcome.delay_s))

    # --- background loop -----------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="sapa-outbox", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once() >= self.config.batch_size
            except Exception:
                log.exception("outbox dispatcher pass failed; trying again")
                busy = False
            if not busy:
                self._wake.wait(self.config.poll_interval_s)
                self._wake.clear()
