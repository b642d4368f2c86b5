"""Slash commands by request (issue 15): the same signed request, replayed, runs once.

Slack signs a request with a timestamp and accepts it for five minutes, so anyone who captured one could send
it again in that window: three identical `/sapa points adjust` gave 300 points. Every command Sapa runs gets a
`slack_requests` row, keyed by Slack's `trigger_id` (one per invocation; a replay carries the same), written
in the same unit of work as the command and holding its answer. A replay finds the row and gets that answer;
a replay racing the original waits on the unique key (PostgreSQL) or the writer lock (SQLite) and then finds it.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.models import SlackRequest

KEEP = timedelta(days=1)  # far past Slack's 5-minute replay window, and past any clock skew between replicas
MAX_KEY = 200  # slack_requests.request_key


def request_key(trigger_id: str, timestamp: str, body: bytes) -> str:
    """`trigger:<trigger_id>`; without one, a hash of the signed timestamp and body (what the signature covers)."""
    if trigger_id:
        key = f"trigger:{trigger_id}"
        return key if len(key) <= MAX_KEY else "trigger-sha256:" + hashlib.sha256(trigger_id.encode()).hexdigest()
    return "body-sha256:" + hashlib.sha256(timestamp.encode() + b":" + body).hexdigest()


def claim(session: Session, key: str, *, slack_user: str, command: str, now: datetime) -> SlackRequest | None:
    """The row for this request, new (its answer still to be set), or None when the request was already run.

    Call it before running the command, in the command's unit of work: the row commits or rolls back with it.
    """
    if _find(session, key) is not None:
        return None
    row = SlackRequest(request_key=key, slack_user=slack_user, command=command, answer="", created_at=now)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:  # the same request, committed by another process since we looked
        return None
    session.execute(delete(SlackRequest).where(SlackRequest.created_at < now - KEEP))
    return row


def answer_of(session: Session, key: str) -> str | None:
    """What the agent was told when this request ran, or None if it never did."""
    row = _find(session, key)
    return None if row is None else row.answer


def _find(session: Session, key: str) -> SlackRequest | None:
    return session.execute(select(SlackRequest).where(SlackRequest.request_key == key)).scalar_one_or_none()
