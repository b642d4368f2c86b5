"""CRM-4.3: segmented marketing broadcasts over the customers' channels."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from bot.config import Settings
from store.models import Agent, Task


def task_kinds(settings: Settings) -> dict[str, Callable[[Session, Task, datetime], None]]:
    return {}


def slack_command(session: Session, settings: Settings, agent: Agent, verb: str, rest: list[str],
                  now: datetime) -> str:
    raise NotImplementedError
