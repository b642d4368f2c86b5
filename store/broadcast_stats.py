"""CRM-4.4: how one broadcast did, and points and redemptions per RFM segment.

Read-only, aggregated in SQL (a handful of GROUP BY queries per broadcast, whatever its size). Definitions:

- recipients: every customer chosen for the broadcast; `skipped` ones never got a message (by `skip_reason`),
  `queued` ones have an outbox row, `waiting` ones are chosen but not queued yet (a broadcast still selecting
  or held by quiet hours).
- Of the queued: `pending` are not sent yet (outbox pending or sending); `sent` were accepted by the provider
  (outbox sent), including any it later reported undelivered, so delivered / sent is the delivery rate;
  `delivered` and `read` count the message's best delivery status (read implies delivered); `failed` were
  refused before sending (outbox failed) or reported failed after it, by reason (the message's
  `delivery_error`, else the outbox's `last_error`).
- replies: recipients who wrote to us (any inbound message) within `broadcasts.reply_window_hours` after
  their message was sent (`outbox.sent_at`). A STOP is a reply too, and also an opt-out.
- opt-outs: recipients whose marketing consent was withdrawn (a `consents` row, purpose marketing, granted
  false) within the same window.
- redemptions: those attributed to the broadcast (`redemptions.broadcast_id`), cancelled ones left out.
- points earned: `earn` rows of the ledger of recipients within `loyalty.attribution_days` after their message
  was sent.
- Rates are percentages of `sent`: delivered, read, replies, opt-outs, and customers who redeemed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Interval, and_, case, distinct, exists, func, literal, or_, select
from sqlalchemy.orm import Session

from store.models import (
    Broadcast,
    BroadcastRecipient,
    Consent,
    Customer,
    CustomerScore,
    LoyaltyEntry,
    Message,
    OutboxItem,
    Redemption,
)
from store.scores import SEGMENTS

if TYPE_CHECKING:  # the store imports no other project package at run time
    from bot.config import Settings

UNSCORED = "(unscored)"
UNKNOWN = "(unknown)"


@dataclass(frozen=True)
class ChannelStats:
    queued: int = 0
    pending: int = 0
    sent: int = 0
    delivered: int = 0
    read: int = 0
    failed: int = 0


@dataclass(frozen=True)
class BroadcastStats:
    broadcast_id: int
    name: str
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    recipients: int
    waiting: int  # chosen, not yet queued
    skipped: int
    skipped_by_reason: dict[str, int]
    queued: int
    by_channel: dict[str, ChannelStats]
    pending: int
    sent: int
    delivered: int
    read: int
    failed: int
    failed_by_reason: dict[str, int]
    replies: int
    opt_outs: int
    redemptions: int
    redeemers: int
    points_redeemed: int
    earners: int
    points_earned: int
    reply_window_hours: int
    attribution_days: int
    rates: dict[str, float | None] = field(default_factory=dict)  # percent of sent: delivered, read, ...

    def as_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["by_channel"] = {channel: vars(counts) for channel, counts in self.by_channel.items()}
        for name in ("started_at", "finished_at"):
            data[name] = data[name].isoformat() if data[name] else None
        return data


@dataclass(frozen=True)
class SegmentParticipation:
    """CRM-4.4: one RFM segment (as last computed) in a period: points earned and redemptions."""

    segment: str
    customers: int  # in the segment now
    earners: int
    points_earned: int
    redeemers: int
    redemptions: int
    points_redeemed: int


def percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def within(later: Any, earlier: Any, hours: int, dialect: str) -> ColumnElement[bool]:
    """`later` falls in [earlier, earlier + hours]. SQLite stores datetimes as text, so it compares Julian days."""
    if dialect == "sqlite":
        return and_(later >= earlier, func.julianday(later) <= func.julianday(earlier) + hours / 24)
    return and_(later >= earlier, later <= earlier + literal(timedelta(hours=hours), Interval()))


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def broadcast_stats(session: Session, settings: Settings, broadcast_id: int, now: datetime) -> BroadcastStats:
    """The numbers of one broadcast as the data stands at `now`; LookupError if there is no such broadcast."""
    broadcast = session.get(Broadcast, broadcast_id)
    if broadcast is None:
        raise LookupError(f"no broadcast #{broadcast_id}")
    dialect = _dialect(session)
    mine = BroadcastRecipient.broadcast_id == broadcast_id
    statuses: dict[str, int] = {}
    skipped: dict[str, int] = {}
    for status, reason, count in session.execute(
            select(BroadcastRecipient.status, BroadcastRecipient.skip_reason, func.count()).where(mine)
            .group_by(BroadcastRecipient.status, BroadcastRecipient.skip_reason)):
        statuses[status] = statuses.get(status, 0) + int(count)
        if status == "skipped":
            skipped[reason or UNKNOWN] = skipped.get(reason or UNKNOWN, 0) + int(count)

    queued = and_(mine, BroadcastRecipient.status == "queued")
    message_id = func.coalesce(BroadcastRecipient.message_id, OutboxItem.message_id)
    failed = or_(OutboxItem.status == "failed", Message.delivery_status == "failed")
    was_sent = OutboxItem.status == "sent"

    def count_if(condition: ColumnElement[bool]) -> Any:
        return func.sum(case((condition, 1), else_=0))

    by_channel: dict[str, ChannelStats] = {}
    for channel, n, pending, sent, delivered, read, failures in session.execute(
            select(BroadcastRecipient.channel, func.count(),
                   count_if(and_(OutboxItem.status.in_(("pending", "sending")), ~failed)),
                   count_if(was_sent),
                   count_if(and_(was_sent, Message.delivery_status.in_(("delivered", "read")))),
                   count_if(and_(was_sent, Message.delivery_status == "read")),
                   count_if(failed))
            .select_from(BroadcastRecipient)
            .outerjoin(OutboxItem, OutboxItem.id == BroadcastRecipient.outbox_id)
            .outerjoin(Message, Message.id == message_id)
            .where(queued).group_by(BroadcastRecipient.channel)):
        by_channel[channel or UNKNOWN] = ChannelStats(int(n), int(pending or 0), int(sent or 0),
                                                      int(delivered or 0), int(read or 0), int(failures or 0))
    why = func.coalesce(Message.delivery_error, OutboxItem.last_error, UNKNOWN)
    failed_by_reason = {str(r): int(n) for r, n in session.execute(
        select(why, func.count()).select_from(BroadcastRecipient)
        .outerjoin(OutboxItem, OutboxItem.id == BroadcastRecipient.outbox_id)
        .outerjoin(Message, Message.id == message_id)
        .where(queued, failed).group_by(why).order_by(func.count().desc(), why))}

    window = settings.broadcasts.reply_window_hours
    attribution_hours = settings.loyalty.attribution_days * 24
    reached = (select(BroadcastRecipient.customer_id, OutboxItem.sent_at).select_from(BroadcastRecipient)
               .join(OutboxItem, OutboxItem.id == BroadcastRecipient.outbox_id)
               .where(queued, OutboxItem.sent_at.is_not(None)).subquery())
    replies = session.execute(select(func.count()).select_from(reached).where(exists().where(
        Message.customer_id == reached.c.customer_id, Message.direction == "in",
        within(Message.created_at, reached.c.sent_at, window, dialect)))).scalar_one()
    opt_outs = session.execute(select(func.count()).select_from(reached).where(exists().where(
        Consent.customer_id == reached.c.customer_id, Consent.purpose == "marketing", Consent.granted.is_(False),
        within(Consent.recorded_at, reached.c.sent_at, window, dialect)))).scalar_one()
    earners, earned = session.execute(
        select(func.count(distinct(LoyaltyEntry.customer_id)), func.sum(LoyaltyEntry.points))
        .select_from(reached).join(LoyaltyEntry, LoyaltyEntry.customer_id == reached.c.customer_id)
        .where(LoyaltyEntry.kind == "earn",
               within(LoyaltyEntry.created_at, reached.c.sent_at, attribution_hours, dialect))).one()
    redemptions, redeemers, redeemed = session.execute(
        select(func.count(), func.count(distinct(Redemption.customer_id)), func.sum(Redemption.points))
        .where(Redemption.broadcast_id == broadcast_id, Redemption.status != "cancelled")).one()

    totals = {name: sum(getattr(c, name) for c in by_channel.values())
              for name in ("queued", "pending", "sent", "delivered", "read", "failed")}
    sent = totals["sent"]
    return BroadcastStats(
        broadcast_id=broadcast.id, name=broadcast.name, status=broadcast.status, started_at=broadcast.started_at,
        finished_at=broadcast.finished_at, recipients=sum(statuses.values()), waiting=statuses.get("pending", 0),
        skipped=statuses.get("skipped", 0), skipped_by_reason=dict(sorted(skipped.items(), key=lambda kv: -kv[1])),
        queued=statuses.get("queued", 0), by_channel=dict(sorted(by_channel.items())),
        pending=totals["pending"], sent=sent, delivered=totals["delivered"], read=totals["read"],
        failed=totals["failed"], failed_by_reason=failed_by_reason, replies=int(replies), opt_outs=int(opt_outs),
        redemptions=int(redemptions), redeemers=int(redeemers), points_redeemed=int(redeemed or 0),
        earners=int(earners), points_earned=int(earned or 0), reply_window_hours=window,
        attribution_days=settings.loyalty.attribution_days,
        rates={"delivered": percent(totals["delivered"], sent), "read": percent(totals["read"], sent),
               "reply": percent(int(replies), sent), "opt_out": percent(int(opt_outs), sent),
               "redemption": percent(int(redeemers), sent)},
    )


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{key} {n}" for key, n in counts.items())


def render_stats(stats: BroadcastStats, bullet: str = "- ") -> str:
    """Plain text for the CLI and Slack (the bullets read well in both)."""
    started = f", started {stats.started_at:%Y-%m-%d %H:%M} UTC" if stats.started_at else ""
    rates = stats.rates
    lines = [
        f"Broadcast #{stats.broadcast_id} {stats.name} ({stats.status}{started})",
        f"{bullet}Recipients: {stats.recipients}: {stats.queued} queued, {stats.skipped} skipped"
        + (f" ({_counts(stats.skipped_by_reason)})" if stats.skipped_by_reason else "")
        + (f", {stats.waiting} not queued yet" if stats.waiting else ""),
    ]
    if stats.by_channel:
        lines.append(f"{bullet}Channels: " + ", ".join(
            f"{channel} {c.queued} queued / {c.sent} sent / {c.delivered} delivered / {c.read} read / "
            f"{c.failed} failed" for channel, c in stats.by_channel.items()))
    lines += [
        f"{bullet}Sent: {stats.sent}, not sent yet: {stats.pending}",
        f"{bullet}Delivered: {stats.delivered} ({_rate(rates.get('delivered'))} of sent), "
        f"read: {stats.read} ({_rate(rates.get('read'))})",
        f"{bullet}Failed: {stats.failed}" + (f" ({_counts(stats.failed_by_reason)})" if stats.failed_by_reason else ""),
        f"{bullet}Replies within {stats.reply_window_hours} h: {stats.replies} ({_rate(rates.get('reply'))}), "
        f"opt-outs: {stats.opt_outs} ({_rate(rates.get('opt_out'))})",
        f"{bullet}Redemptions attributed: {stats.redemptions} by {stats.redeemers} customers "
        f"({_rate(rates.get('redemption'))}), {stats.points_redeemed} points",
        f"{bullet}Points earned by recipients within {stats.attribution_days} days: {stats.points_earned} "
        f"({stats.earners} customers)",
    ]
    return "\n".join(lines)


def segment_participation(session: Session, start: datetime, end: datetime) -> list[SegmentParticipation]:
    """CRM-4.4 points earned per segment: earn rows and redemptions in [start, end), by the customer's segment
    as last computed (customers never scored are listed as "(unscored)")."""
    segment = func.coalesce(CustomerScore.segment, UNSCORED)
    sizes = {s: int(n) for s, n in session.execute(
        select(CustomerScore.segment, func.count()).group_by(CustomerScore.segment))}
    earned = {str(s): (int(who), int(points or 0)) for s, who, points in session.execute(
        select(segment, func.count(distinct(LoyaltyEntry.customer_id)), func.sum(LoyaltyEntry.points))
        .select_from(LoyaltyEntry).outerjoin(CustomerScore, CustomerScore.customer_id == LoyaltyEntry.customer_id)
        .where(LoyaltyEntry.kind == "earn", LoyaltyEntry.created_at >= start, LoyaltyEntry.created_at < end)
        .group_by(segment))}
    redeemed = {str(s): (int(who), int(n), int(points or 0)) for s, who, n, points in session.execute(
        select(segment, func.count(distinct(Redemption.customer_id)), func.count(), func.sum(Redemption.points))
        .select_from(Redemption).outerjoin(CustomerScore, CustomerScore.customer_id == Redemption.customer_id)
        .where(Redemption.status != "cancelled", Redemption.created_at >= start, Redemption.created_at < end)
        .group_by(segment))}
    names = [s for s in SEGMENTS if s in sizes or s in earned or s in redeemed]
    names += sorted((set(sizes) | set(earned) | set(redeemed)) - set(names))
    return [SegmentParticipation(name, sizes.get(name, 0), *earned.get(name, (0, 0)), *redeemed.get(name, (0, 0, 0)))
            for name in names]


# --- one row per recipient (the console's drill-down and export) ---------------------------------------------

OUTCOMES = ("waiting", "skipped", "pending", "paused", "sent", "delivered", "read", "failed")


@dataclass(frozen=True)
class RecipientRow:
    """One recipient as marketing may see it: who (name), on which channel, what became of the message; never
    the address or the words of a conversation."""

    id: int
    customer_id: int
    name: str | None
    channel: str | None
    language: str | None
    outcome: str  # one of OUTCOMES, defined as broadcast_stats counts them
    reason: str | None  # why skipped or failed
    queued_at: datetime | None
    sent_at: datetime | None


def _outcome() -> Any:
    """The recipient's outcome as a SQL CASE over the recipient, its outbox row and its message."""
    failed = or_(OutboxItem.status.in_(("failed", "cancelled")), Message.delivery_status == "failed")
    return case(
        (BroadcastRecipient.status == "skipped", "skipped"),
        (BroadcastRecipient.status == "pending", "waiting"),
        (failed, "failed"),
        (OutboxItem.status == "paused", "paused"),
        (OutboxItem.status != "sent", "pending"),
        (Message.delivery_status == "read", "read"),
        (Message.delivery_status == "delivered", "delivered"),
        else_="sent")


def recipient_rows(session: Session, broadcast_id: int, *, outcome: str | None = None, channel: str | None = None,
                   after_id: int = 0, limit: int | None = 100) -> list[RecipientRow]:
    """The broadcast's recipients in id order after `after_id` (keyset paging), optionally of one outcome and
    channel. Failure reasons are the message's delivery error, else the outbox's last error."""
    kind = _outcome()
    reason = case((BroadcastRecipient.status == "skipped", BroadcastRecipient.skip_reason),
                  (kind == "failed", func.coalesce(Message.delivery_error, OutboxItem.last_error, UNKNOWN)),
                  else_=None)
    message_id = func.coalesce(BroadcastRecipient.message_id, OutboxItem.message_id)
    query = (select(BroadcastRecipient.id, BroadcastRecipient.customer_id, Customer.name, BroadcastRecipient.channel,
                    BroadcastRecipient.language, kind, reason, BroadcastRecipient.queued_at, OutboxItem.sent_at)
             .select_from(BroadcastRecipient)
             .join(Customer, Customer.id == BroadcastRecipient.customer_id)
             .outerjoin(OutboxItem, OutboxItem.id == BroadcastRecipient.outbox_id)
             .outerjoin(Message, Message.id == message_id)
             .where(BroadcastRecipient.broadcast_id == broadcast_id, BroadcastRecipient.id > after_id)
             .order_by(BroadcastRecipient.id))
    if outcome is not None:
        query = query.where(kind == outcome)
    if channel is not None:
        query = query.where(BroadcastRecipient.channel == channel)
    if limit is not None:
        query = query.limit(limit)
    return [RecipientRow(int(r[0]), int(r[1]), r[2], r[3], r[4], str(r[5]), r[6], r[7], r[8])
            for r in session.execute(query)]
