"""CRM-4.3: the data side of broadcasts: who gets one (selection), moving recipients into the outbox (queueing),
and the state changes (pause, resume, cancel, done). Texts are rendered by the caller (handlers/broadcasts.py):
the store imports no other project package.

Selection is one `INSERT ... SELECT` per chunk of customers (`select_chunk`, SELECT_CHUNK by id) of every
customer the broadcast's filters match, each with a skip reason computed in SQL (or none: pending), its channel
(the first of the broadcast's channels with a reachable identity) and language. A rerun inserts nobody twice
(NOT IN the broadcast's own rows, and UNIQUE(broadcast_id, customer_id) behind it). Queueing moves one batch of
due pending recipients in the caller's transaction, set-based (`queue_batch`): a killed process leaves the batch
done or not done, never half. Each step is one short transaction, so SQLite's single writer lock is free again
within a fraction of a second and inbound messages are still answered during a campaign (issue 18; measured
in bench/broadcast_queue.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ColumnElement,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session, aliased
from sqlalchemy.schema import CreateTable

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


CustomerRange = tuple[int, int | None]  # customers.id > first and <= last (None: no upper bound)


def in_range(customers: CustomerRange | None, column: Any = None) -> list[ColumnElement[bool]]:
    """`column` (default customers.id) within the range, as WHERE terms."""
    if customers is None:
        return []
    column = Customer.id if column is None else column
    after, last = customers
    return [column > after] + ([] if last is None else [column <= last])


def recent_count(broadcast_id: Any, since: Any) -> Any:
    """How many broadcast messages of other broadcasts than `broadcast_id` the customer had queued since `since`
    (values or bind parameters)."""
    return (select(func.count()).select_from(BroadcastRecipient)
            .where(BroadcastRecipient.customer_id == Customer.id, BroadcastRecipient.status == "queued",
                   BroadcastRecipient.queued_at >= since, BroadcastRecipient.broadcast_id != broadcast_id)
            .correlate(Customer).scalar_subquery())


def capped_customers(settings: Settings, broadcast_id: int, now: datetime,
                     customers: CustomerRange | None) -> Any:
    """The customers (of `customers`) who already have `max_per_customer` broadcast messages queued within
    `cap_days` (other broadcasts), as one set read once per statement. A correlated count per customer re-read
    broadcast_recipients while the selection was inserting into it, and PostgreSQL, planning for the table as it
    was (empty on a new installation), scanned it whole each time. (The feed's re-check, a plain read, keeps
    the per-recipient `recent_count`.)"""
    rules = settings.broadcasts
    recent = BroadcastRecipient.customer_id
    return (select(recent).where(BroadcastRecipient.status == "queued",
                                 BroadcastRecipient.queued_at >= now - timedelta(days=rules.cap_days),
                                 BroadcastRecipient.broadcast_id != broadcast_id, *in_range(customers, recent))
            .group_by(recent).having(func.count() >= rules.max_per_customer))


def phone_channel(channels: Iterable[str]) -> str | None:
    """The first Twilio channel of the broadcast: a customer known only by phone is written to there."""
    return next((c for c in channels if c in TWILIO), None)


# Made once, not per chunk: adapting a new alias's columns was about half of building the statement (issue 18).
_CHOSEN_IDENTITY, _CUSTOMER = aliased(ChannelIdentity), aliased(Customer)


def classified(session: Session, settings: Settings, broadcast: Broadcast, now: datetime,
               customers: CustomerRange | None = None) -> Any:
    """A subquery: one row per matching customer (of `customers`, else all) with skip_reason (NULL: will be sent),
    channel, address, identity_id and language. Shared by preview and selection, so what preview says is what
    selection does.

    The facts per customer (latest consents, recent broadcasts, best identity, phone) are read once in a
    MATERIALIZED CTE and the reasons decided over its columns. **Learned** (issue 18): written as one flat
    subquery, SQLite flattened it and evaluated the whole CASE, with its nine correlated subqueries, once per
    reference to skip_reason (five times per customer): 3.9 s for 100,000 customers."""
    vocab = segments.vocabulary(settings)
    filters = segments.validate(broadcast.filters, vocab)
    channels = [str(c) for c in broadcast.channels]
    choices = [_best_identity(c) for c in channels]
    best = func.coalesce(*choices) if len(choices) > 1 else choices[0]
    twilio = phone_channel(channels)
    facts = [Customer.id.label("customer_id"), best.label("identity_id"), Customer.language.label("profile_language"),
             segments.latest_consent("marketing").label("marketing"),
             segments.latest_consent("data_processing").label("processing"),
             case((Customer.id.in_(capped_customers(settings, broadcast.id, now, customers)), 1), else_=0)
             .label("capped")]
    if twilio is not None:
        taken = select(ChannelIdentity.id).where(ChannelIdentity.channel == twilio,
                                                 ChannelIdentity.address == Customer.phone).correlate(Customer)
        facts.append(case((and_(Customer.phone.is_not(None), not_(taken.exists())), 1), else_=0).label("has_phone"))
    inner = (select(*facts).where(*segments.conditions(filters, vocab, now), *in_range(customers))
             .cte("matched").prefix_with("MATERIALIZED"))
    no_phone = inner.c.has_phone == 0 if twilio is not None else true()
    skip_reason = case((segments.opted_out(inner.c.marketing, inner.c.processing), OPTED_OUT),
                       (not_(segments.marketing_ok(inner.c.marketing, inner.c.processing)), NO_CONSENT),
                       (inner.c.capped == 1, CAPPED),
                       (and_(inner.c.identity_id.is_(None), no_phone), NO_CHANNEL),
                       else_=None)
    identity = _CHOSEN_IDENTITY
    languages = [lang for lang in broadcast.messages if broadcast.messages.get(lang)]
    wanted = func.coalesce(inner.c.profile_language, identity.language_hint, settings.default_language)
    language = case((wanted.in_(languages), wanted), else_=settings.default_language)
    customer = _CUSTOMER
    channel = func.coalesce(identity.channel, literal(twilio) if twilio else None) if twilio else identity.channel
    address = func.coalesce(identity.address, customer.phone) if twilio else identity.address
    # skip_reason is repeated below, but over the CTE's columns: no subquery runs twice.
    return (select(inner.c.customer_id, skip_reason.label("skip_reason"), inner.c.identity_id,
                   case((skip_reason.is_(None), channel), else_=identity.channel).label("channel"),
                   case((skip_reason.is_(None), address), else_=identity.address).label("address"),
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


SELECT_CHUNK = 5_000  # customers classified per selection transaction (see select_chunk)


def select_recipients(session: Session, settings: Settings, broadcast: Broadcast, now: datetime,
                      customers: CustomerRange | None = None) -> int:
    """Insert the broadcast's recipients (pending or skipped with a reason) among `customers` (default: all),
    creating phone identities where the customer has none on the chosen channels; set quiet-hours `not_before`.
    Returns rows inserted. Rerunnable."""
    channels = [str(c) for c in broadcast.channels]
    twilio = phone_channel(channels)
    if twilio is not None:
        _create_phone_identities(session, settings, broadcast, twilio, now, customers)
    rows = classified(session, settings, broadcast, now, customers)
    # NOT IN a set read once, not NOT EXISTS per row: that re-read the table this statement inserts into (see
    # capped_customers).
    chosen = BroadcastRecipient.customer_id
    mine = select(chosen).where(BroadcastRecipient.broadcast_id == broadcast.id, *in_range(customers, chosen))
    source = select(
        literal(broadcast.id), rows.c.customer_id, rows.c.channel, rows.c.address, rows.c.language,
        case((rows.c.skip_reason.is_(None), "pending"), else_="skipped"), rows.c.skip_reason, literal(now),
        literal(now),
    ).where(rows.c.customer_id.not_in(mine))
    result = session.execute(insert(BroadcastRecipient).from_select(
        ["broadcast_id", "customer_id", "channel", "address", "language", "status", "skip_reason", "not_before",
         "created_at"], source))
    inserted = int(getattr(result, "rowcount", 0) or 0)
    apply_quiet_hours(session, settings, broadcast.id, now, customers)
    return inserted


def select_chunk(session: Session, settings: Settings, broadcast: Broadcast, now: datetime, after: int,
                 size: int | None = None) -> int | None:
    """Select the recipients among the next `size` customers by id after `after`, in the caller's transaction;
    returns the last customer id covered, or None when this chunk reached the end.

    Why chunks: SQLite has one writer, and inbound messages must still be answered during a campaign. A chunk of
    5,000 customers costs about 60 ms of CPU (bench/broadcast_queue.py), so the write lock is held a fraction of
    a second; all 100,000 customers in one statement held it for 4 s on SQLite, and on PostgreSQL that statement
    ran for 28 minutes (it re-read the table it was inserting into, see capped_customers)."""
    last = session.execute(select(Customer.id).where(Customer.id > after).order_by(Customer.id)
                           .offset((size or SELECT_CHUNK) - 1).limit(1)).scalar_one_or_none()
    select_recipients(session, settings, broadcast, now, (after, last))
    return None if last is None else int(last)


def _create_phone_identities(session: Session, settings: Settings, broadcast: Broadcast, channel: str,
                             now: datetime, customers: CustomerRange | None = None) -> None:
    """A customer we may write to, with a phone but no reachable identity on the broadcast's channels, gets an
    identity for that phone on the first Twilio channel of the broadcast (one INSERT ... SELECT)."""
    vocab = segments.vocabulary(settings)
    filters = segments.validate(broadcast.filters, vocab)
    taken = select(ChannelIdentity.id).where(ChannelIdentity.channel == channel,
                                             ChannelIdentity.address == Customer.phone).correlate(Customer)
    # The cheap tests first: SQLite evaluates the terms in this order, and most customers have an identity.
    source = (select(Customer.id, literal(channel), Customer.phone, Customer.language, literal(now))
              .where(*in_range(customers), Customer.phone.is_not(None),
                     not_(segments.reachable([str(c) for c in broadcast.channels])), not_(taken.exists()),
                     *segments.conditions(filters, vocab, now), segments.marketing_ok()))
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


def apply_quiet_hours(session: Session, settings: Settings, broadcast_id: int, now: datetime,
                      customers: CustomerRange | None = None) -> None:
    """Pending recipients (of `customers`, default all) whose local time is in quiet hours wait until it ends:
    one UPDATE per time zone."""
    rules = settings.broadcasts
    if time.fromisoformat(rules.quiet_start) == time.fromisoformat(rules.quiet_end):
        return  # no quiet hours (see quiet_until): the chunk's time zones need not even be read
    zone = func.coalesce(Customer.timezone, settings.company.timezone)
    pending = and_(BroadcastRecipient.broadcast_id == broadcast_id, BroadcastRecipient.status == "pending")
    zones = session.execute(select(zone).distinct().join(
        BroadcastRecipient, BroadcastRecipient.customer_id == Customer.id).where(pending, *in_range(customers))
    ).scalars()
    for name in list(zones):
        try:
            until = quiet_until(settings, str(name), now)
        except (ValueError, KeyError):  # an unknown zone slipped in: the company's rules apply
            until = quiet_until(settings, settings.company.timezone, now)
        if until is None:
            continue
        session.execute(update(BroadcastRecipient).where(
            pending, BroadcastRecipient.customer_id.in_(select(Customer.id).where(zone == name,
                                                                                   *in_range(customers))))
            .values(not_before=until).execution_options(synchronize_session=False))


# --- queueing ----------------------------------------------------------------------------------------------


class Due(NamedTuple):
    """A due pending recipient with what its message needs (a tuple: a batch makes a thousand of them)."""

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


class Rendered(NamedTuple):
    """A recipient's message text and the variables of the WhatsApp `broadcast` template (one per message)."""

    text: str
    template_variables: dict[str, str]


@dataclass
class Batch:
    queued: int = 0
    skipped: dict[str, int] = field(default_factory=dict)


def due_recipients(session: Session, settings: Settings, broadcast_id: int, now: datetime, limit: int) -> list[Due]:
    """Up to `limit` pending recipients due now, oldest first, locked (PostgreSQL: SKIP LOCKED, so two feeders
    never take the same rows), with consent and the cap re-checked."""
    rules = settings.broadcasts
    values = {"broadcast_id": broadcast_id, "now": now, "limit": limit,
              "cap_since": now - timedelta(days=rules.cap_days), "cap": rules.max_per_customer,
              "default_language": settings.default_language}
    # Rows as they come, each made a Due in one call (Core, not the ORM's per-row loading): a feed step makes a
    # thousand of them. Iterated, not `.all()`: a list of a thousand Rows outlived the young garbage collections
    # and was promoted, until the feed owed a full collection (0.1-0.3 s in the 100,000-customer run, issue 18).
    return [Due._make(row) for row in session.connection().execute(_due_query(), values)]


@lru_cache(maxsize=1)
def _due_query() -> Select[Any]:
    """`due_recipients`' statement, built once with bind parameters (building it anew took a few milliseconds
    per feed step, issue 18).

    First the batch (ids in order, locked), then what its messages need: PostgreSQL, asked for both at once,
    joined every pending recipient of the broadcast before sorting and keeping `limit` of them. The latest
    consents and the recent count are read once per recipient in a MATERIALIZED CTE and the reasons decided over
    its columns (as in `classified`: inline, each was evaluated once per use)."""
    broadcast_id: Any = bindparam("broadcast_id", type_=BigInteger)
    now: Any = bindparam("now")  # typed by the column it is compared with
    batch = (select(BroadcastRecipient.id, BroadcastRecipient.customer_id, BroadcastRecipient.channel,
                    BroadcastRecipient.address, BroadcastRecipient.language)
             .where(BroadcastRecipient.broadcast_id == broadcast_id, BroadcastRecipient.status == "pending",
                    or_(BroadcastRecipient.not_before.is_(None), BroadcastRecipient.not_before <= now))
             .order_by(BroadcastRecipient.id).limit(bindparam("limit", type_=Integer))
             .with_for_update(of=BroadcastRecipient, skip_locked=True)
             .cte("batch").prefix_with("MATERIALIZED"))
    facts = (select(batch.c.id, batch.c.customer_id, batch.c.channel, batch.c.address, batch.c.language,
                    ChannelIdentity.id.label("identity_id"), Customer.name, LoyaltyAccount.balance,
                    LoyaltyAccount.tier, segments.latest_consent("marketing").label("marketing"),
                    segments.latest_consent("data_processing").label("processing"),
                    recent_count(broadcast_id, bindparam("cap_since")).label("recent"))
             .select_from(batch)
             .join(Customer, Customer.id == batch.c.customer_id)
             .outerjoin(LoyaltyAccount, LoyaltyAccount.customer_id == Customer.id)
             .outerjoin(ChannelIdentity, and_(ChannelIdentity.channel == batch.c.channel,
                                              ChannelIdentity.address == batch.c.address))
             .cte("due").prefix_with("MATERIALIZED"))
    f = facts.c
    reason = case((segments.opted_out(f.marketing, f.processing), OPTED_OUT),
                  (not_(segments.marketing_ok(f.marketing, f.processing)), NO_CONSENT),
                  (f.recent >= bindparam("cap", type_=Integer), CAPPED),
                  (f.identity_id.is_(None), NO_CHANNEL), else_=None)
    return select(f.id, f.customer_id, f.channel, f.address,
                  func.coalesce(f.language, bindparam("default_language", type_=String)), f.identity_id, f.name,
                  func.coalesce(f.balance, 0), f.tier, reason).order_by(f.id)


# One batch's rows, staged per connection: the messages' texts and payloads are rendered in Python (Jinja), the
# rest of each row comes from the recipient; from here three INSERT ... SELECT statements write the
# conversations, messages and outbox rows, and one UPDATE by key marks the recipients queued. Not in the models'
# metadata: it is no table of the schema (no migration), only a scratch area of one transaction.
STAGED = Table(
    "broadcast_queue_staging", MetaData(),
    Column("recipient_id", BigInteger, primary_key=True),
    Column("customer_id", BigInteger), Column("identity_id", BigInteger), Column("conversation_id", BigInteger),
    Column("message_id", BigInteger), Column("outbox_id", BigInteger), Column("channel", String(32)),
    Column("address", String(200)), Column("language", String(8)), Column("text", Text), Column("payload", JSON),
    prefixes=["TEMPORARY"], postgresql_on_commit="DELETE ROWS",
)


def queue_batch(session: Session, broadcast_id: int, due: list[Due], render: Callable[[Due], Rendered],
                now: datetime) -> Batch:
    """Move `due` into the outbox in the caller's transaction: per recipient a closed Conversation (the broadcast
    is history, not a bot conversation), a Message and an OutboxItem, and the recipient marked queued; recipients
    whose re-check failed are skipped with the reason. Set-based: the rendered rows are staged, then each table
    is written by one INSERT ... SELECT (issue 18: bench/README.md has the before and after)."""
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
    conversation_ids, message_ids, outbox_ids = reserve_ids(
        session, (Conversation.__table__, Message.__table__, OutboxItem.__table__), len(go))
    staged = _staging(session)
    connection = session.connection()
    as_json = _payload_json(connection.dialect, broadcast_id)
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    # The driver's executemany with plain tuples: SQLAlchemy's per-row parameter processing cost 16 µs a row here,
    # more than the database's work; the values are plain ints and strings, and the payload is the JSON type's own
    # text, so the stored rows are the same.
    connection.exec_driver_sql(
        f"INSERT INTO {staged.name} ({', '.join(c.name for c in staged.columns)}) "
        f"VALUES ({', '.join([mark] * len(staged.columns))})",
        [(d.recipient_id, d.customer_id, d.identity_id, cid, mid, oid, d.channel, d.address, d.language, r.text,
          as_json(r, d.language))
         for d, r, cid, mid, oid in zip(go, texts, conversation_ids, message_ids, outbox_ids, strict=True)])
    _write_staged(session, broadcast_id, now)
    batch.queued = len(go)
    return batch


def _staging(session: Session) -> Table:
    """The staging table on this transaction's connection, empty (SQLite keeps a TEMP table's rows until the
    connection closes; PostgreSQL empties it at commit)."""
    session.execute(_CREATE_STAGED)  # one statement, not checkfirst's two look-ups
    session.execute(_EMPTY_STAGED)
    return STAGED


_CREATE_STAGED, _EMPTY_STAGED = CreateTable(STAGED, if_not_exists=True), delete(STAGED)


def _write_staged(session: Session, broadcast_id: int, now: datetime) -> None:
    values = {"now": now, "meta": {"broadcast_id": broadcast_id}}
    for statement in _staged_writes():
        session.execute(statement, values)


@lru_cache(maxsize=1)
def _staged_writes() -> tuple[Any, ...]:
    """The conversations, messages and outbox rows from the staged ones, and the recipients marked queued: built
    once with bind parameters (`now`, `meta`), as `_due_query`."""
    conversations: Any = Conversation.__table__
    messages: Any = Message.__table__
    outbox: Any = OutboxItem.__table__
    recipients: Any = BroadcastRecipient.__table__
    moment = bindparam("now", type_=messages.c.created_at.type)
    s = STAGED.c
    write_conversations = insert(conversations).from_select(
        ["id", "customer_id", "identity_id", "channel", "status", "priority", "language", "pending_data",
         "misunderstood", "opened_at", "last_message_at", "closed_at"],
        select(s.conversation_id, s.customer_id, s.identity_id, s.channel, literal("closed"), literal(0), s.language,
               literal({}, JSON), literal(0), moment, moment, moment))
    write_messages = insert(messages).from_select(
        ["id", "conversation_id", "customer_id", "channel", "direction", "sender", "text", "buttons", "media",
         "language", "delivery_status", "meta", "created_at"],
        select(s.message_id, s.conversation_id, s.customer_id, s.channel, literal("out"), literal("system"), s.text,
               literal([], JSON), literal([], JSON), s.language, literal("queued"), bindparam("meta", type_=JSON),
               moment))
    write_outbox = insert(outbox).from_select(
        ["id", "message_id", "conversation_id", "channel", "recipient", "payload", "status", "attempts",
         "next_attempt_at", "created_at"],
        select(s.outbox_id, s.message_id, s.conversation_id, s.channel, s.address, s.payload, literal("pending"),
               literal(0), moment, moment))

    # By key (IN), not UPDATE ... FROM: SQLite planned the join as a scan of every recipient row of every
    # broadcast, probing the batch for each.
    def staged_value(column: Any) -> Any:
        return select(column).where(s.recipient_id == recipients.c.id).scalar_subquery()

    mark_queued = (update(recipients).where(recipients.c.id.in_(select(s.recipient_id)))
                   .values(status="queued", outbox_id=staged_value(s.outbox_id), message_id=staged_value(s.message_id),
                           queued_at=bindparam("now", type_=recipients.c.queued_at.type)))
    return write_conversations, write_messages, write_outbox, mark_queued


def reserve_ids(session: Session, tables: tuple[Any, ...], count: int) -> list[list[int]]:
    """`count` new ids for each of `tables`, given explicitly in the inserts so the tables can point at each other.

    PostgreSQL: drawn from the tables' sequences (one statement). SQLite cannot draw ids ahead, but there the
    writer holds the database lock (BEGIN IMMEDIATE) for the whole transaction, so the ids after MAX(id) are
    ours to give."""
    if not count:
        return [[] for _ in tables]
    dialect = session.get_bind().dialect.name
    row = session.execute(_reserve_query(dialect, tables), {"count": count}).all()
    if dialect == "sqlite":
        return [list(range(int(last) + 1, int(last) + 1 + count)) for last in row[0]]
    return [[int(i) for i in column] for column in zip(*row, strict=True)]


@lru_cache(maxsize=8)
def _reserve_query(dialect: str, tables: tuple[Any, ...]) -> Select[Any]:
    # Built once: one statement for all the tables, not one each (issue 18, per feed step).
    if dialect == "sqlite":
        return select(*[select(func.coalesce(func.max(t.c.id), 0)).scalar_subquery() for t in tables])
    return (select(*[func.nextval(func.pg_get_serial_sequence(t.name, "id")) for t in tables])
            .select_from(func.generate_series(1, bindparam("count", type_=Integer))))


def _payload_json(dialect: Any, broadcast_id: int) -> Callable[[Rendered, str], str]:
    """The outbox payload of a queued message as the text the JSON column stores. SQLite: the JSON type's own
    serialiser; psycopg adapts JSON itself (no processor) and takes the same text. With the default serialiser
    (json.dumps), the faster `PayloadJson`, which gives the same text."""
    serialise = JSON().bind_processor(dialect)
    if serialise is None or getattr(dialect, "_json_serializer", None) is None:
        return PayloadJson(broadcast_id)
    return lambda rendered, language: str(serialise(outbox_payload(broadcast_id, rendered, language)))


class PayloadJson:
    """`json.dumps(outbox_payload(broadcast_id, rendered, language))`, the same text, at half the cost (a feed
    step serialises a thousand payloads; json.dumps took ~4.5 µs each, issue 18). The payload is dumped once per
    set of template variable names with a marker in place of each string that varies per message, and the
    markers are made `%s`; a message's payload is that pattern with its strings escaped by json's own string
    encoder."""

    def __init__(self, broadcast_id: int) -> None:
        self.broadcast_id = broadcast_id
        self.patterns: dict[tuple[str, ...], tuple[str, list[int] | None]] = {}

    def __call__(self, rendered: Rendered, language: str) -> str:
        names = tuple(rendered.template_variables)
        pattern, order = self.patterns.get(names) or self._pattern(names)
        strings = (rendered.text, language, *rendered.template_variables.values())
        if order is not None:
            strings = tuple(strings[i] for i in order)
        return pattern % tuple(map(encode_basestring_ascii, strings))

    def _pattern(self, names: tuple[str, ...]) -> tuple[str, list[int] | None]:
        raw = [f"\x00{i}\x00" for i in range(len(names) + 2)]  # text, language, then the variables
        sample = Rendered(raw[0], dict(zip(names, raw[2:], strict=True)))
        dumped = json.dumps(outbox_payload(self.broadcast_id, sample, raw[1]))
        markers = [json.dumps(marker) for marker in raw]
        if any(dumped.count(marker) != 1 for marker in markers):  # each string once, where the payload has it
            raise ValueError(f"the outbox payload does not hold each of its strings once: {dumped}")
        order = sorted(range(len(markers)), key=lambda i: dumped.index(markers[i]))
        pattern = dumped.replace("%", "%%")
        for marker in markers:
            pattern = pattern.replace(marker, "%s")
        self.patterns[names] = found = (pattern, None if order == list(range(len(markers))) else order)
        return found


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


def next_pending(session: Session, broadcast_id: int, now: datetime) -> datetime | None:
    """When the next pending recipient may go: `now` if one is due, else the earliest `not_before` (quiet
    hours), None if none is pending. The usual answer, one due, is one index probe; the earlier count of every
    pending recipient after each feed step made queueing quadratic in the broadcast's size."""
    one_due, earliest = _next_pending_queries()
    values = {"broadcast_id": broadcast_id, "now": now}
    if session.execute(one_due, values).first() is not None:
        return now
    return session.execute(earliest, values).scalar_one_or_none()


@lru_cache(maxsize=1)
def _next_pending_queries() -> tuple[Select[Any], Select[Any]]:
    """`next_pending`'s two statements, built once with bind parameters (as `_due_query`: once per feed step)."""
    mine = and_(BroadcastRecipient.broadcast_id == bindparam("broadcast_id", type_=BigInteger),
                BroadcastRecipient.status == "pending")
    now: Any = bindparam("now")  # typed by the column it is compared with
    one_due = select(BroadcastRecipient.id).where(
        mine, or_(BroadcastRecipient.not_before.is_(None), BroadcastRecipient.not_before <= now)).limit(1)
    return one_due, select(func.min(BroadcastRecipient.not_before)).where(mine)


def has_in_flight(session: Session, broadcast_id: int) -> bool:
    """Whether an outbox row of the broadcast is not finished yet (`Progress.in_flight`, without counting every
    recipient and outbox row of the broadcast: the last feed step asked `progress` and took 0.15 s for 100,000
    recipients, issue 18)."""
    return session.execute(
        select(OutboxItem.id).join(BroadcastRecipient, BroadcastRecipient.outbox_id == OutboxItem.id)
        .where(BroadcastRecipient.broadcast_id == broadcast_id, OutboxItem.status.in_(IN_FLIGHT)).limit(1)
    ).first() is not None


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

