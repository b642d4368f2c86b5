"""Conversations: find the open one for an identity, or open a new one."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from store.models import ChannelIdentity, Conversation

HUMAN_STATUSES = ("waiting", "with_agent")


def current_conversation(session: Session, identity: ChannelIdentity) -> Conversation | None:
    return session.execute(
        select(Conversation)
        .where(Conversation.identity_id == identity.id, Conversation.status != "closed")
        .order_by(Conversation.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def continue_or_open(
    session: Session, identity: ChannelIdentity, *, now: datetime, language: str, idle_close: timedelta,
    current: tuple[Conversation | None] | None = None,
) -> tuple[Conversation, bool]:
    """The identity's open conversation, or a new one if there is none or the bot's one went idle.

    A conversation a human holds is never closed for idleness: the agent closes it. `current`: the open
    conversation as already read in this transaction (store.inbound_context), in a 1-tuple; None: read it here.
    """
    conversation = current_conversation(session, identity) if current is None else current[0]
    if conversation is not None:
        idle = now - conversation.last_message_at > idle_close
        if not idle or conversation.status in HUMAN_STATUSES:
            return conversation, False
        conversation.status = "closed"
        conversation.closed_at = now
    conversation = Conversation(
        customer_id=identity.customer_id,
        identity_id=identity.id,
        channel=identity.channel,
        status="bot",
        priority=0,
        language=language,
        pending_data={},
        opened_at=now,
        last_message_at=now,
    )
    session.add(conversation)
    session.flush()
    return conversation, True


def close_idle(session: Session, *, now: datetime, idle_close: timedelta) -> int:
    """Close bot conversations with no message for idle_close; returns how many."""
    result = session.execute(
        update(Conversation)
        .where(Conversation.status == "bot", Conversation.last_message_at < now - idle_close)
        .values(status="closed", closed_at=now, pending_question=None, pending_data={})
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
