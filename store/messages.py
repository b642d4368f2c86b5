"""The interaction log and the outbox: inbound rows, outbound rows, and the send queue."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session

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
    message = Message(
        conversation_id=conversation.id,
        customer_id=conversation.customer_id,
        channel=conversation.channel,
        direction="out",
        sender=sender,
        agent_id=agent_id,
        text=text,
        buttons=buttons or [],
        media=list(media or []),
        language=conversation.language,
        delivery_status="queued",
        reply_to_id=reply_to_id,
        created_at=now,
    )
    session.add(message)
    session.flush()
    payload: dict[str, Any] = {
        "text": text, "buttons": buttons or [], "purpose": purpose, "language": conversation.language,
    }
    if template:
        payload["template"] = template
    if template_variables:
        payload["template_variables"] = template_variables
    if media:
        payload["media"] = [dict(item) for item in media]
    session.add(
        OutboxItem(
            message_id=message.id,
            channel=conversation.channel,
            recipient=recipient,
            payload=payload,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )
    conversation.last_message_at = now
    return message


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


def claim_outbox(
    session: Session, *, now: datetime, worker: str, limit: int, claim_timeout: timedelta
) -> list[OutboxItem]:
    """Claim due rows for this worker. Rows claimed by a worker that died are claimed again.

    FOR UPDATE SKIP LOCKED lets several processes share one PostgreSQL without taking the same row.
    Two queries, not one with OR: with statistics (ANALYZE, `PRAGMA optimize`) saying nearly every row is `sent`,
    SQLite answered the OR with a scan of the whole table (issue 15: 88 ms of 118 per message at 1,000,000
    messages, bench/history.py); each half alone walks ix_outbox_status_next_attempt_at.
    """
    due = session.execute(
        select(OutboxItem)
        .where(OutboxItem.status == "pending", OutboxItem.next_attempt_at <= now)
        .order_by(OutboxItem.next_attempt_at, OutboxItem.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).scalars()
    abandoned = session.execute(
        select(OutboxItem)
        .where(OutboxItem.status == "sending", OutboxItem.claimed_at < now - claim_timeout)
        .order_by(OutboxItem.next_attempt_at, OutboxItem.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).scalars()
    items = sorted([*due, *abandoned], key=lambda item: (item.next_attempt_at, item.id))[:limit]
    for item in items:
        item.status = "sending"
        item.claimed_by = worker
        item.claimed_at = now
        item.attempts += 1
    return items


def waiting_behind(session: Session, items: list[OutboxItem], *, now: datetime, hold_s: float
                   ) -> dict[int, datetime]:
    """Claimed customer messages that must wait for an older, unfinished message to the same address outside
    this batch (a reply being retried elsewhere, in flight in another process): id -> when to look again.

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


def outbox_sent(session: Session, sent: list[tuple[int, str]], *, now: datetime) -> None:
    """Rows the provider accepted, as (outbox id, provider message id): the rows and their messages are updated
    by two executemany UPDATEs, not per loaded object, since a broadcast records thousands."""
    if not sent:
        return
    outbox, messages = cast(Table, OutboxItem.__table__), cast(Table, Message.__table__)
    provider_ids = dict(sent)
    rows = session.execute(select(outbox.c.id, outbox.c.message_id, outbox.c.recipient, outbox.c.payload)
                           .where(outbox.c.id.in_(provider_ids))).all()
    session.execute(update(outbox).where(outbox.c.id == bindparam("item_id"))
                    .values(status="sent", provider_message_id=bindparam("pid"), sent_at=now, last_error=None),
                    [{"item_id": item_id, "pid": pid} for item_id, pid in sent])
    linked = [{"mid": row.message_id, "pid": provider_ids[row.id]} for row in rows if row.message_id is not None]
    if linked:
        session.execute(update(messages).where(messages.c.id == bindparam("mid"))
                        .values(provider_message_id=bindparam("pid"), delivery_status="sent"), linked)
    for row in rows:
        card_for = (row.payload or {}).get("desk_card_for")
        if card_for is not None:  # the first card of a handoff opens the thread everything else goes to
            conversation = session.get_one(Conversation, card_for)
            if conversation.desk_ts is None:
                conversation.desk_ts = provider_ids[row.id]
                conversation.desk_channel = row.recipient


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


def outbox_retry(session: Session, item_id: int, *, error: str, next_attempt_at: datetime,
                 keep_started: bool = False) -> None:
    """Back to pending after a failed attempt. The provider refused it, so it was not sent: a guarded row forgets
    its start, unless `keep_started` (the send may have arrived: it is looked up before it is sent again)."""
    item = session.get_one(OutboxItem, item_id)
    item.status = "pending"
    item.claimed_by = None
    item.next_attempt_at = next_attempt_at
    item.last_error = error[:500]
    if not keep_started:
        item.send_started_at = None


def outbox_started(session: Session, item_ids: list[int], *, now: datetime) -> None:
    """A guarded row (every customer message on Twilio or Telegram, every broadcast) is about to go to the
    provider: if this process dies before recording the outcome, the row is found `sending` with this set, and is
    reconciled with the provider instead of sent again."""
    outbox = cast(Table, OutboxItem.__table__)
    session.execute(update(outbox).where(outbox.c.id.in_(item_ids)).values(send_started_at=now))


def outbox_failed(session: Session, item_id: int, *, error: str) -> None:
    item = session.get_one(OutboxItem, item_id)
    item.status = "failed"
    item.last_error = error[:500]
    if item.message_id is not None:
        message = session.get_one(Message, item.message_id)
        message.delivery_status = "failed"
        message.delivery_error = error[:300]


def outbox_unconfirmed(session: Session, item_id: int, *, error: str) -> None:
    """The provider may or may not have the message and cannot be asked (Telegram after a 5xx, a timeout, a lost
    answer, or a crash mid-send): the row is settled as `unconfirmed`, never sent again, and the message says why.
    The start stays recorded as evidence of when it was tried."""
    item = session.get_one(OutboxItem, item_id)
    item.status = "unconfirmed"
    item.claimed_by = None
    item.last_error = error[:500]
    if item.message_id is not None:
        message = session.get_one(Message, item.message_id)
        message.delivery_status = "unconfirmed"
        message.delivery_error = error[:300]


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


def outbox_defer(session: Session, item_id: int, *, next_attempt_at: datetime, keep_started: bool = False) -> None:
    """Put a claimed row back without counting an attempt (a rate limit said "not yet"). It did not go, so a start
    this attempt recorded is forgotten, unless `keep_started` (an earlier, interrupted start not reconciled yet)."""
    item = session.get_one(OutboxItem, item_id)
    item.status = "pending"
    item.claimed_by = None
    item.attempts = max(item.attempts - 1, 0)
    item.next_attempt_at = next_attempt_at
    if not keep_started:
        item.send_started_at = None


def last_inbound_at(session: Session, channel: str, address: str) -> datetime | None:
    return session.execute(
        select(ChannelIdentity.last_inbound_at).where(
            ChannelIdentity.channel == channel, ChannelIdentity.address == address
        )
    ).scalar_one_or_none()


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
