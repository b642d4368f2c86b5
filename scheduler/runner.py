"""Runs due task rows. Each task kind has one registered function.

A claimed batch runs in one transaction with a savepoint per task: a task that raises rolls back only its own
changes and is rescheduled with backoff (or failed), the others are marked done together when the batch commits.
Task functions must be idempotent: a process that dies mid-batch leaves the claimed rows `running`, and after the
claim timeout another process runs them again.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from bot import metrics
from bot.clock import Clock
from store import Database
from store.db import unavailable_reason
from store.models import Task
from store.tasks import claim_due, finish, finish_many, retry_or_fail

log = logging.getLogger(__name__)

TaskFunction = Callable[[Session, Task, Any], None]  # (session, task, now)

# One claim takes this many due rows (the claim is one short transaction; SKIP LOCKED on PostgreSQL keeps
# replicas off each other's rows). A process that dies holding them leaves them to the claim timeout, as before.
CLAIM_LIMIT = 200
# A batch transaction ends after this many tasks or this much time, whichever comes first. On SQLite a write
# transaction holds the one writer lock, and inbound messages, outbox bookkeeping and staff actions wait for it:
# 50 ms keeps their wait within what a web chat reply already costs. Longer batches save little (the commit is
# already shared by dozens of tasks at this size).
BATCH_TASKS = 200
BATCH_SECONDS = 0.05


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
        batch_tasks: int = BATCH_TASKS,
        batch_seconds: float = BATCH_SECONDS,
    ) -> None:
        self.database = database
        self.clock = clock
        self.kinds = kinds
        self.max_attempts = max_attempts
        self.claim_timeout = claim_timeout
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}"
        self.batch_tasks = batch_tasks
        self.batch_seconds = batch_seconds
        self.last_run_at: datetime | None = None

    def run_due(self, limit: int = CLAIM_LIMIT) -> int:
        """Claim up to `limit` tasks due by the clock's now and run them; returns how many ran."""
        now = self.clock.now()
        self.last_run_at = now
        with self.database.unit_of_work() as session:
            claimed = claim_due(session, now=now, worker=self.worker, limit=limit, claim_timeout=self.claim_timeout)
        waiting: Sequence[Task] = claimed
        while waiting:
            done = self._run_batch(waiting)
            waiting = waiting[done:]
            self._let_other_writers_in()
        return len(claimed)

    def _let_other_writers_in(self) -> None:
        # SQLite's writer lock (store.db) is a plain lock: released and at once taken again by this thread, a
        # waiting inbound message would lose it to the next batch again and again. A millisecond lets it in.
        if self.database.dialect == "sqlite":
            time.sleep(0.001)

    def drain(self, *, stopping: Callable[[], bool] = lambda: False, limit: int = CLAIM_LIMIT) -> int:
        """Run due tasks until a claim finds fewer than `limit` (none left due), so a burst is worked off at once
        instead of `limit` per poll; returns how many ran."""
        total = 0
        while not stopping():
            ran = self.run_due(limit)
            total += ran
            if ran < limit:
                break
            self._let_other_writers_in()
        return total

    def _run_batch(self, tasks: Sequence[Task]) -> int:
        """Run the first tasks of `tasks` in one transaction, as many as the count and time bounds allow;
        returns how many it dealt with (ran, retried or failed)."""
        started = time.monotonic()
        count = 0
        try:
            outcomes: list[tuple[str, metrics.TaskOutcome]] = []  # counted once the batch is committed
            with self.database.unit_of_work() as session:
                succeeded: list[int] = []
                for task in tasks[:self.batch_tasks]:
                    count += 1
                    task = session.merge(task, load=False)  # the claim's row, attached again: no re-read
                    try:
                        with session.begin_nested():
                            self._call(session, task)
                    except Exception as exc:
                        outcomes.append((task.kind, self._retry(session, task, exc)))
                    else:
                        succeeded.append(task.id)
                        outcomes.append((task.kind, "done"))
                    if time.monotonic() - started >= self.batch_seconds:
                        break
                finish_many(session, succeeded, now=self.clock.now())
            for kind, outcome in outcomes:
                metrics.task_run(kind, outcome)
        except Exception as exc:
            if unavailable_reason(exc) is not None:
                raise  # the rows stay claimed and run again after the claim timeout, as when the process dies
            # The batch's own transaction failed (a task left the session unusable, the commit was refused):
            # nothing of it was kept, so the same tasks run again, each in its own unit of work.
            log.warning("task batch failed (%s: %s); running its %d tasks one by one", type(exc).__name__, exc, count)
            for task in tasks[:count]:
                self._run_alone(task.id)
        return count

    def _call(self, session: Session, task: Task) -> None:
        function = self.kinds.get(task.kind)
        if function is None:
            raise LookupError(f"no function registered for task kind {task.kind!r}")
        function(session, task, self.clock.now())

    def _retry(self, session: Session, task: Task, exc: Exception) -> metrics.TaskOutcome:
        log.exception("task %s failed", task.id, exc_info=exc)
        delay = timedelta(seconds=min(30 * 2 ** (task.attempts - 1), 3600))
        status = retry_or_fail(
            session, task.id, error=f"{type(exc).__name__}: {exc}", now=self.clock.now(),
            max_attempts=self.max_attempts, delay=delay,
        )
        log.warning("task %s (%s) is now %s", task.id, task.kind, status)
        return "failed" if status == "failed" else "retry"

    def _run_alone(self, task_id: int) -> None:
        try:
            with self.database.unit_of_work() as session:
                task = session.get_one(Task, task_id)
                self._call(session, task)
                finish(session, task_id, now=self.clock.now())
            metrics.task_run(task.kind, "done")
        except Exception as exc:
            with self.database.unit_of_work() as session:
                task = session.get_one(Task, task_id)
                outcome = self._retry(session, task, exc)
            metrics.task_run(task.kind, outcome)
