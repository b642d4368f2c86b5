"""The APScheduler clock: a tick still busy when the next is due is not logged as a warning each time."""

from __future__ import annotations

import logging

from bot.clock import SystemClock
from scheduler.clock import SchedulerClock
from scheduler.runner import TaskRunner


def test_a_skipped_busy_tick_is_not_a_warning_but_other_scheduler_warnings_are(caplog, database):
    SchedulerClock(TaskRunner(database, SystemClock(), {}), poll_interval_s=1.0, timezone="Asia/Jakarta")
    scheduler_log = logging.getLogger("apscheduler.scheduler")
    with caplog.at_level(logging.WARNING, logger="apscheduler.scheduler"):
        scheduler_log.warning('Execution of job "%s (trigger: interval[0:00:00.200000], next run at: x)" skipped: '
                              "maximum number of running instances reached (%d)", "SchedulerClock._tick", 1)
        scheduler_log.warning('Run time of job "%s" was missed by 0:00:05', "periodic:broadcast.watch")
    assert [r.getMessage() for r in caplog.records] == [
        'Run time of job "periodic:broadcast.watch" was missed by 0:00:05']

