"""CRM-4.1 / CRM-4.5: customer scores and segments, and the loyalty programme's periodic evaluation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from bot.config import Settings
from store.models import Task


def task_kinds(settings: Settings) -> dict[str, Callable[[Session, Task, datetime], None]]:
    return {}
