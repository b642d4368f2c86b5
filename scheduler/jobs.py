"""The task kinds and periodic jobs the core itself needs."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from store.conversations import close_idle
from store.models import Task


def close_idle_conversations(session: Session, task: Task, now: datetime) -> None:
    """Closes bot conversations idle longer than payload['minutes']; agent-held ones stay open."""
    close_idle(session, now=now, idle_close=timedelta(minutes=int(task.payload["minutes"])))


TASK_KINDS = {"conversation.close_idle": close_idle_conversations}
