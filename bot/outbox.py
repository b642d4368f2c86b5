"""The outbox dispatcher: claims queued rows, sends them through their channel, records the outcome.

Claiming and recording are separate short transactions, so a slow provider never holds a lock.
A row whose worker died mid-send is claimed again after `claim_timeout_s`; a live worker whose batch runs longer
than half that renews its claim on the rows it still holds, and writes outcomes only to rows still its own.

Guarded rows — every row of a channel that says `guard_sends` (customer messages on SMS, WhatsApp, Telegram; every
Slack desk post, found again by the outbox id in its metadata), and every at-most-once row (payload "at_most_once":
broadcasts) — have their start committed before the provider call,
together with the outcomes before it. A row whose outcome is unknown (claimed again with a start and no outcome
after a crash, or a send that ended in MaybeSent: 5xx, read timeout, connection lost after sending) is never
blindly sent again. A channel that can list what it accepted (`find_sent`: Twilio) is asked, and the row is
recorded `sent` with the sid it finds, or sent now if nothing arrived: exactly once; its rows may start in groups
(a crash leaves a few lookups to do). A channel that cannot be asked (Telegram) starts one row at a time, and a
row whose fate is unknown gets no second copy: a reply is recorded `unconfirmed`, a broadcast `failed`, with the
reason: at most once. See docs/delivery.md.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy.orm import Session

from bot import metrics
from bot.clock import Clock, SystemClock
from bot.config import OutboxConfig
from bot.messages import Button, Media, OutboundMessage
from bot.ratelimit import Limiter, RateLimiter
from channels.base import MaybeSent, RateKey, RetryLater, Sender, Undeliverable
from store import Database
from store.db import unavailable_reason
from store.messages import (
    ClaimedRow,
    PutBack,
    Sent,
    Settled,
    claim_outbox,
    failed_desk_card,
    last_inbound_times,
    outbox_defer,
    outbox_failed,
    outbox_known_sent,
    outbox_retry,
    outbox_sent,
    outbox_started,
    outbox_unconfirmed,
    renew_claims,
    waiting_behind,
)
from store.models import Conversation, OutboxItem
from store.reachability import record_refusal

log = logging.getLogger(__name__)


RECORD_EVERY = 50
RECORD_WITHIN_S = 1.0
PACE_S = 0.05  # rate-limit waits up to this long are slept through rather than deferred
BROADCAST_BURST_S = 0.1  # the broadcast bucket holds this many seconds' worth of sends
START_GROUP = 50  # guarded rows of a reconcilable channel whose starts are committed together
ABANDONED_LOOKS_PER_TIMEOUT = 4  # rows of a dead worker are looked for this often per claim_timeout, not every pass
KNOWN_SIDS_WINDOW = timedelta(days=1)  # sids recorded this long before a start are not taken for an unclear send
CARD_WAIT_S = 2.0  # how often a thread post looks again for its card (not an attempt)
SLACK_FILE = "slack:"  # an agent's file reference (channels/slack.py FILE_PREFIX): no provider can fetch it


@dataclass(frozen=True)
class Outcome:
    item_id: int
    # "lost": another worker took the row over (this one's claim ran out); nothing is written for it here
    status: Literal["sent", "retry", "failed", "deferred", "unconfirmed", "lost"]
    provider_id: str = ""
    error: str = ""
    delay_s: float = 0.0
    channel: str = ""
    recipient: str = ""
    permanent: bool = False  # the provider refused for good: the address is marked undeliverable
    unsubscribed: bool = False  # ... because the person unsubscribed at the provider: marketing consent withdrawn
    keep_started: bool = False  # retry/defer: the row's interrupted start stays recorded (not reconciled yet)


@dataclass(frozen=True)
class Claimed:
    item_id: int
    attempts: int
    to_customer: bool
    message: OutboundMessage
    at_most_once: bool = False
    started_at: datetime | None = None  # an earlier attempt's start that never got an outcome
    guarded: bool = False  # started before the send; an unknown outcome is looked up or settled, never resent
    message_id: int | None = None  # what an outcome is also written to, known from the claim (nothing read again)
    card_for: int | None = None  # a desk card: the conversation whose thread its post opens


def backoff_seconds(attempt: int, config: OutboxConfig) -> float:
    """Exponential: base, 2*base, 4*base ... capped."""
    return min(config.backoff_base_s * (2 ** max(attempt - 1, 0)), config.backoff_max_s)


def to_outbound(item: OutboxItem | ClaimedRow, window_open: bool | None, options: dict[str, Any] | None = None
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
        # Files sent with the text (an agent's from Slack): `slack:` references are fetched at send time.
        media=tuple(Media(str(m["url"]), m.get("content_type"), m.get("kind"), m.get("file_name"))
                    for m in payload.get("media") or []),
        outbox_id=item.id,  # Slack tags its posts with it, so an unclear post can be found again (find_sent)
    )


def _fetched(item: Media, data_url: str) -> Media:
    """`item` with its bytes as a data: URL; a type Slack did not tell at share time comes from the download."""
    return replace(item, url=data_url, content_type=item.content_type or data_url[5:].split(";", 1)[0] or None)


def desk_options(session: Session, item: OutboxItem | ClaimedRow) -> dict[str, Any] | None:
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
        broadcast_rates: dict[str, float] | None = None,
        limiter: Limiter | None = None,
    ) -> None:
        self.database = database
        self.channels = channels
        self.clock = clock
        self.config = config
        # CRM-4.3: broadcasts per second per channel, below the provider's limit, so replies keep headroom.
        self.broadcast_rates = dict(broadcast_rates or {})
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        # Shared by the replicas on PostgreSQL (bot/ratelimit_shared.py, chosen in bot/app.py build()).
        self.limiter: Limiter = limiter or RateLimiter(clock)
        # A short rate-limit wait is slept through on the real clock; a manual clock (tests) never moves by
        # itself, so there the row is put back instead.
        self.paces = isinstance(clock, SystemClock)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._abandoned_look_at: datetime | None = None  # when to look for a dead worker's rows next (None: now)
        self._batch: dict[int, Claimed] = {}  # the pass in progress, by row id: what recording its outcomes needs
        self._renew_at: datetime | None = None  # when the pass in progress renews its claim (half the timeout)
        self._lost: set[int] = set()  # rows of the pass in progress that another worker took over: not sent here

    def run_once(self) -> int:
        """Send everything due now; returns how many rows were attempted."""
        now = self.clock.now()
        with self.database.unit_of_work() as session:
            claimed = self._claim(session, now)
        # Oldest first: a retried row (later next_attempt_at, lower id) goes before what was written after it.
        claimed.sort(key=lambda entry: entry.item_id)
        self._batch = {entry.item_id: entry for entry in claimed}
        self._renew_at, self._lost = now + timedelta(seconds=self.config.claim_timeout_s / 2), set()
        outcomes: list[Outcome] = []
        waiting: dict[tuple[str, str], float] = {}  # customer addresses whose earlier message did not go
        last_flush = time.monotonic()
        started: set[int] = set()  # guarded rows whose start this pass has committed
        for index, entry in enumerate(claimed):
            if self.clock.now() >= self._renew_at:  # only a batch running longer than half the claim timeout
                self._renew(claimed[index:], outcomes)
                outcomes, last_flush = [], time.monotonic()
            message = entry.message
            address = (message.channel, message.recipient)
            if entry.item_id in self._lost:
                outcome = Outcome(entry.item_id, "lost")
            elif entry.to_customer and address in waiting:
                # Not sent; an interrupted start not reconciled yet must stay for when it is claimed again.
                outcomes.append(Outcome(entry.item_id, "deferred", delay_s=waiting[address],
                                        keep_started=entry.started_at is not None))
                continue
            elif entry.guarded:
                outcome = self._send_guarded(entry, outcomes, started, claimed[index + 1:])
            else:
                outcome = self._send_one(entry.item_id, entry.attempts, message)
            if outcome.status == "lost":
                # Its new holder sends it; this customer's later messages wait for that, as the claim would have them.
                if entry.to_customer:
                    waiting.setdefault(address, self.config.poll_interval_s)
                continue
            outcomes.append(outcome)
            if entry.to_customer and outcome.status in ("retry", "deferred"):
                waiting[address] = outcome.delay_s
            # Outcomes are written together (one transaction, not one per message), but never held
            # long: a crash loses at most this small window, whose rows are then sent again.
            if len(outcomes) >= RECORD_EVERY or time.monotonic() - last_flush > RECORD_WITHIN_S:
                self._record(outcomes)
                outcomes, last_flush = [], time.monotonic()
        self._record(outcomes)
        self._batch, self._renew_at = {}, None
        return len(claimed)

    def _renew(self, remaining: list[Claimed], unrecorded: list[Outcome]) -> None:
        """The pass has run half the claim timeout: record the outcomes so far and move the claim of the rows still
        to go forward, in one short transaction, so no other worker takes them for a dead worker's. A row it no
        longer holds (this worker stalled past the timeout, and it was taken over) is left to its new holder.

        Between two renewals each row's send must end within half the timeout; a single provider call longer than
        that can still lose its rows (then the outcome guard keeps the other worker's record)."""
        now = self.clock.now()
        ids = [entry.item_id for entry in remaining if entry.item_id not in self._lost]
        with self.database.unit_of_work() as session:
            recorded = self._record_in(session, unrecorded)
            held = renew_claims(session, ids, worker=self.worker, now=now)
        self._count(recorded)
        self._renew_at = now + timedelta(seconds=self.config.claim_timeout_s / 2)
        lost = [item_id for item_id in ids if item_id not in held]
        if lost:
            self._lose(lost, "not sent here")

    def _lose(self, item_ids: list[int], what: str) -> None:
        self._lost.update(item_ids)
        log.warning("outbox %s: %s: another worker took the row over after this worker's claim ran out "
                    "(claim_timeout_s=%s); its record stands", ", ".join(map(str, item_ids)), what,
                    self.config.claim_timeout_s)

    def _claim(self, session: Session, now: datetime) -> list[Claimed]:
        """Claim the due rows (per-customer order kept by the claim: store.messages.claim_outbox), put back what
        must still wait, and turn the rest into messages with everything their send needs, in one transaction."""
        timeout = timedelta(seconds=self.config.claim_timeout_s)
        look = self._abandoned_look_at is None or now >= self._abandoned_look_at
        rows = claim_outbox(session, now=now, worker=self.worker, limit=self.config.batch_size,
                            claim_timeout=timeout, release_abandoned=look)
        if look:
            self._abandoned_look_at = now + timeout / ABANDONED_LOOKS_PER_TIMEOUT
        # The claim leaves an earlier message out only when the batch is full, or (PostgreSQL) when another process
        # is claiming it right now and SKIP LOCKED hid it: only then is the batch checked against older rows.
        held: dict[int, datetime] = {}
        if len(rows) >= self.config.batch_size or self.database.dialect != "sqlite":
            held = waiting_behind(session, rows, now=now, hold_s=self.config.poll_interval_s)
        windows = self._windows(session, rows, now)
        put_back: list[PutBack] = []
        gave_up: list[Settled] = []
        claimed: list[Claimed] = []
        for row in rows:
            options = desk_options(session, row)
            if options is None:  # a thread post whose card is not in Slack yet
                # Waiting for the card is not an attempt (a busy minute of 429s on the card must not spend
                # the relay's budget); it gives up only when the card itself gave up, and says so.
                card = failed_desk_card(session, row.conversation_id)
                if card is None:
                    put_back.append(PutBack(row.id, now + timedelta(seconds=CARD_WAIT_S)))
                else:
                    reason = f"not relayed: the conversation's Slack card could not be posted ({card})"
                    gave_up.append(Settled(row.id, row.message_id, reason))
                    log.error("outbox %s: %s", row.id, reason)
                continue
            if row.id in held:  # an older message to this customer goes first
                put_back.append(PutBack(row.id, held[row.id], keep_started=True, customer=(row.channel, row.recipient)))
                continue
            at_most_once = bool(row.payload.get("at_most_once"))
            # Customer messages (SMS, WhatsApp, Telegram) and every Slack desk post (no message row) say
            # `guard_sends` through their channel; only desk posts are rows without a message.
            guarded = at_most_once or self._guards(row.channel)
            claimed.append(Claimed(row.id, row.attempts, row.message_id is not None,
                                   to_outbound(row, windows.get(row.id), options), at_most_once,
                                   row.send_started_at if guarded else None, guarded, row.message_id, row.card_for))
        outbox_defer(session, put_back, worker=self.worker)  # claimed in this transaction: all still this worker's
        outbox_failed(session, gave_up, worker=self.worker)
        return claimed

    def _windows(self, session: Session, rows: list[ClaimedRow], now: datetime) -> dict[int, bool]:
        """For rows on a channel with a session window (WhatsApp): did the customer write recently enough?
        Computed now, at send time, not when the message was written; one query per such channel."""
        open_by_row: dict[int, bool] = {}
        for name in {row.channel for row in rows}:
            window = getattr(self.channels.get(name), "session_window", None)
            if window is None:
                continue
            mine = [row for row in rows if row.channel == name]
            last = last_inbound_times(session, name, [row.recipient for row in mine])
            for row in mine:
                when = last.get(row.recipient)
                open_by_row[row.id] = when is not None and now - when < window
        return open_by_row

    def _guards(self, channel: str) -> bool:
        return bool(getattr(self.channels.get(channel), "guard_sends", False))

    def _send_guarded(self, entry: Claimed, unrecorded: list[Outcome], started: set[int],
                      later: list[Claimed]) -> Outcome:
        if entry.started_at is not None:
            settled = self._reconcile(entry, unrecorded)
            if settled is not None:
                return settled
        before_send = None if entry.item_id in started else (
            lambda: self._start(entry, unrecorded, started, later))
        return self._send_one(entry.item_id, entry.attempts, entry.message, before_send=before_send, guarded=entry)

    def _start(self, entry: Claimed, unrecorded: list[Outcome], started: set[int], later: list[Claimed]) -> bool:
        """Commit the start of this send together with the outcomes so far (`unrecorded` is emptied).

        A channel that can be asked what it accepted (`find_sent`: Twilio) has the starts of its next guarded
        rows of this pass committed in the same transaction: a crash leaves up to START_GROUP rows to reconcile, one
        lookup each. A channel that cannot be asked (Telegram) starts one row at a time, so a crash leaves at most
        one row whose fate is unknown, and every earlier outcome is committed before its send.

        False when the row is no longer this worker's (taken over after its claim ran out): it must not be sent.
        The start is written only to rows still held, so it is also where a guarded send learns that."""
        group = [entry.item_id]
        if self._can_reconcile(entry.message.channel):
            group += [e.item_id for e in later if e.guarded and e.started_at is None
                      and self._can_reconcile(e.message.channel)][:START_GROUP - 1]
        with self.database.unit_of_work() as session:
            recorded = self._record_in(session, unrecorded)
            begun = outbox_started(session, group, now=self.clock.now(), worker=self.worker)
        self._count(recorded)
        unrecorded.clear()
        started.update(begun)
        if len(begun) < len(group):
            self._lose([item_id for item_id in group if item_id not in begun], "not started here")
        return entry.item_id in begun

    def _can_reconcile(self, channel: str) -> bool:
        return callable(getattr(self.channels.get(channel), "find_sent", None))

    def _reconcile(self, entry: Claimed, unrecorded: list[Outcome]) -> Outcome | None:
        """An earlier attempt of this row reached for the provider and never learned the outcome (its process died,
        or the provider gave no clear answer): did it arrive?

        An Outcome when settled (found: sent; cannot tell: unconfirmed or failed, never twice); None when it surely
        did not arrive, so it is sent now."""
        message = entry.message
        finder = getattr(self.channels.get(message.channel), "find_sent", None)
        assert entry.started_at is not None
        if finder is None:
            return self._unknown(entry, "interrupted by a crash while sending")
        with self.database.unit_of_work(read_only=True) as session:
            known = outbox_known_sent(session, message.channel, message.recipient,
                                      since=entry.started_at - KNOWN_SIDS_WINDOW)
        known.update(o.provider_id for o in unrecorded if o.status == "sent" and o.provider_id)
        try:
            provider_id: str | None = finder(message, entry.started_at, exclude=known)
        except Exception as exc:  # the provider cannot answer now: ask again later, keeping the start
            metrics.provider_error(message.channel, metrics.error_kind(exc))
            reason = exc.reason if isinstance(exc, (RetryLater, Undeliverable)) else f"{type(exc).__name__}: {exc}"
            log.warning("outbox %s: could not check whether an unclear send arrived: %s", entry.item_id, reason)
            return Outcome(entry.item_id, "retry", error=f"checking an unclear send: {reason}",
                           delay_s=backoff_seconds(entry.attempts, self.config), keep_started=True)
        if provider_id:
            log.info("outbox %s: an unclear send had arrived (%s); not sent again", entry.item_id, provider_id)
            return Outcome(entry.item_id, "sent", provider_id=provider_id)
        if entry.attempts > self.config.max_attempts:  # the last attempt was unclear, and it did not arrive
            reason = f"gave up after {entry.attempts - 1} attempts; {message.channel} has no record of it"
            log.error("outbox %s: %s", entry.item_id, reason)
            return Outcome(entry.item_id, "failed", error=reason)
        return None

    def _unknown(self, entry: Claimed, why: str) -> Outcome:
        """A send whose fate cannot be known (the channel cannot be asked): never sent again. A reply is recorded
        `unconfirmed` (counted in /healthz); a broadcast `failed`, so the campaign's numbers count it as lost."""
        channel = entry.message.channel
        if entry.at_most_once:
            reason = f"{why}; {channel} cannot tell whether it arrived, so it is not sent again (at most once)"
            log.error("outbox %s: %s", entry.item_id, reason)
            return Outcome(entry.item_id, "failed", error=reason)
        reason = (f"unconfirmed: {why}; {channel} cannot be asked whether it arrived, so it is not sent again "
                  "(the customer may or may not have it)")
        log.error("outbox %s: %s", entry.item_id, reason)
        return Outcome(entry.item_id, "unconfirmed", error=reason)

    def _rate_keys(self, channel: Sender, message: OutboundMessage) -> list[RateKey]:
        keys = channel.rate_keys(message)
        rate = self.broadcast_rates.get(message.channel) if message.purpose == "broadcast" else None
        if not rate:
            return keys
        # A small burst: a campaign is paced evenly, so no second ever carries much more than the rate.
        return [*keys, RateKey(f"broadcast:{message.channel}", rate, burst=max(1.0, rate * BROADCAST_BURST_S))]

    def _send_one(self, item_id: int, attempts: int, message: OutboundMessage,
                  before_send: Callable[[], bool] | None = None, guarded: Claimed | None = None) -> Outcome:
        """One provider call. `guarded`: the row's start is committed first (`before_send`), and a call that may
        have reached the provider without a clear answer is settled by _unclear instead of retried blindly."""
        channel = self.channels.get(message.channel)
        calling = False  # the request may have left: from here an unexpected error is an unclear outcome
        try:
            if channel is None:
                raise Undeliverable(f"channel {message.channel!r} is not enabled", address_dead=False)
            keys = self._rate_keys(channel, message)
            wait = self.limiter.reserve(keys)
            if 0 < wait <= PACE_S and self.paces:  # pacing: cheaper than putting the row back and claiming it again
                self._stop.wait(wait)
                wait = self.limiter.reserve(keys)
            if wait > 0:
                return Outcome(item_id, "deferred", delay_s=wait)
            if before_send is not None and not before_send():
                return Outcome(item_id, "lost")
            if any(item.url.startswith(SLACK_FILE) for item in message.media):
                message = self._with_slack_files(item_id, attempts, message)
            calling = True
            return Outcome(item_id, "sent", provider_id=channel.send(message))
        except Undeliverable as exc:
            if calling:  # the provider refused (not "channel not enabled", which is ours)
                metrics.provider_error(message.channel, "undeliverable")
            log.warning("outbox %s undeliverable on %s: %s", item_id, message.channel, exc.reason)
            return Outcome(item_id, "failed", error=exc.reason, recipient=message.recipient,
                           channel=message.channel, permanent=exc.address_dead, unsubscribed=exc.unsubscribed)
        except Exception as exc:  # RetryLater, and anything unexpected: retry with backoff
            if calling:
                metrics.provider_error(message.channel, metrics.error_kind(exc))
            if guarded is not None and calling and (isinstance(exc, MaybeSent) or not isinstance(exc, RetryLater)):
                return self._unclear(guarded, exc)
            after = exc.after_s if isinstance(exc, RetryLater) else None
            reason = exc.reason if isinstance(exc, RetryLater) else f"{type(exc).__name__}: {exc}"
            if attempts >= self.config.max_attempts:
                log.error("outbox %s failed after %d attempts: %s", item_id, attempts, reason)
                return Outcome(item_id, "failed", error=f"gave up after {attempts} attempts: {reason}")
            delay = max(after or 0.0, backoff_seconds(attempts, self.config))
            log.warning("outbox %s retry in %.1fs (attempt %d): %s", item_id, delay, attempts, reason)
            return Outcome(item_id, "retry", error=reason, delay_s=delay)

    def _unclear(self, entry: Claimed, exc: Exception) -> Outcome:
        """The provider may have accepted this send (MaybeSent, or an unexpected error once the request could have
        left). Twilio: back to pending with the start kept, so the next attempt looks it up first (recorded `sent`
        with the sid it finds, or sent then). Telegram: it cannot be asked, so it is settled and not sent again."""
        reason = exc.reason if isinstance(exc, RetryLater) else f"{type(exc).__name__}: {exc}"
        if not self._can_reconcile(entry.message.channel):
            return self._unknown(entry, f"no clear answer ({reason})")
        after = (exc.after_s or 0.0) if isinstance(exc, RetryLater) else 0.0
        delay = max(after, backoff_seconds(entry.attempts, self.config))
        log.warning("outbox %s: no clear answer (%s); looked up in %.1fs before any resend", entry.item_id, reason,
                    delay)
        return Outcome(entry.item_id, "retry", error=f"no clear answer, to be looked up: {reason}", delay_s=delay,
                       keep_started=True)

    def _with_slack_files(self, item_id: int, attempts: int, message: OutboundMessage) -> OutboundMessage:
        """An agent's file still in Slack, for a channel that uploads bytes itself (Telegram): fetched here,
        outside any transaction, through the desk (it holds the bot token), and handed over as a data: URL.
        (Twilio gets signed Sapa links instead, written by the desk: it fetches files itself.) When Slack will
        not hand the file over for good, or on the last attempt, the agent hears why in the card's thread."""
        desk = self.channels.get("slack")
        fetch = getattr(desk, "fetch_data_url", None)
        try:
            if fetch is None:
                raise Undeliverable("the Slack desk is not enabled, so the agent's file cannot be fetched",
                                    address_dead=False)
            media = tuple(_fetched(item, fetch(item.url, item.content_type)) if item.url.startswith(SLACK_FILE)
                          else item for item in message.media)
        except (RetryLater, Undeliverable) as exc:
            if isinstance(exc, Undeliverable) or attempts >= self.config.max_attempts:
                from handlers.desk_slack import file_not_delivered  # handlers import store, never the outbox

                with self.database.unit_of_work() as session:
                    item = session.get(OutboxItem, item_id)
                    if item is not None and item.message_id is not None:
                        file_not_delivered(session, item.message_id, None, exc.reason, now=self.clock.now())
            raise
        return replace(message, media=media)

    def _record(self, outcomes: list[Outcome]) -> None:
        if not outcomes:
            return
        with self.database.unit_of_work() as session:
            recorded = self._record_in(session, outcomes)
        self._count(recorded)

    def _count(self, outcomes: list[Outcome]) -> None:
        """The Prometheus counts of outcomes just committed (a deferral is no attempt: not counted)."""
        for outcome in outcomes:
            if outcome.status != "deferred" and outcome.status != "lost":
                metrics.outbound(self._batch[outcome.item_id].message.channel, outcome.status)

    def _record_in(self, session: Session, outcomes: list[Outcome]) -> list[Outcome]:
        """The one place where outcomes are written: a few executemany UPDATEs per kind of outcome, whatever the
        number of rows (what each row's message is comes from the claim, `self._batch`). Only to rows this worker
        still holds; returns the outcomes written (a row another worker took over keeps that worker's state)."""
        now = self.clock.now()
        sent: list[Sent] = []
        retries: list[PutBack] = []
        deferred: list[PutBack] = []
        failed: list[Settled] = []
        unconfirmed: list[Settled] = []
        for outcome in outcomes:
            entry = self._batch[outcome.item_id]
            customer = (entry.message.channel, entry.message.recipient) if entry.to_customer else None
            if outcome.status == "sent":
                sent.append(Sent(outcome.item_id, outcome.provider_id, entry.message_id, entry.message.recipient,
                                 entry.card_for))
            elif outcome.status == "deferred":
                deferred.append(PutBack(outcome.item_id, now + timedelta(seconds=outcome.delay_s),
                                        keep_started=outcome.keep_started, customer=customer))
            elif outcome.status == "unconfirmed":
                unconfirmed.append(Settled(outcome.item_id, entry.message_id, outcome.error))
            elif outcome.status == "failed":
                failed.append(Settled(outcome.item_id, entry.message_id, outcome.error))
                if outcome.permanent:
                    record_refusal(session, outcome.channel, outcome.recipient, reason=outcome.error,
                                   unsubscribed=outcome.unsubscribed, evidence=f"refused at send: {outcome.error}",
                                   now=now)
            else:
                retries.append(PutBack(outcome.item_id, now + timedelta(seconds=outcome.delay_s),
                                       keep_started=outcome.keep_started, error=outcome.error, customer=customer))
        mine = self.worker
        lost = (outbox_sent(session, sent, now=now, worker=mine) | outbox_defer(session, deferred, worker=mine)
                | outbox_unconfirmed(session, unconfirmed, worker=mine) | outbox_failed(session, failed, worker=mine)
                | outbox_retry(session, retries, worker=mine))
        if not lost:
            return outcomes
        for outcome in outcomes:
            if outcome.item_id in lost:
                self._lose([outcome.item_id], f"outcome {outcome.status!r} not recorded"
                           + (" (sent by this worker too)" if outcome.status == "sent" else ""))
        return [outcome for outcome in outcomes if outcome.item_id not in lost]

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
            except Exception as exc:
                if (why := unavailable_reason(exc)) is not None:  # a database restart: one line, not a traceback
                    log.warning("outbox dispatcher: database unavailable, trying again: %s", why)
                else:
                    log.exception("outbox dispatcher pass failed; trying again")
                busy = False
            if not busy:
                self._wake.wait(self.config.poll_interval_s)
                self._wake.clear()
