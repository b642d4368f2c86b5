"""CRM-4.3: the data side of broadcasts: who gets one (selection), moving recipients into the outbox (queueing),
and the state changes (pause, resume, cancel, done). Texts are rendered by the caller (handlers/broadcasts.py):
the store imports no other project package.

Selection is ONE `INSERT ... SELECT` of every customer the broadcast's filters match, each with a skip reason
computed in SQL (or none: pending), its channel (the first of the broadcast's channels with a reachable
identity) and language. A rerun inserts nobody twice (NOT EXISTS on the broadcast's own rows, and
UNIQUE(broadcast_id, customer_id) behind it). Queueing moves one batch of due pending recipients in the caller's
transaction: a killed process leaves the batch done or not done, never half.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    case,
    false,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased

from store import segments
from store.models import (
    Broadcast,
    BroadcastRecipient,
    ChannelIdentity,
    Conversation,
    Customer,
    LoyaltyAccount,
    Message,
    OutboxItem,
)

if TYPE_CHECKING:  # the store imports no other project package at run time
    from bot.config import Settings

TWILIO = ("whatsapp", "sms")
# Reasons a matching customer gets no message, in the order they are decided.
OPTED_OUT, NO_CONSENT, CAPPED, NO_CHANNEL, CANCELLED = "opted_out", "no_consent", "frequency_cap", "no_channel", \
    "cancelled"
SKIP_REASONS = (OPTED_OUT, NO_CONSENT, CAPPED, NO_CHANNEL, CANCELLED)
IN_FLIGHT = ("pending", "paused", "sending")  # outbox rows of a broadcast that are not finished


class BroadcastError(ValueError):
    """A request that cannot be done; `kind` says why: invalid (422), not_found (404), state (409)."""

    def __init__(self, message: str, kind: str = "invalid") -> None:
        super().__init__(message)
        self.kind = kind


def get(session: Session, broadcast_id: int, *, lock: bool = False) -> Broadcast:
    """The broadcast; `lock` takes its row lock (PostgreSQL) so a state change and a feed batch go one at a time:
    a pause never misses the outbox rows of a batch committing at that moment."""
    broadcast = session.get(Broadcast, broadcast_id, with_for_update=lock or None)
    if broadcast is None:
        raise BroadcastError(f"no broadcast #{broadcast_id}", "not_found")
    return broadcast


def require(broadcast: Broadcast, *states: str, doing: str) -> None:
    if broadcast.status not in states:
        raise BroadcastError(f"broadcast #{broadcast.id} is {broadcast.status}: cannot {doing} "
                             f"(only when {' or '.join(states)})", "state")


# --- who: the classification select -------------------------------------------------------------------------


def _best_identity(channel: str) -> Any:
    """The customer's newest reachable identity on `channel` (id), or NULL."""
    return (select(ChannelIdentity.id)
            .where(ChannelIdentity.customer_id == Customer.id, ChannelIdentity.channel == channel,
                   ChannelIdentity.undeliverable_reason.is_(None), not_(ChannelIdentity.address.like("erased-%")))
            .order_by(ChannelIdentity.id.desc()).limit(1).correlate(Customer).scalar_subquery())


def capped(settings: Settings, broadcast_id: int, now: datetime) -> ColumnElement[bool]:
    """The customer already has `max_per_customer` broadcast messages queued within `cap_days` (other broadcasts)."""
    rules = settings.broadcasts
    recent = (select(func.count()).select_from(BroadcastRecipient)
              .where(BroadcastRecipient.customer_id == Customer.id, BroadcastRecipient.status == "queued",
                     BroadcastRecipient.queued_at >= now - timedelta(days=rules.cap_days),
                     BroadcastRecipient.broadcast_id != broadcast_id)
              .correlate(Customer).scalar_subquery())
    return recent >= rules.max_per_customer


def phone_channel(channels: Iterable[str]) -> str | None:
    """The first Twilio channel of the broadcast: a customer known only by phone is written to there."""
    return next((c for c in channels if c in TWILIO), None)


def classified(session: Session, settings: Settings, broadcast: Broadcast, now: datetime) -> Any:
    """A subquery: one row per matching customer with skip_reason (NULL: will be sent), channel, address,
    identity_id and language. Shared by preview and selection, so what preview says is what selection does."""
    vocab = segments.vocabulary(settings)
    filters = segments.validate(broadcast.filters, vocab)
    channels = [str(c) for c in broadcast.channels]
    choices = [_best_identity(c) for c in channels]
    best = func.coalesce(*choices) if len(choices) > 1 else choices[0]
    twilio = phone_channel(channels)
    has_phone: ColumnElement[bool] = false()
    if twilio is not None:
        taken = select(ChannelIdentity.id).where(ChannelIdentity.channel == twilio,
                                                 ChannelIdentity.address == Customer.phone).correlate(Customer)
        has_phone = and_(Customer.phone.is_not(None), not_(taken.exists()))
    inner = (select(Customer.id.label("customer_id"), best.label("identity_id"),
                    Customer.language.label("profile_language"),
                    case((segments.opted_out(), OPTED_OUT),
                         (not_(segments.marketing_ok()), NO_CONSENT),
                         (capped(settings, broadcast.id, now), CAPPED),
                         (and_(best.is_(None), not_(has_phone)), NO_CHANNEL),
                         else_=None).label("skip_reason"))
             .where(*segments.conditions(filters, vocab, now)).subquery("matched"))
    identity = aliased(ChannelIdentity)
    languages = [lang for lang in broadcast.messages if broadcast.messages.get(lang)]
    wanted = func.coalesce(inner.c.profile_language, identity.language_hint, settings.default_language)
    language = case((wanted.in_(languages), wanted), else_=settings.default_language)
    customer = aliased(Customer)
    channel = func.coalesce(identity.channel, literal(twilio) if twilio else None) if twilio else identity.channel
    address = func.coalesce(identity.address, customer.phone) if twilio else identity.address
    return (select(inner.c.customer_id, inner.c.skip_reason, inner.c.identity_id,
                   case((inner.c.skip_reason.is_(None), channel), else_=identity.channel).label("channel"),
                   case((inner.c.skip_reason.is_(None), address), else_=identity.address).label("address"),
                   language.label("language"))
            .select_from(inner)
            .join(customer, customer.id == inner.c.customer_id)
            .outerjoin(identity, identity.id == inner.c.identity_id)
            .subquery("classified"))


@dataclass
class Counts:
    """What selection would do (preview) or did (status): recipients by channel and skips by reason."""

    total: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def recipients(self) -> int:
        return sum(self.by_channel.values())

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, "recipients": self.recipients, "by_channel": self.by_channel,
                "skipped": self.skipped}


def would_select(session: Session, settings: Settings, broadcast: Broadcast, now: datetime) -> Counts:
    rows = classified(session, settings, broadcast, now)
    counts = Counts()
    for reason, channel, n in session.execute(
            select(rows.c.skip_reason, rows.c.channel, func.count()).group_by(rows.c.skip_reason, rows.c.channel)):
        counts.total += int(n)
        if reason is None:
            counts.by_channel[str(channel)] = counts.by_channel.get(str(channel), 0) + int(n)
        else:
            counts.skipped[str(reason)] = counts.skipped.get(str(reason), 0) + int(n)
    order = [str(c) for c in broadcast.channels]
    counts.by_channel = {c: counts.by_channel.get(c, 0) for c in order}
    return counts


def select_recipients(session: Session, settings: Settings, broadcast: Broadcast, now: datetime) -> int:
    """Insert the broadcast's recipients (pending or skipped with a reason), creating phone identities where the
    customer has none on the chosen channels; set quiet-hours `not_before`. Returns rows inserted. Rerunnable."""
    channels = [str(c) for c in broadcast.channels]
    twilio = phone_channel(channels)
    if twilio is not None:
        _create_phone_identities(session, settings, broadcast, twilio, now)
    rows = classified(session, settings, broadcast, now)
    mine = select(BroadcastRecipient.id).where(BroadcastRecipient.broadcast_id == broadcast.id,
                                               BroadcastRecipient.customer_id == rows.c.customer_id)
    source = select(
        literal(broadcast.id), rows.c.customer_id, rows.c.channel, rows.c.address, rows.c.language,
        case((rows.c.skip_reason.is_(None), "pending"), else_="skipped"), rows.c.skip_reason, literal(now),
        literal(now),
    ).where(not_(mine.exists()))
    result = session.execute(insert(BroadcastRecipient).from_select(
        ["broadcast_id", "customer_id", "channel", "address", "language", "status", "skip_reason", "not_before",
         "created_at"], source))
    inserted = int(getattr(result, "rowcount", 0) or 0)
    apply_quiet_hours(session, settings, broadcast.id, now)
    return inserted


def _create_phone_identities(session: Session, settings: Settings, broadcast: Broadcast, channel: str,
                             now: datetime) -> None:
    """A customer we may write to, with a phone but no reachable identity on the broadcast's channels, gets an
    identity for that phone on the first Twilio channel of the broadcast (one INSERT ... SELECT)."""
    vocab = segments.vocabulary(settings)
    filters = segments.validate(broadcast.filters, vocab)
    taken = select(ChannelIdentity.id).where(ChannelIdentity.channel == channel,
                                             ChannelIdentity.address == Customer.phone).correlate(Customer)
    source = (select(Customer.id, literal(channel), Customer.phone, Customer.language, literal(now))
              .where(*segments.conditions(filters, vocab, now), segments.marketing_ok(), Customer.phone.is_not(None),
                     not_(segments.reachable([str(c) for c in broadcast.channels])), not_(taken.exists())))
    session.execute(insert(ChannelIdentity).from_select(
        ["customer_id", "channel", "address", "language_hint", "created_at"], source))


# --- when: quiet hours ---------------------------------------------------------------------------------------


def quiet_until(settings: Settings, zone: str, now: datetime) -> datetime | None:
    """The next moment outside quiet hours in `zone`, or None if `now` is not in quiet hours.

    quiet_start > quiet_end is an overnight range (21:00-08:00); equal times mean no quiet hours."""
    start, end = time.fromisoformat(settings.broadcasts.quiet_start), time.fromisoformat(settings.broadcasts.quiet_end)
    if start == end:
        return None
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    clock = local.time().replace(tzinfo=None)
    today = local.date()

    def at(day: date) -> datetime:
        return datetime.combine(day, end, tz)

    if start > end:  # overnight
        if clock >= start:
            return at(today + timedelta(days=1))
        if clock < end:
            return at(today)
        return None
    return at(today) if start <= clock < end else None


def apply_quiet_hours(session: Session, settings: Settings, broadcast_id: int, now: datetime) -> None:
    """Pending recipients whose local time is in quiet hours wait until it ends: one UPDATE per time zone."""
    zone = func.coalesce(Customer.timezone, settings.company.timezone)
    pending = and_(BroadcastRecipient.broadcast_id == broadcast_id, BroadcastRecipient.status == "pending")
    zones = session.execute(select(zone).distinct().join(
        BroadcastRecipient, BroadcastRecipient.customer_id == Customer.id).where(pending)).scalars()
    for name in list(zones):
        try:
            until = quiet_until(settings, str(name), now)
        except (ValueError, KeyError):  # an unknown zone slipped in: the company's rules apply
            until = quiet_until(settings, settings.company.timezone, now)
        if until is None:
            continue
        session.execute(update(BroadcastRecipient).where(
            pending, BroadcastRecipient.customer_id.in_(select(Customer.id).where(zone == name)))
            .values(not_before=until).execution_options(synchronize_session=False))


# --- queueing ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    """A due pending recipient with what its message needs."""

    recipient_id: int
    customer_id: int
    channel: str
    address: str
    language: str
    identity_id: int | None
    name: str | None
    points: int
    tier: str | None
    skip_reason: str | None  # re-checked now: opted out meanwhile, or capped by another broadcast


@dataclass(frozen=True)
class Rendered:
    text: str
    template_variables: dict[str, str]


@dataclass
class Batch:
    queued: int = 0
    skipped: dict[str, int] = field(default_factory=dict)


def due_recipients(session: Session, settings: Settings, broadcast_id: int, now: datetime, limit: int) -> list[Due]:
    """Up to `limit` pending recipients due now, oldest first, locked (PostgreSQL: SKIP LOCKED, so two feeders
    never take the same rows), with consent and the cap re-checked."""
    query = (select(BroadcastRecipient.id, BroadcastRecipient.customer_id, BroadcastRecipient.channel,
                    BroadcastRecipient.address, BroadcastRecipient.language, ChannelIdentity.id, Customer.name,
                    LoyaltyAccount.balance, LoyaltyAccount.tier,
                    case((segments.opted_out(), OPTED_OUT), (not_(segments.marketing_ok()), NO_CONSENT),
                         (capped(settings, broadcast_id, now), CAPPED), else_=None))
             .join(Customer, Customer.id == BroadcastRecipient.customer_id)
             .outerjoin(LoyaltyAccount, LoyaltyAccount.customer_id == Customer.id)
             .outerjoin(ChannelIdentity, and_(ChannelIdentity.channel == BroadcastRecipient.channel,
                                              ChannelIdentity.address == BroadcastRecipient.address))
             .where(BroadcastRecipient.broadcast_id == broadcast_id, BroadcastRecipient.status == "pending",
                    or_(BroadcastRecipient.not_before.is_(None), BroadcastRecipient.not_before <= now))
             .order_by(BroadcastRecipient.id).limit(limit)
             .with_for_update(of=BroadcastRecipient, skip_locked=True))
    return [Due(int(r[0]), int(r[1]), str(r[2]), str(r[3]), str(r[4] or settings.default_language),
                None if r[5] is None else int(r[5]), r[6], int(r[7] or 0), r[8],
                r[9] or (NO_CHANNEL if r[5] is None else None))
            for r in session.execute(query)]


def queue_batch(session: Session, broadcast_id: int, due: list[Due], render: Callable[[Due], Rendered],
                now: datetime) -> Batch:
    """Move `due` into the outbox in the caller's transaction: per recipient a closed Conversation (the broadcast
    is history, not a bot conversation), a Message and an OutboxItem (bulk INSERT ... RETURNING), and the
    recipient marked queued; recipients whose re-check failed are skipped with the reason."""
    batch = Batch()
    go = [d for d in due if d.skip_reason is None and d.identity_id is not None]
    skips = [d for d in due if d.skip_reason is not None or d.identity_id is None]
    if skips:
        session.execute(update(BroadcastRecipient), [
            {"id": d.recipient_id, "status": "skipped", "skip_reason": d.skip_reason or NO_CHANNEL} for d in skips])
        for d in skips:
            reason = d.skip_reason or NO_CHANNEL
            batch.skipped[reason] = batch.skipped.get(reason, 0) + 1
    if not go:
        return batch
    texts = [render(d) for d in go]
    conversation_ids = insert_returning_ids(session, Conversation, [
        {"customer_id": d.customer_id, "identity_id": d.identity_id, "channel": d.channel, "status": "closed",
         "priority": 0, "language": d.language, "pending_data": {}, "misunderstood": 0, "opened_at": now,
         "last_message_at": now, "closed_at": now} for d in go])
    message_ids = insert_returning_ids(session, Message, [
        {"conversation_id": cid, "customer_id": d.customer_id, "channel": d.channel, "direction": "out",
         "sender": "system", "text": r.text, "buttons": [], "media": [], "language": d.language,
         "delivery_status": "queued", "meta": {"broadcast_id": broadcast_id}, "created_at": now}
        for d, r, cid in zip(go, texts, conversation_ids, strict=True)])
    outbox_ids = insert_returning_ids(session, OutboxItem, [
        {"message_id": mid, "conversation_id": cid, "channel": d.channel, "recipient": d.address,
         "payload": outbox_payload(broadcast_id, r, d.language), "status": "pending", "attempts": 0,
         "next_attempt_at": now, "created_at": now}
        for d, r, cid, mid in zip(go, texts, conversation_ids, message_ids, strict=True)])
    table: Any = BroadcastRecipient.__table__
    session.execute(  # Core executemany by key: the ORM's bulk update costs more than the inserts
        update(table).where(table.c.id == bindparam("rid"))
        .values(status="queued", outbox_id=bindparam("oid"), message_id=bindparam("mid"), queued_at=now),
        [{"rid": d.recipient_id, "oid": oid, "mid": mid} for d, mid, oid in zip(go, message_ids, outbox_ids,
                                                                               strict=True)])
    batch.queued = len(go)
    return batch


def insert_returning_ids(session: Session, model: Any, rows: list[dict[str, Any]]) -> list[int]:
    """Bulk insert; the new ids in the order of `rows`.

    PostgreSQL: INSERT ... RETURNING with sort_by_parameter_order (batched by SQLAlchemy). SQLite cannot order a
    batched RETURNING without a sentinel column, so SQLAlchemy would fall back to one statement per row (three
    times slower for a batch); there the writer holds the database lock (BEGIN IMMEDIATE) for the whole
    transaction, so the ids after MAX(id) are ours to give, and a plain executemany inserts them."""
    table = model.__table__
    if not rows:
        return []
    if session.get_bind().dialect.name == "sqlite":
        first = int(session.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()) + 1
        ids = list(range(first, first + len(rows)))
        session.execute(insert(table), [{**row, "id": new_id} for row, new_id in zip(rows, ids, strict=True)])
        return ids
    return [int(i) for i in session.execute(
        insert(table).returning(table.c.id, sort_by_parameter_order=True), rows).scalars()]


def outbox_payload(broadcast_id: int, rendered: Rendered, language: str, *, test: bool = False) -> dict[str, Any]:
    """The outbox contract (bot/outbox.py): purpose "broadcast" is rate-limited per channel by
    broadcasts.rate_per_second and goes as the approved `broadcast` WhatsApp template outside the 24-hour window;
    at_most_once rows are never blindly resent after a crash."""
    payload: dict[str, Any] = {"text": rendered.text, "buttons": [], "purpose": "broadcast", "language": language,
                               "template_variables": rendered.template_variables, "broadcast_id": broadcast_id,
                               "at_most_once": True}
    if test:
        payload["test"] = True
    return payload


# --- state --------------------------------------------------------------------------------------------------


def _outbox_of(broadcast_id: int) -> Any:
    return select(BroadcastRecipient.outbox_id).where(BroadcastRecipient.broadcast_id == broadcast_id,
                                                      BroadcastRecipient.outbox_id.is_not(None))


def set_outbox_status(session: Session, broadcast_id: int, old: str, new: str) -> int:
    result = session.execute(update(OutboxItem).where(OutboxItem.id.in_(_outbox_of(broadcast_id)),
                                                      OutboxItem.status == old)
                             .values(status=new).execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def cancel_rows(session: Session, broadcast_id: int, now: datetime) -> tuple[int, int]:
    """Withdraw what was not sent yet: unsent outbox rows -> cancelled (their messages failed), pending
    recipients -> skipped 'cancelled'. Rows already `sending` are with the provider and finish normally."""
    unsent = select(OutboxItem.message_id).where(OutboxItem.id.in_(_outbox_of(broadcast_id)),
                                                 OutboxItem.status.in_(("pending", "paused")))
    session.execute(update(Message).where(Message.id.in_(unsent))
                    .values(delivery_status="failed", delivery_error="broadcast cancelled")
                    .execution_options(synchronize_session=False))
    withdrawn = session.execute(update(OutboxItem).where(OutboxItem.id.in_(_outbox_of(broadcast_id)),
                                                         OutboxItem.status.in_(("pending", "paused")))
                                .values(status="cancelled", last_error="broadcast cancelled")
                                .execution_options(synchronize_session=False))
    pending = session.execute(update(BroadcastRecipient).where(BroadcastRecipient.broadcast_id == broadcast_id,
                                                               BroadcastRecipient.status == "pending")
                              .values(status="skipped", skip_reason=CANCELLED)
                              .execution_options(synchronize_session=False))
    return int(getattr(withdrawn, "rowcount", 0) or 0), int(getattr(pending, "rowcount", 0) or 0)


@dataclass
class Progress:
    recipients: dict[str, int]  # pending, queued, skipped
    skipped: dict[str, int]  # by reason
    by_channel: dict[str, int]  # queued, by channel
    outbox: dict[str, int]  # the broadcast's outbox rows by status
    next_due: datetime | None  # the earliest not_before of a pending recipient

    @property
    def pending(self) -> int:
        return self.recipients.get("pending", 0)

    @property
    def in_flight(self) -> int:
        return sum(self.outbox.get(s, 0) for s in IN_FLIGHT)

    def as_dict(self) -> dict[str, Any]:
        return {"recipients": self.recipients, "skipped": self.skipped, "queued_by_channel": self.by_channel,
                "outbox": self.outbox, "next_due": self.next_due.isoformat() if self.next_due else None}


def pending(session: Session, broadcast_id: int) -> tuple[int, datetime | None]:
    """How many recipients are still pending, and the earliest time one of them may go."""
    count, first = session.execute(
        select(func.count(), func.min(BroadcastRecipient.not_before))
        .where(BroadcastRecipient.broadcast_id == broadcast_id, BroadcastRecipient.status == "pending")).one()
    return int(count), first


def progress(session: Session, broadcast_id: int) -> Progress:
    mine = BroadcastRecipient.broadcast_id == broadcast_id
    recipients: dict[str, int] = {}
    skipped: dict[str, int] = {}
    by_channel: dict[str, int] = {}
    for status, reason, channel, n in session.execute(
            select(BroadcastRecipient.status, BroadcastRecipient.skip_reason, BroadcastRecipient.channel, func.count())
            .where(mine).group_by(BroadcastRecipient.status, BroadcastRecipient.skip_reason,
                                  BroadcastRecipient.channel)):
        recipients[status] = recipients.get(status, 0) + int(n)
        if status == "skipped":
            skipped[str(reason)] = skipped.get(str(reason), 0) + int(n)
        if status == "queued":
            by_channel[str(channel)] = by_channel.get(str(channel), 0) + int(n)
    outbox = {str(s): int(n) for s, n in session.execute(
        select(OutboxItem.status, func.count()).where(OutboxItem.id.in_(_outbox_of(broadcast_id)))
        .group_by(OutboxItem.status))}
    next_due = session.execute(select(func.min(BroadcastRecipient.not_before))
                               .where(mine, BroadcastRecipient.status == "pending")).scalar_one_or_none()
    return Progress(recipients, skipped, by_channel, outbox, next_due)

