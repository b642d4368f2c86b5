"""The interaction log and the outbox: inbound rows, outbound rows, and the send queue."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Boolean, Integer, Table, bindparam, case, exists, func, or_, select, text, update
from sqlalchemy.orm import Session

from store.direct_insert import insert_attached, insert_linked_attached
from store.models import ChannelIdentity, Conversation, Message, OutboxItem

# A later report never moves a message backwards (a late "sent" after "read" is ignored). "unconfirmed" (the
# provider may or may not have it, and cannot be asked) yields to any report a provider does make.
_DELIVERY_RANK = {"queued": 0, "unconfirmed": 0, "sent": 1, "delivered": 2, "read": 3, "failed": 4}


def find_by_provider_id(session: Session, channel: str, provider_message_id: str) -> Message | None:
    return session.execute(
        select(Message).where(
            Message.channel == channel, Message.provider_message_id == provider_message_id
        )
    ).scalar_one_or_none()


def replies_to(session: Session, message_id: int) -> list[Message]:
    return list(
        session.execute(select(Message).where(Message.reply_to_id == message_id).order_by(Message.id)).scalars()
    )


@dataclass(frozen=True)
class Outbound:
    """One outbound message to write: its text and what goes with it (see add_outbound)."""

    recipient: str
    text: str
    sender: str = "bot"
    buttons: list[dict[str, str]] | None = None
    agent_id: int | None = None
    reply_to_id: int | None = None
    template: str | None = None
    template_variables: dict[str, str] | None = None
    purpose: str = "reply"
    media: list[dict[str, Any]] | None = None


def add_outbound(
    session: Session,
    conversation: Conversation,
    *,
    recipient: str,
    text: str,
    now: datetime,
    sender: str = "bot",
    buttons: list[dict[str, str]] | None = None,
    agent_id: int | None = None,
    reply_to_id: int | None = None,
    template: str | None = None,
    template_variables: dict[str, str] | None = None,
    purpose: str = "reply",
    media: list[dict[str, Any]] | None = None,
) -> Message:
    """Log an outbound message and queue it for sending, in the caller's transaction.

    `media`: files sent with the text ({"url", "content_type", "kind", "file_name", ...}), kept on the message and
    handed to the channel by the outbox (OutboundMessage.media).
    """
    message_values, item_values = _outbound_rows(conversation, Outbound(
        recipient=recipient, text=text, sender=sender, buttons=buttons, agent_id=agent_id, reply_to_id=reply_to_id,
        template=template, template_variables=template_variables, purpose=purpose, media=media), now)
    message = Message(**message_values)
    session.add(message)
    session.flush()
    session.add(OutboxItem(**item_values, message_id=message.id))
    conversation.last_message_at = now
    return message


def write_outbound(session: Session, conversation: Conversation, drafts: Sequence[Outbound], *,
                   now: datetime) -> tuple[Message, ...]:
    """Log and queue several outbound messages at once: one INSERT for the messages, one for their outbox rows (one
    reply, on PostgreSQL: one statement for both).

    The pipeline's hot path (issue 18): the rows are written directly (store.direct_insert), not by a flush, and
    come back loaded and attached to the session. Nothing else pending in the session is flushed by it.
    """
    rows = [_outbound_rows(conversation, draft, now) for draft in drafts]
    if len(rows) == 1:  # the usual one reply: one round trip on PostgreSQL
        ((message_values, item_values),) = rows
        message, _ = insert_linked_attached(session, Message, message_values, OutboxItem, item_values,
                                            link="message_id")
        messages = [message]
    else:
        messages = insert_attached(session, Message, [message for message, _ in rows])
        insert_attached(session, OutboxItem, [{**item, "message_id": message.id}
                                              for (_, item), message in zip(rows, messages, strict=True)])
    if rows:
        conversation.last_message_at = now
    return tuple(messages)


def _outbound_rows(conversation: Conversation, draft: Outbound,
                   now: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """The message's and its outbox row's column values (the outbox row's message_id is the caller's to add)."""
    # Columns not named are None (store.direct_insert writes them so; a flush leaves them NULL too).
    buttons = draft.buttons or []
    message = dict(
        conversation_id=conversation.id,
        customer_id=conversation.customer_id,
        channel=conversation.channel,
        direction="out",
        sender=draft.sender,
        agent_id=draft.agent_id,
        text=draft.text,
        buttons=buttons,
        media=list(draft.media or []),
        language=conversation.language,
        delivery_status="queued",
        reply_to_id=draft.reply_to_id,
        meta={},
        created_at=now,
    )
    payload: dict[str, Any] = {
        "text": draft.text, "buttons": buttons, "purpose": draft.purpose, "language": conversation.language,
    }
    if draft.template:
        payload["template"] = draft.template
    if draft.template_variables:
        payload["template_variables"] = draft.template_variables
    if draft.media:
        payload["media"] = [dict(item) for item in draft.media]
    item = dict(
        conversation_id=None,  # set on desk posts only (bot/outbox.py)
        channel=conversation.channel,
        recipient=draft.recipient,
        payload=payload,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    return message, item


def history(session: Session, conversation_ids: list[int], after_id: int, limit: int = 200) -> list[Message]:
    if not conversation_ids:
        return []
    return list(
        session.execute(
            select(Message)
            .where(Message.conversation_id.in_(conversation_ids), Message.id > after_id,
                   Message.direction.in_(("in", "out")))  # internal agent notes stay internal
            .order_by(Message.id)
            .limit(limit)
        ).scalars()
    )


# --- the outbox -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClaimedRow:
    """An outbox row as claimed: what sending it and recording its outcome need, without ORM state per row."""

    id: int
    message_id: int | None  # None: a desk post (Slack), not part of a customer's history
    conversation_id: int | None
    channel: str
    recipient: str
    payload: dict[str, Any]
    attempts: int  # counting this one
    next_attempt_at: datetime
    send_started_at: datetime | None

    @property
    def card_for(self) -> int | None:
        """The conversation whose desk card this row is: its post sets the conversation's thread."""
        value = (self.payload or {}).get("desk_card_for")
        return int(value) if value is not None else None


# The outbox's statements are built once, with bound parameters: building them per call (aliases, column
# collections, cache keys) cost more CPU than running them (bench/outbox_send.py).
_OUTBOX = cast(Table, OutboxItem.__table__)
_MESSAGES = cast(Table, Message.__table__)
_RETURNED = (_OUTBOX.c.id, _OUTBOX.c.message_id, _OUTBOX.c.conversation_id, _OUTBOX.c.channel, _OUTBOX.c.recipient,
             _OUTBOX.c.payload, _OUTBOX.c.attempts, _OUTBOX.c.next_attempt_at, _OUTBOX.c.send_started_at)
_NOW = bindparam("now", type_=_OUTBOX.c.next_attempt_at.type)
_LIMIT = bindparam("limit", type_=Integer)


def _claim_statement() -> Any:
    candidate, older = _OUTBOX.alias("candidate"), _OUTBOX.alias("older")
    # An older unfinished message to the same address that cannot be claimed now holds this one back.
    blocked = exists().where(
        older.c.recipient == candidate.c.recipient, older.c.status.in_(("pending", "sending")),
        older.c.channel == candidate.c.channel, older.c.message_id.is_not(None), older.c.id < candidate.c.id,
        or_(older.c.status == "sending", older.c.next_attempt_at > _NOW))
    due = (select(candidate.c.id)
           .where(candidate.c.status == "pending", candidate.c.next_attempt_at <= _NOW,
                  or_(candidate.c.message_id.is_(None), ~blocked))
           .order_by(candidate.c.next_attempt_at, candidate.c.id)
           .limit(_LIMIT)
           .with_for_update(skip_locked=True))
    return (update(_OUTBOX).where(_OUTBOX.c.id.in_(due.scalar_subquery()))
            .values(status="sending", claimed_by=bindparam("worker"), claimed_at=_NOW,
                    attempts=_OUTBOX.c.attempts + 1)
            .returning(*_RETURNED))


def _release_statement() -> Any:
    # Ordered and limited like the claim: walking the index in order is what keeps SQLite on it (with
    # statistics saying most rows are `sent`, it otherwise scans the table; tests/store/test_query_plans.py).
    abandoned = (select(_OUTBOX.c.id)
                 .where(_OUTBOX.c.status == "sending",
                        _OUTBOX.c.claimed_at < bindparam("cutoff", type_=_OUTBOX.c.claimed_at.type))
                 .order_by(_OUTBOX.c.next_attempt_at, _OUTBOX.c.id)
                 .limit(_LIMIT)
                 .with_for_update(skip_locked=True))
    return update(_OUTBOX).where(_OUTBOX.c.id.in_(abandoned.scalar_subquery())).values(status="pending",
                                                                                       claimed_by=None)


_CLAIM = _claim_statement()
_RELEASE = _release_statement()
# A row is this worker's while it is `sending` under its name: renewals and outcomes write only such rows, so a
# worker whose claim ran out (and whose row another worker took over) never overwrites the other's state.
_MINE = (_OUTBOX.c.claimed_by == bindparam("worker")) & (_OUTBOX.c.status == "sending")
_RENEW = (update(_OUTBOX).where(_OUTBOX.c.id.in_(bindparam("ids", expanding=True)), _MINE)
          .values(claimed_at=_NOW).returning(_OUTBOX.c.id))


def claim_outbox(
    session: Session, *, now: datetime, worker: str, limit: int, claim_timeout: timedelta,
    release_abandoned: bool = True,
) -> list[ClaimedRow]:
    """Claim due rows for this worker, oldest due first: one UPDATE ... RETURNING (status `sending`, an attempt
    counted), not rows loaded and flushed one by one.

    Per-customer order is kept by the claim itself: a customer message with an older unfinished message to the
    same address that cannot go in this claim (in backoff, or `sending`: in flight in another process) is not
    claimed; it stays pending, spending no attempt, and is looked at again on the next pass. An older one that is
    due sorts before it (oldest due first), so it is in the same batch unless the batch is full or another process
    is claiming it at this moment: `waiting_behind` covers those two cases. Desk posts (no message) are not ordered
    here: they wait for their card.

    `release_abandoned`: rows claimed by a worker that died (`sending`, claimed longer than `claim_timeout` ago) are
    first put back to pending, keeping their attempts and start, so this claim takes them in their turn (the
    caller decides how often to look; nothing is abandoned in under `claim_timeout`). Each step walks
    ix_outbox_status_next_attempt_at; a single query with OR made SQLite scan the whole table (issue 15: 88 ms of
    118 per message at 1,000,000 messages, bench/history.py). FOR UPDATE SKIP LOCKED lets several processes share
    one PostgreSQL without taking the same row.
    """
    if release_abandoned:
        session.execute(_RELEASE, {"cutoff": now - claim_timeout, "limit": limit})
    claimed = session.execute(_CLAIM, {"now": now, "worker": worker, "limit": limit}).all()
    rows = [ClaimedRow(*row) for row in claimed]
    rows.sort(key=lambda row: (row.next_attempt_at, row.id))
    return rows


def renew_claims(session: Session, item_ids: list[int], *, worker: str, now: datetime) -> set[int]:
    """Move the claim of rows this worker still holds to `now`, so a batch that takes longer than the claim timeout
    is not taken for a dead worker's; the ids still held (a row missing was released and is someone else's now).
    One statement, for the caller's own short transaction (SQLite: the writer lock is not held across sends)."""
    if not item_ids:
        return set()
    return set(session.execute(_RENEW, {"ids": list(item_ids), "worker": worker, "now": now}).scalars())


def _write_mine(session: Session, statement: Any, params: list[dict[str, Any]], *, worker: str,
                status: str) -> set[int]:
    """An outcome executemany guarded by _MINE; the ids it did not write (taken over by another worker).

    Normally every row is written and the row count says so: nothing else is run. Only when some were not is one
    query run to name them: written rows keep this worker's name and have the status just written."""
    for row in params:
        row["worker"] = worker
    result = session.execute(statement, params)
    if cast(Any, result).rowcount == len(params):
        return set()
    ids = {row["item_id"] for row in params}
    written = session.execute(select(_OUTBOX.c.id).where(
        _OUTBOX.c.id.in_(ids), _OUTBOX.c.claimed_by == worker, _OUTBOX.c.status == status)).scalars()
    return ids - set(written)


def waiting_behind(session: Session, items: list[ClaimedRow], *, now: datetime, hold_s: float
                   ) -> dict[int, datetime]:
    """Claimed customer messages that must wait for an older, unfinished message to the same address outside
    this batch (due but left out of a full batch, or being claimed by another process at the same moment, which
    SKIP LOCKED hides from the claim): id -> when to look again.

    A customer reads their messages in the order we wrote them; a privacy notice must not overtake the answer
    it follows because the answer hit a 429. Desk posts (no messages row) are not ordered here: they wait
    for their card on their own.
    """
    mine = [item for item in items if item.message_id is not None]
    if not mine:
        return {}
    claimed = {item.id for item in items}
    older = session.execute(
        select(OutboxItem.id, OutboxItem.channel, OutboxItem.recipient, OutboxItem.status,
               OutboxItem.next_attempt_at)
        .where(OutboxItem.message_id.is_not(None), OutboxItem.status.in_(("pending", "sending")),
               OutboxItem.recipient.in_({item.recipient for item in mine}),
               OutboxItem.id < max(item.id for item in mine))
    ).all()
    blockers: dict[tuple[str, str], list[tuple[int, datetime]]] = {}
    for row in older:
        if row.id in claimed:
            continue
        # In flight elsewhere: it normally finishes within a send; look again shortly.
        again = max(now, row.next_attempt_at) if row.status == "pending" else now + timedelta(seconds=hold_s)
        blockers.setdefault((row.channel, row.recipient), []).append((row.id, again))
    held: dict[int, datetime] = {}
    for item in mine:
        times = [again for blocker_id, again in blockers.get((item.channel, item.recipient), [])
                 if blocker_id < item.id]
        if times:
            held[item.id] = max(times)
    return held


@dataclass(frozen=True, slots=True)
class Sent:
    """A row the provider accepted: its outbox id and provider message id, and from the claim what else the
    success writes to (the message; the conversation whose desk card it is)."""

    item_id: int
    provider_id: str
    message_id: int | None
    recipient: str
    card_for: int | None = None


def outbox_sent(session: Session, sent: list[Sent], *, now: datetime, worker: str) -> set[int]:
    """Rows the provider accepted: the rows and their messages are updated by two executemany UPDATEs (what the
    claim returned says which message each row is, so nothing is read first). Returns the ids not written: rows
    another worker took over (their messages are left to it too)."""
    if not sent:
        return set()
    if session.get_bind().dialect.name == "postgresql":
        written = set(session.execute(_SENT_PG, {
            "ids": [row.item_id for row in sent], "pids": [row.provider_id for row in sent], "at": now,
            "worker": worker}).scalars())
        lost = {row.item_id for row in sent} - written
    else:
        params = [{"item_id": row.item_id, "pid": row.provider_id, "at": now} for row in sent]
        lost = _write_mine(session, _MARK_SENT, params, worker=worker, status="sent")
        linked = [{"mid": row.message_id, "pid": row.provider_id}
                  for row in sent if row.message_id is not None and row.item_id not in lost]
        if linked:
            session.execute(_MESSAGE_SENT, linked)
    if lost:
        sent = [row for row in sent if row.item_id not in lost]
    for row in sent:
        if row.card_for is not None:  # the first card of a handoff opens the thread everything else goes to
            conversation = session.get_one(Conversation, row.card_for)
            if conversation.desk_ts is None:
                conversation.desk_ts = row.provider_id
                conversation.desk_channel = row.recipient
    return lost


def failed_desk_card(session: Session, conversation_id: int | None) -> str | None:
    """Why the conversation's Slack card will never be posted; None while it still can be.

    It never will be when its outbox row gave up, or when no card was ever queued (a handoff made while the
    desk was off): a thread post then has no thread to wait for."""
    if conversation_id is None:
        return "no conversation named"
    rows = session.execute(select(OutboxItem).where(
        OutboxItem.conversation_id == conversation_id, OutboxItem.channel == "slack",
    )).scalars()
    cards = [row for row in rows if (row.payload or {}).get("desk_card_for") is not None]
    if not cards:
        return "no card was ever queued for this conversation"
    if all(row.status == "failed" for row in cards):
        return cards[-1].last_error or "failed"
    return None


def add_desk_post(
    session: Session, *, recipient: str, text: str, now: datetime, conversation_id: int | None,
    options: dict[str, Any] | None = None, card_for: int | None = None,
) -> OutboxItem:
    """Queue a post to the agent desk (Slack). It is not a customer message, so no messages row.

    options["thread_of"] / options["update_card_of"] name a conversation whose card thread the
    dispatcher resolves at send time (the card may still be in the queue when this is written).
    """
    payload: dict[str, Any] = {"text": text, "buttons": [], "options": options or {}}
    if card_for is not None:
        payload["desk_card_for"] = card_for
    item = OutboxItem(
        message_id=None, conversation_id=conversation_id, channel="slack", recipient=recipient, payload=payload,
        status="pending", attempts=0, next_attempt_at=now, created_at=now,
    )
    session.add(item)
    return item


@dataclass(frozen=True, slots=True)
class PutBack:
    """A claimed row going back to pending: retried after a failed attempt (`error` says why), or deferred
    (`error` None: a rate limit or an earlier message said "not yet", so no attempt is spent)."""

    item_id: int
    next_attempt_at: datetime
    keep_started: bool = False  # the row's start stays (an unclear send, to be looked up before any resend)
    error: str | None = None
    customer: tuple[str, str] | None = None  # (channel, address) of a customer message: what follows it waits too


@dataclass(frozen=True, slots=True)
class Settled:
    """A claimed row that is finished without a provider id (failed, or unconfirmed), and why."""

    item_id: int
    message_id: int | None
    error: str


def _start_kept() -> Any:
    # One executemany for both kinds of row: each says whether its start stays.
    return case((bindparam("keep", type_=Boolean), _OUTBOX.c.send_started_at), else_=None)


# Outcomes keep the worker's name on the row (also when it goes back to pending): it is how _write_mine tells the
# rows it wrote from rows another worker took over, and the next claim overwrites it.
_BY_ID = (_OUTBOX.c.id == bindparam("item_id")) & _MINE
_MARK_SENT = update(_OUTBOX).where(_BY_ID).values(status="sent", provider_message_id=bindparam("pid"),
                                                  sent_at=bindparam("at", type_=_OUTBOX.c.sent_at.type),
                                                  last_error=None)
_MESSAGE_SENT = (update(_MESSAGES).where(_MESSAGES.c.id == bindparam("mid"))
                 .values(provider_message_id=bindparam("pid"), delivery_status="sent"))
# The same two writes for a whole batch in one statement on PostgreSQL (an executemany is one statement per row
# there, each a round trip in the pipeline): the ids written come back, the others were taken over (_MINE).
_SENT_PG = text("""
WITH given AS (SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:pids AS varchar[])) AS given (item_id, pid)),
     mine AS (UPDATE outbox SET status = 'sent', provider_message_id = given.pid, sent_at = :at, last_error = NULL
              FROM given WHERE outbox.id = given.item_id AND outbox.claimed_by = :worker AND outbox.status = 'sending'
              RETURNING outbox.id, outbox.message_id, given.pid),
     logged AS (UPDATE messages SET provider_message_id = mine.pid, delivery_status = 'sent'
                FROM mine WHERE messages.id = mine.message_id)
SELECT id FROM mine
""").bindparams(bindparam("at", type_=_OUTBOX.c.sent_at.type)).columns(id=Integer)
_RETRY = update(_OUTBOX).where(_BY_ID).values(status="pending", next_attempt_at=bindparam("again"),
                                              last_error=bindparam("error"), send_started_at=_start_kept())
_DEFER = update(_OUTBOX).where(_BY_ID).values(
    status="pending", next_attempt_at=bindparam("again"),
    attempts=case((_OUTBOX.c.attempts > 0, _OUTBOX.c.attempts - 1), else_=0), send_started_at=_start_kept())
_LATER_WAIT = update(_OUTBOX).where(
    _OUTBOX.c.recipient == bindparam("r"), _OUTBOX.c.status == "pending", _OUTBOX.c.channel == bindparam("c"),
    _OUTBOX.c.message_id.is_not(None), _OUTBOX.c.id > bindparam("after"),
    _OUTBOX.c.next_attempt_at < bindparam("again")).values(next_attempt_at=bindparam("again"))
_STARTED = (update(_OUTBOX).where(_OUTBOX.c.id.in_(bindparam("ids", expanding=True)), _MINE)
            .values(send_started_at=bindparam("at", type_=_OUTBOX.c.send_started_at.type)).returning(_OUTBOX.c.id))
_MESSAGE_SETTLED = (update(_MESSAGES).where(_MESSAGES.c.id == bindparam("mid"))
                    .values(delivery_status=bindparam("status"), delivery_error=bindparam("error")))
_FAILED = update(_OUTBOX).where(_BY_ID).values(status="failed", last_error=bindparam("error"))
_UNCONFIRMED = update(_OUTBOX).where(_BY_ID).values(status="unconfirmed", last_error=bindparam("error"))
_LAST_INBOUND = select(ChannelIdentity.address, ChannelIdentity.last_inbound_at).where(
    ChannelIdentity.channel == bindparam("channel"),
    ChannelIdentity.address.in_(bindparam("addresses", expanding=True)))


def _later_ones_wait(session: Session, rows: list[PutBack]) -> None:
    """The customer's later pending messages become due no sooner than the one put back: the claim would not take
    them before it anyway (it keeps per-customer order), and this way they do not look due meanwhile (a row that
    looks due is looked at by every pass, and would be counted as late)."""
    behind = [{"r": row.customer[1], "c": row.customer[0], "after": row.item_id, "again": row.next_attempt_at}
              for row in rows if row.customer is not None]
    if behind:
        session.execute(_LATER_WAIT, behind)


def outbox_retry(session: Session, rows: list[PutBack], *, worker: str) -> set[int]:
    """Back to pending after a failed attempt. The provider refused it, so it was not sent: a guarded row forgets
    its start, unless `keep_started` (the send may have arrived: it is looked up before it is sent again). Returns
    the ids not written (taken over by another worker)."""
    if not rows:
        return set()
    # Before the put-back, as always (a later row put back in the same call keeps its own time); for a row that
    # turns out taken over, this only makes the customer's later messages wait a little longer.
    _later_ones_wait(session, rows)
    params = [{"item_id": row.item_id, "again": row.next_attempt_at, "error": (row.error or "")[:500],
               "keep": row.keep_started} for row in rows]
    return _write_mine(session, _RETRY, params, worker=worker, status="pending")


def outbox_started(session: Session, item_ids: list[int], *, now: datetime, worker: str) -> set[int]:
    """A guarded row (every customer message on Twilio or Telegram, every broadcast) is about to go to the
    provider: if this process dies before recording the outcome, the row is found `sending` with this set, and is
    reconciled with the provider instead of sent again. Returns the ids started: a row missing is another
    worker's now and must not be sent by this one."""
    return set(session.execute(_STARTED, {"ids": list(item_ids), "at": now, "worker": worker}).scalars())


def _settle(session: Session, rows: list[Settled], status: str, statement: Any, worker: str) -> set[int]:
    if not rows:
        return set()
    params = [{"item_id": row.item_id, "error": row.error[:500]} for row in rows]
    lost = _write_mine(session, statement, params, worker=worker, status=status)
    linked = [{"mid": row.message_id, "status": status, "error": row.error[:300]}
              for row in rows if row.message_id is not None and row.item_id not in lost]
    if linked:
        session.execute(_MESSAGE_SETTLED, linked)
    return lost


def outbox_failed(session: Session, rows: list[Settled], *, worker: str) -> set[int]:
    """Rows that gave up (undeliverable, or out of attempts): the rows and their messages say why. Returns the ids
    not written (taken over by another worker)."""
    return _settle(session, rows, "failed", _FAILED, worker)


def outbox_unconfirmed(session: Session, rows: list[Settled], *, worker: str) -> set[int]:
    """The provider may or may not have the message and cannot be asked (Telegram after a 5xx, a timeout, a lost
    answer, or a crash mid-send): the row is settled as `unconfirmed`, never sent again, and the message says why.
    The start stays recorded as evidence of when it was tried. Returns the ids not written."""
    return _settle(session, rows, "unconfirmed", _UNCONFIRMED, worker)


def outbox_known_sent(session: Session, channel: str, recipient: str, *, since: datetime) -> set[str]:
    """Provider ids already recorded for rows sent to this address since `since`: a lookup for an unclear send must
    not take one of them for its own (the same text can go to a customer twice)."""
    return {str(pid) for pid in session.execute(
        select(OutboxItem.provider_message_id).where(
            OutboxItem.recipient == recipient, OutboxItem.status == "sent", OutboxItem.channel == channel,
            OutboxItem.sent_at >= since, OutboxItem.provider_message_id.is_not(None))).scalars()}


UNSETTLED = ("pending", "sending", "failed", "unconfirmed")


def outbox_counts(session: Session, statuses: tuple[str, ...] = UNSETTLED) -> dict[str, int]:
    """Rows per status, for the statuses asked (by default not `sent`: counting history would make every
    /healthz poll read the whole table; these are an index range)."""
    rows = session.execute(select(OutboxItem.status, func.count()).where(OutboxItem.status.in_(statuses))
                           .group_by(OutboxItem.status))
    return {status: int(count) for status, count in rows}


def outbox_defer(session: Session, rows: list[PutBack], *, worker: str) -> set[int]:
    """Put claimed rows back without counting an attempt (a rate limit said "not yet"). They did not go, so a start
    this attempt recorded is forgotten, unless `keep_started` (an earlier, interrupted start not reconciled yet).
    Returns the ids not written (taken over by another worker)."""
    if not rows:
        return set()
    _later_ones_wait(session, rows)
    params = [{"item_id": row.item_id, "again": row.next_attempt_at, "keep": row.keep_started} for row in rows]
    return _write_mine(session, _DEFER, params, worker=worker, status="pending")


def last_inbound_at(session: Session, channel: str, address: str) -> datetime | None:
    return last_inbound_times(session, channel, [address]).get(address)


def last_inbound_times(session: Session, channel: str, addresses: list[str]) -> dict[str, datetime | None]:
    """When each address last wrote on `channel` (for a session window such as WhatsApp's 24 h): one query for a
    claimed batch. An address without an identity is absent."""
    if not addresses:
        return {}
    return {address: last for address, last in session.execute(
        _LAST_INBOUND, {"channel": channel, "addresses": sorted(set(addresses))})}


def apply_delivery(
    session: Session, provider_message_id: str, status: str, error: str | None
) -> Message | None:
    """Record a provider's status report on the outbound message it names; None if unknown."""
    message = session.execute(
        select(Message).where(Message.provider_message_id == provider_message_id, Message.direction == "out")
    ).scalars().first()
    if message is None:
        return None
    current = _DELIVERY_RANK.get(message.delivery_status or "queued", 0)
    if _DELIVERY_RANK.get(status, 0) >= current:
        message.delivery_status = status
        if error:
            message.delivery_error = error[:300]
    return message
