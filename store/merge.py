"""Merging two customer records into one, keeping every message, ticket and consent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from store.audit import record
from store.models import ChannelIdentity, Consent, Conversation, Customer, Message, Survey, Ticket, Transaction


def merge_customers(session: Session, source_id: int, target_id: int, *, now: datetime, actor: str,
                    reason: str) -> Customer:
    """Move everything of `source` to `target`; `source` stays as a pointer (merged_into_id).

    The target keeps its own values and takes the source's where it has none.
    """
    if source_id == target_id:
        return session.get_one(Customer, target_id)
    source = session.get_one(Customer, source_id)
    target = session.get_one(Customer, target_id)
    for model in (ChannelIdentity, Conversation, Message, Ticket, Consent, Survey, Transaction):
        session.execute(
            update(model).where(model.customer_id == source_id).values(customer_id=target_id)
        )
    phone = source.phone
    source.phone = None  # the phone is unique: free it before the target takes it
    session.flush()
    target.name = target.name or source.name
    target.email = target.email or source.email
    target.phone = target.phone or phone
    target.language = target.language or source.language
    target.is_vip = target.is_vip or source.is_vip
    target.vip_tier = target.vip_tier or source.vip_tier
    target.updated_at = now
    source.merged_into_id = target.id
    source.updated_at = now
    record(session, actor=actor, action="customers.merge", subject_type="customer", subject_id=target.id,
           now=now, detail={"merged": source_id, "reason": reason})
    return target
