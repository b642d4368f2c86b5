"""APScheduler as the clock: it only makes this process look for due task rows and run periodic jobs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from scheduler.runner import TaskRunner

log = logging.getLogger(__name__)


class SchedulerClock:
    def __init__(self, runner: TaskRunner, poll_interval_s: float, timezone: str) -> None:
        self.runner = runner
        self._scheduler = BackgroundScheduler(timezone=timezone)
        self._scheduler.add_job(
            self._tick, IntervalTrigger(seconds=poll_interval_s), id="due-tasks",
            max_instances=1, coalesce=True,
        )
        self.last_tick_at: datetime | None = None

    def add_periodic(self, name: str, function: Callable[[], None], trigger: object) -> None:
        """A cron- or interval-style job; the work it does must itself be idempotent."""
        self._scheduler.add_job(function, trigger, id=name, max_instances=1, coalesce=True)

    def _tick(self) -> None:
        try:
            self.runner.run_due()
        except Exception:
            log.exception("scheduler tick failed")
        self.last_tick_at = self.runner.last_run_at

    def wake(self) -> None:
        """Look for due tasks now instead of at the next tick (work just queued for an agent)."""
        if self._scheduler.running:
            job = self._scheduler.get_job("due-tasks")
            if job is not None:
                job.modify(next_run_time=datetime.now(job.next_run_time.tzinfo if job.next_run_time else None))

    def start(self) -> None:
        if not self._scheduler.running:
            self._scheduler.start()

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)
