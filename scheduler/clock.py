"""APScheduler as the clock: it only makes this process look for due task rows and run periodic jobs."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.orm import Session

from scheduler.runner import TaskFunction, TaskRunner
from store.db import unavailable_reason
from store.models import Task
from store.tasks import schedule

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicTask:
    """A task kind that is also put on the timer: every `check_every`, `bucket(now)` names the current time
    bucket's task (dedupe key, payload), or None for no task. The dedupe key makes replicas produce one task."""

    run: TaskFunction
    check_every: timedelta
    bucket: Callable[[datetime], tuple[str, dict[str, Any]] | None]

    def __call__(self, session: Session, task: Task, now: Any) -> None:
        self.run(session, task, now)


class _BusyTickFilter(logging.Filter):
    """A tick still running when the next one is due (a long broadcast step) is normal: the skipped tick is not
    worth a warning every fraction of a second. Other APScheduler warnings pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("SchedulerClock._tick" in message and "maximum number of running instances" in message)


_BUSY_TICK = _BusyTickFilter()

# While tasks keep coming due (a broadcast, a wave of reminders, SLA checks of a busy hour) the tick looks again
# after this pause instead of a whole poll interval later, so a task due during a drain waits ~0.05 s, not ~1 s.
# It keeps looking until BUSY_GRACE_S pass without work: one empty look would end it whenever the tasks' writers
# paused a moment (seen in CI on a loaded machine: the last 2 of 40 tasks waited for the next 60 s poll).
# An idle scheduler still polls once per `scheduler.poll_interval_s`.
BUSY_POLL_S = 0.05
BUSY_GRACE_S = 1.0


class SchedulerClock:
    def __init__(self, runner: TaskRunner, poll_interval_s: float, timezone: str) -> None:
        self.runner = runner
        logging.getLogger("apscheduler.scheduler").addFilter(_BUSY_TICK)  # once: addFilter ignores repeats
        self._scheduler = BackgroundScheduler(timezone=timezone)
        self._scheduler.add_job(
            self._tick, IntervalTrigger(seconds=poll_interval_s), id="due-tasks",
            max_instances=1, coalesce=True,
        )
        self._again = threading.Event()  # set by wake(): a busy tick looks again at once
        self._stopping = threading.Event()
        for kind, function in runner.kinds.items():
            if isinstance(function, PeriodicTask):
                self.add_periodic(f"periodic:{kind}", partial(self.schedule_periodic, kind),
                                  IntervalTrigger(seconds=function.check_every.total_seconds()))

    def schedule_periodic(self, kind: str | None = None) -> None:
        """Queue the current bucket's task of each periodic kind (or of `kind`); a bucket's task exists once."""
        now = self.runner.clock.now()
        for name, function in self.runner.kinds.items():
            if not isinstance(function, PeriodicTask) or kind not in (None, name):
                continue
            bucket = function.bucket(now)
            if bucket is not None:
                key, payload = bucket
                with self.runner.database.unit_of_work() as session:
                    schedule(session, name, due_at=now, now=now, payload=payload, dedupe_key=key)

    def add_periodic(self, name: str, function: Callable[[], None], trigger: object) -> None:
        """A cron- or interval-style job; the work it does must itself be idempotent."""
        self._scheduler.add_job(function, trigger, id=name, max_instances=1, coalesce=True)

    def _tick(self) -> None:
        """Drain what is due; once that found work, look again soon (more is likely coming) until the looks have
        found none for BUSY_GRACE_S. Ticks skipped meanwhile are not needed: this one is still looking."""
        if not self._drain():
            return
        last_work = time.monotonic()
        while not self._stopping.is_set():
            self._again.wait(BUSY_POLL_S)
            if self._drain():
                last_work = time.monotonic()
            elif time.monotonic() - last_work >= BUSY_GRACE_S:
                return

    def _drain(self) -> int:
        self._again.clear()  # a wake() from before this drain is answered by it
        ran = 0
        try:
            ran = self.runner.drain(stopping=self._stopping.is_set)
        except Exception as exc:
            if (why := unavailable_reason(exc)) is not None:  # a database restart: one line, not a traceback
                log.warning("scheduler tick: database unavailable, trying again: %s", why)
            else:
                log.exception("scheduler tick failed")
        return ran

    def wake(self) -> None:
        """Look for due tasks now instead of at the next tick (work just queued for an agent)."""
        self._again.set()
        if self._scheduler.running:
            job = self._scheduler.get_job("due-tasks")
            if job is not None:
                job.modify(next_run_time=datetime.now(job.next_run_time.tzinfo if job.next_run_time else None))

    def start(self) -> None:
        if not self._scheduler.running:
            self._stopping.clear()
            self._scheduler.start()

    def stop(self) -> None:
        self._stopping.set()
        self._again.set()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    @property
    def last_tick_at(self) -> datetime | None:
        # The runner's own stamp, set when a look starts: a copy taken after the drain returned lagged behind
        # work already committed (a task seen done while the tick that ran it had no time yet).
        return self.runner.last_run_at

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)
