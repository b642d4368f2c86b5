"""Runs due task rows. Each task kind has one registered function; each run is one unit of work.

Task functions must be idempotent: a process that dies mid-task leaves the row `running`, and
after the claim timeout another process runs it again.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from bot.clock import Clock
from store import Database
from store.models import Task
from store.tasks import claim_due, finish, retry_or_fail

log = logging.getLogger(__name__)

TaskFunction = Callable[[Session, Task, Any], None]  # (session, task, now)


class TaskRunner:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        kinds: Mapping[str, TaskFunction],
        *,
        max_attempts: int = 5,
        claim_timeout: timedelta = timedelta(minutes=5),
        worker: str | None = None,
    ) -> None:
        self.database = database
        self.clock = clock
        self.kinds = kinds
        self.max_attempts = max_attempts
        self.claim_timeout = claim_timeout
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}"
        self.last_run_at: datetime | None = None

    def run_due(self, limit: int = 100) -> int:
        """Run every task due by the clock's now; returns how many ran."""
        now = self.clock.now()
        self.last_run_at = now
        with self.database.unit_of_work() as session:
            claimed = [
                t.id for t in claim_due(
                    session, now=now, worker=self.worker, limit=limit, claim_timeout=self.claim_timeout
                )
            ]
        for task_id in claimed:
            self._run_one(task_id)
        return len(claimed)

    def _run_one(self, task_id: int) -> None:
        try:
            with self.database.unit_of_work() as session:
                task = session.get_one(Task, task_id)
                function = self.kinds.get(task.kind)
                if function is None:
                    raise LookupError(f"no function registered for task kind {task.kind!r}")
                function(session, task, self.clock.now())
                finish(session, task_id, now=self.clock.now())
        except Exception as exc:
            log.exception("task %s failed", task_id)
            with self.database.unit_of_work() as session:
                task = session.get_one(Task, task_id)
                delay = timedelta(seconds=min(30 * 2 ** (task.attempts - 1), 3600))
                status = retry_or_fail(
                    session, task_id, error=f"{type(exc).__name__}: {exc}", now=self.clock.now(),
                    max_attempts=self.max_attempts, delay=delay,
                )
                log.warning("task %s (%s) is now %s", task_id, task.kind, status)
