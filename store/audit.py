"""The audit log: who did what to which record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from store.models import AuditEntry


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str | int | None,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEntry(
            actor=actor, action=action, subject_type=subject_type,
            subject_id=None if subject_id is None else str(subject_id), detail=detail or {}, created_at=now,
        )
    )
