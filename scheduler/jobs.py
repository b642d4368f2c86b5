"""The task kinds and periodic jobs the core itself needs."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from bot.config import Settings
from bot.reports import daily_counts
from bot.reports.management import build_report, completed_period, previous_period, render_markdown
from handlers import analysis, broadcasts, loyalty, nps, requests, resolution_check, sla, surveys, vip
from handlers.desk_slack import agent_action, agent_reply
from handlers.sla_checks import check_task
from scheduler.clock import PeriodicTask
from store.conversations import close_idle
from store.messages import add_desk_post
from store.models import Task

VIP_REPORT = "report.vip"
DAILY_COUNTS = "report.daily_counts"
ROLLUP_DAYS = 7  # each night also closes gaps of a server that was down, a week back


def close_idle_conversations(session: Session, task: Task, now: datetime) -> None:
    """Closes bot conversations idle longer than payload['minutes']; agent-held ones stay open."""
    close_idle(session, now=now, idle_close=timedelta(minutes=int(task.payload["minutes"])))


def desk_task(settings: Settings) -> Callable[[Session, Task, datetime], None]:
    """An agent's Slack thread reply or button press, done after Slack got its quick answer."""

    def run(session: Session, task: Task, now: datetime) -> None:
        payload = task.payload
        if payload["kind"] == "reply":
            agent_reply(session, settings, slack_user=payload["slack_user"], thread_ts=payload["thread_ts"],
                        text=payload["text"], now=now, files=payload.get("files") or (), channel=payload.get("channel"))
        else:
            agent_action(session, settings, action=payload["action"], conversation_id=payload["conversation_id"],
                         slack_user=payload["slack_user"], now=now, channel=payload.get("channel"))

    return run


def vip_report_task(settings: Settings) -> PeriodicTask:
    """VIP-5.3: the VIP report for the last whole period, against the one before, posted to management.

    Checked hourly; the period's start date is the dedupe key, so each period is reported once.
    """

    def bucket(now: datetime) -> tuple[str, dict[str, Any]] | None:
        if not settings.slack.enabled:
            return None
        every = settings.reports.vip_report_every_days
        start, end = completed_period(settings, now, every)
        return (f"{VIP_REPORT}:{every}d:{start.date().isoformat()}",
                {"start": start.isoformat(), "end": end.isoformat()})

    def run(session: Session, task: Task, now: datetime) -> None:
        if not settings.slack.enabled:
            return
        start, end = datetime.fromisoformat(task.payload["start"]), datetime.fromisoformat(task.payload["end"])
        report = build_report(session, settings, start, end, vip_only=True, compare_to=previous_period(start, end),
                              now=now)
        channel = (settings.reports.management_channel or settings.slack.escalation_channel
                   or settings.slack.queue_channel)
        add_desk_post(session, recipient=channel, text=render_markdown(report), now=now, conversation_id=None)

    return PeriodicTask(run, check_every=timedelta(hours=1), bucket=bucket)


def vip_reevaluation(settings: Settings) -> PeriodicTask:
    """VIP-1.3: the VIP rules re-applied to everyone with transactions or VIP status, once per local day."""

    def bucket(now: datetime) -> tuple[str, dict[str, Any]]:
        return f"{vip.REEVALUATE}:{now.astimezone(settings.tz).date().isoformat()}", {}

    return PeriodicTask(vip.reevaluate_task(settings), check_every=timedelta(hours=1), bucket=bucket)


def nps_round(settings: Settings) -> PeriodicTask:
    """CRM-5.2 / VIP-5.1: the NPS round, checked hourly; one per `surveys.nps.every_days` period (handlers/nps.py)."""
    return PeriodicTask(nps.round_task(settings), check_every=timedelta(hours=1), bucket=nps.round_bucket(settings))


def daily_counts_task(settings: Settings) -> PeriodicTask:
    """Issue 17: yesterday's messages and conversations per channel kept in daily_counts, so the dashboard's first
    view of the day reads them instead of counting. Checked hourly; the day is the dedupe key, named only once it is
    complete (daily_counts.SETTLE after local midnight)."""

    def last_complete(now: datetime) -> date:
        return (now - daily_counts.SETTLE).astimezone(settings.tz).date() - timedelta(days=1)

    def bucket(now: datetime) -> tuple[str, dict[str, Any]]:
        day = last_complete(now)
        return f"{DAILY_COUNTS}:{day.isoformat()}", {"day": day.isoformat()}

    def run(session: Session, task: Task, now: datetime) -> None:
        day = date.fromisoformat(task.payload["day"])
        daily_counts.fill(session, settings, day - timedelta(days=ROLLUP_DAYS - 1), day, now)

    return PeriodicTask(run, check_every=timedelta(hours=1), bucket=bucket)


def task_kinds(settings: Settings) -> dict[str, Callable[[Session, Task, datetime], None]]:
    return {"conversation.close_idle": close_idle_conversations, "slack.desk": desk_task(settings),
            sla.CHECK: check_task(settings), sla.CONFIRM: resolution_check.ask_task(settings),
            sla.CSAT: surveys.ask_task(settings), VIP_REPORT: vip_report_task(settings),
            vip.REEVALUATE: vip_reevaluation(settings),
            requests.REMINDER: requests.reminder_task(settings),
            requests.STATUS_UPDATE: requests.status_update_task(settings),
            nps.ROUND: nps_round(settings), nps.ASK: nps.ask_task(settings), DAILY_COUNTS: daily_counts_task(settings),
            **loyalty.task_kinds(settings), **analysis.task_kinds(settings), **broadcasts.task_kinds(settings)}


TaskFunction = Callable[[Session, Task, datetime], None]


class CurrentTaskKinds(Mapping[str, TaskFunction]):
    """The task functions made with the texts in force now: a survey question, a request's status update or a
    broadcast's fixed footer edited in the console (handlers/knowledge.py) is used by the next task that sends it,
    not after a restart. The functions are rebuilt only when `current()` returns another Settings object (the
    knowledge base hands out the same object until a revision changes it)."""

    def __init__(self, current: Callable[[], Settings]) -> None:
        self._current = current
        self._made: tuple[Settings, dict[str, TaskFunction]] | None = None

    def _kinds(self) -> dict[str, TaskFunction]:
        settings = self._current()
        made = self._made
        if made is None or made[0] is not settings:
            made = (settings, task_kinds(settings))
            self._made = made
        return made[1]

    def __getitem__(self, kind: str) -> TaskFunction:
        return self._kinds()[kind]

    def __iter__(self) -> Iterator[str]:
        return iter(self._kinds())

    def __len__(self) -> int:
        return len(self._kinds())
