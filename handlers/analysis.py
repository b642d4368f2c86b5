"""CRM-4.1 / CRM-4.5: customer scores and segments, and the loyalty programme's periodic evaluation."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from bot.config import Settings
from bot.reports.programme import build_programme_report, completed_month, month_before, render_markdown
from scheduler.clock import PeriodicTask
from store.messages import add_desk_post
from store.models import Task
from store.scores import compute_scores

SCORES = "analysis.scores"
PROGRAMME_REPORT = "report.programme"

log = logging.getLogger(__name__)


def scores_task(settings: Settings) -> PeriodicTask:
    """CRM-4.1: scores and segments recomputed every `analysis.recompute_every_hours`.

    Buckets are counted in whole periods since the Unix epoch, so every replica names the same bucket and the
    dedupe key makes one task of it. Checked every quarter hour so a bucket is never skipped by timer drift.
    """
    every = settings.analysis.recompute_every_hours

    def bucket(now: datetime) -> tuple[str, dict[str, Any]]:
        return f"{SCORES}:{every}h:{int(now.timestamp() // (every * 3600))}", {}

    def run(session: Session, task: Task, now: datetime) -> None:
        scored = compute_scores(session, settings, now)
        log.info("customer scores recomputed for %d customers", scored)

    return PeriodicTask(run, check_every=timedelta(minutes=15), bucket=bucket)


def programme_report_task(settings: Settings) -> PeriodicTask:
    """CRM-4.5: last month's programme report against the month before, posted to management in Slack.

    Checked hourly; the month is the dedupe key, so each month is reported once (only with Slack enabled).
    A month before the programme had any member or broadcast is not posted: a page of zeros tells no one anything.
    """

    def bucket(now: datetime) -> tuple[str, dict[str, Any]] | None:
        if not settings.slack.enabled:
            return None
        start, end = completed_month(settings, now)
        return (f"{PROGRAMME_REPORT}:{start.astimezone(settings.tz):%Y-%m}",
                {"start": start.isoformat(), "end": end.isoformat()})

    def run(session: Session, task: Task, now: datetime) -> None:
        if not settings.slack.enabled:
            return
        start, end = datetime.fromisoformat(task.payload["start"]), datetime.fromisoformat(task.payload["end"])
        report = build_programme_report(session, settings, start, end, compare_to=month_before(settings, start),
                                        now=now)
        if not report.current.members and not report.current.broadcasts:
            log.info("programme report for %s not posted: no members and no broadcasts yet", task.dedupe_key)
            return
        channel = (settings.reports.management_channel or settings.slack.escalation_channel
                   or settings.slack.queue_channel)
        add_desk_post(session, recipient=channel, text=render_markdown(report), now=now, conversation_id=None)

    return PeriodicTask(run, check_every=timedelta(hours=1), bucket=bucket)


def task_kinds(settings: Settings) -> dict[str, Callable[[Session, Task, datetime], None]]:
    return {SCORES: scores_task(settings), PROGRAMME_REPORT: programme_report_task(settings)}
