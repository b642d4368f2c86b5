"""The task kinds and periodic jobs the core itself needs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot.config import Settings
from handlers import resolution_check, sla, surveys
from handlers.desk import agent_action, agent_reply
from handlers.sla_checks import check_task
from store.conversations import close_idle
from store.models import Task


def close_idle_conversations(session: Session, task: Task, now: datetime) -> None:
    """Closes bot conversations idle longer than payload['minutes']; agent-held ones stay open."""
    close_idle(session, now=now, idle_close=timedelta(minutes=int(task.payload["minutes"])))


def desk_task(settings: Settings) -> Callable[[Session, Task, datetime], None]:
    """An agent's Slack thread reply or button press, done after Slack got its quick answer."""

    def run(session: Session, task: Task, now: datetime) -> None:
        payload = task.payload
        if payload["kind"] == "reply":
            agent_reply(session, settings, slack_user=payload["slack_user"], thread_ts=payload["thread_ts"],
                        text=payload["text"], now=now)
        else:
            agent_action(session, settings, action=payload["action"], conversation_id=payload["conversation_id"],
                         slack_user=payload["slack_user"], now=now)

    return run


def task_kinds(settings: Settings) -> dict[str, Callable[[Session, Task, datetime], None]]:
    return {"conversation.close_idle": close_idle_conversations, "slack.desk": desk_task(settings),
            sla.CHECK: check_task(settings), sla.CONFIRM: resolution_check.ask_task(settings),
            sla.CSAT: surveys.ask_task(settings)}
