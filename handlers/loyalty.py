"""CRM-4.2: the loyalty programme: points earned from transactions, tiers, rewards and redemption."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from bot.config import Settings
from handlers.turn import Route
from store.models import Agent, Task

ROUTES: list[Route] = []


def task_kinds(settings: Settings) -> dict[str, Callable[[Session, Task, datetime], None]]:
    return {}


def slack_command(session: Session, settings: Settings, agent: Agent, verb: str, rest: list[str],
                  now: datetime) -> str:
    raise NotImplementedError
