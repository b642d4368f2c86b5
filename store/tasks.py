"""Durable tasks: schedule, claim when due, finish. The rows are the truth."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from store.direct_insert import insert_attached
from store.models import Task


def schedule(
    session: Session,
    kind: str,
    *,
    due_at: datetime,
    now: datetime,
    payload: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
) -> Task:
    """Add a task. With a dedupe_key, scheduling the same thing twice returns the existing task.

    One statement (store.direct_insert, ON CONFLICT DO NOTHING on the dedupe key): a look first, then the insert in
    a savepoint for a race, was four (issue 18: a complaint's SLA ladder is three tasks). Nothing else pending in the
    session is flushed by it."""
    values = dict(kind=kind, due_at=due_at, payload=payload or {}, status="pending", attempts=0,
                  dedupe_key=dedupe_key, created_at=now)
    inserted = insert_attached(session, Task, [values], skip_existing="dedupe_key" if dedupe_key is not None else None)
    if inserted:
        return inserted[0]
    return session.execute(select(Task).where(Task.dedupe_key == dedupe_key)).scalar_one()


def claim_due(
    session: Session, *, now: datetime, worker: str, limit: int, claim_timeout: timedelta
) -> list[Task]:
    # Two queries, not one with OR: see store.messages.claim_outbox (a whole-table scan on SQLite with statistics).
    due = session.execute(
        select(Task).where(Task.status == "pending", Task.due_at <= now)
        .order_by(Task.due_at, Task.id).limit(limit).with_for_update(skip_locked=True)
    ).scalars()
    abandoned = session.execute(
        select(Task).where(Task.status == "running", Task.claimed_at < now - claim_timeout)
        .order_by(Task.due_at, Task.id).limit(limit).with_for_update(skip_locked=True)
    ).scalars()
    tasks = sorted([*due, *abandoned], key=lambda task: (task.due_at, task.id))[:limit]
    for task in tasks:
        task.status = "running"
        task.claimed_by = worker
        task.claimed_at = now
        task.attempts += 1
    return tasks


def finish(session: Session, task_id: int, *, now: datetime) -> None:
    task = session.get_one(Task, task_id)
    task.status = "done"
    task.finished_at = now
    task.last_error = None


def finish_many(session: Session, task_ids: list[int], *, now: datetime) -> None:
    """Mark a batch done in one statement. The rows' objects in the session are not updated: the batch's
    transaction ends right after."""
    if task_ids:
        session.execute(
            update(Task).where(Task.id.in_(task_ids)).values(status="done", finished_at=now, last_error=None),
            execution_options={"synchronize_session": False},
        )


def retry_or_fail(
    session: Session, task_id: int, *, error: str, now: datetime, max_attempts: int, delay: timedelta
) -> str:
    task = session.get_one(Task, task_id)
    task.last_error = error[:2000]
    task.claimed_by = None
    if task.attempts >= max_attempts:
        task.status = "failed"
        task.finished_at = now
    else:
        task.status = "pending"
        task.due_at = now + delay
    return task.status


def due_count(session: Session, *, now: datetime) -> int:
    return int(
        session.execute(
            select(func.count()).select_from(Task).where(Task.status == "pending", Task.due_at <= now)
        ).scalar_one()
    )


def cancel(session: Session, dedupe_keys: list[str], *, now: datetime) -> int:
    """Cancel pending tasks that are no longer needed (an answered ticket's SLA checks); returns how many."""
    tasks = session.execute(
        select(Task).where(Task.dedupe_key.in_(dedupe_keys), Task.status == "pending")
    ).scalars().all()
    for task in tasks:
        task.status, task.finished_at = "cancelled", now
    return len(tasks)
