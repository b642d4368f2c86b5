"""Data-protection requests (UU PDP, CRM-1.5): everything held about a customer, and erasure.

Erasure removes what identifies a person (name, phone, email, channel addresses, what they and we
wrote) and keeps what the company's numbers need (that a message, ticket or survey existed, its
channel, intent, timestamps, scores), so reports stay honest after a customer is forgotten.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from store.audit import record
from store.models import (
    AuditEntry,
    ChannelIdentity,
    Consent,
    Conversation,
    Customer,
    Message,
    OutboxItem,
    Survey,
    Ticket,
    TicketEvent,
)

ERASED = "[dihapus / erased]"


def _row(obj: Any, *skip: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for column in obj.__table__.columns:
        if column.key in skip:
            continue
        value = getattr(obj, column.key)
        values[column.key] = value.isoformat() if isinstance(value, datetime) else value
    return values


def _count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def export_customer(session: Session, customer_id: int) -> dict[str, Any]:
    """Everything Sapa holds about one customer, as plain JSON-ready data."""
    customer = session.get_one(Customer, customer_id)
    tickets = session.execute(select(Ticket).where(Ticket.customer_id == customer_id).order_by(Ticket.id)).scalars()
    ticket_rows = []
    for ticket in tickets:
        events = session.execute(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id)).scalars()
        ticket_rows.append({**_row(ticket), "events": [_row(e) for e in events]})
    conversations = []
    for conversation in session.execute(
            select(Conversation).where(Conversation.customer_id == customer_id).order_by(Conversation.id)).scalars():
        messages = session.execute(
            select(Message).where(Message.conversation_id == conversation.id).order_by(Message.id)).scalars()
        conversations.append({**_row(conversation), "messages": [_row(m) for m in messages]})
    return {
        "customer": _row(customer),
        "channels": [_row(i) for i in session.execute(
            select(ChannelIdentity).where(ChannelIdentity.customer_id == customer_id)).scalars()],
        "consents": [_row(c) for c in session.execute(
            select(Consent).where(Consent.customer_id == customer_id).order_by(Consent.id)).scalars()],
        "conversations": conversations,
        "tickets": ticket_rows,
        "surveys": [_row(s) for s in session.execute(
            select(Survey).where(Survey.customer_id == customer_id).order_by(Survey.id)).scalars()],
        "audit": [_row(a) for a in session.execute(
            select(AuditEntry).where(AuditEntry.subject_type == "customer", AuditEntry.subject_id == str(customer_id))
            .order_by(AuditEntry.id)).scalars()],
    }


def erase_customer(session: Session, customer_id: int, *, now: datetime, actor: str, reason: str) -> dict[str, int]:
    """Remove or anonymise the customer's personal data; returns counts of what was changed."""
    customer = session.get_one(Customer, customer_id)
    customer.name = customer.phone = customer.email = None
    customer.updated_at = now
    identities = list(session.execute(
        select(ChannelIdentity).where(ChannelIdentity.customer_id == customer_id)).scalars())
    for identity in identities:
        # Unique per channel: a placeholder keeps the row (and its statistics) but no longer reaches anyone.
        identity.address = f"erased-{identity.id}"
        identity.display_name = None
    messages = _count(session.execute(
        update(Message).where(Message.customer_id == customer_id)
        .values(text=ERASED, media=[], meta={}, buttons=[])
    ))
    conversation_ids = [c.id for c in session.execute(
        select(Conversation).where(Conversation.customer_id == customer_id)).scalars()]
    session.execute(update(Conversation).where(Conversation.customer_id == customer_id)
                    .values(pending_question=None, pending_data={}))
    tickets = _count(session.execute(
        update(Ticket).where(Ticket.customer_id == customer_id)
        .values(subject=ERASED, description="", resolution=None)
    ))
    session.execute(update(Survey).where(Survey.customer_id == customer_id).values(comment=None))
    session.execute(update(Consent).where(Consent.customer_id == customer_id).values(evidence=None))
    # Nothing more goes out to them: queued messages are withdrawn. The queue also keeps copies of what
    # was sent (texts, addresses, desk cards): those go too. What was already posted in Slack stays in
    # Slack's own history (README: data protection).
    theirs = or_(OutboxItem.message_id.in_(select(Message.id).where(Message.customer_id == customer_id)),
                 OutboxItem.conversation_id.in_(conversation_ids))
    withdrawn = _count(session.execute(
        update(OutboxItem).where(theirs, OutboxItem.status.in_(("pending", "sending")))
        .values(status="failed", last_error="customer data erased")
    ))
    session.execute(update(OutboxItem).where(theirs).values(payload={}, recipient="erased"))
    counts = {"identities": len(identities), "messages": messages, "tickets": tickets, "withdrawn": withdrawn}
    record(session, actor=actor, action="customer.erased", subject_type="customer", subject_id=customer_id,
           now=now, detail={"reason": reason, **counts})
    return counts
