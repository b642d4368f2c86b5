"""Consents: an append-only record of what each customer agreed to, withdrew, when and how."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import Consent


def current(session: Session, customer_id: int, purpose: str) -> bool | None:
    """The latest answer for this purpose, or None if the customer was never asked."""
    latest = session.execute(
        select(Consent.granted)
        .where(Consent.customer_id == customer_id, Consent.purpose == purpose)
        .order_by(Consent.recorded_at.desc(), Consent.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return latest


def record(
    session: Session, customer_id: int, purpose: str, granted: bool, *, channel: str, evidence: str, now: datetime
) -> Consent:
    consent = Consent(
        customer_id=customer_id, purpose=purpose, granted=granted, channel=channel, evidence=evidence,
        recorded_at=now,
    )
    session.add(consent)
    return consent
