"""Prometheus metrics: counters the code paths bump, and gauges read from the database when /metrics is scraped.

The counters live at module level (one process, one set), so any module can count without being handed an
object: `metrics.inbound("telegram")`. Each app gets its own CollectorRegistry holding those counters, the
process's CPU and memory, and a DatabaseGauges bound to that app's database (bot/http/metrics.py serves it).
`sapa serve` is one process per replica, so no multiprocess mode is needed; Prometheus sums the replicas.

Label values are Sapa's own bounded names (channels, outcomes, task kinds, NLU backends), never anything a
customer sent: every distinct value is a time series kept forever.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Histogram, PlatformCollector, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import select

from bot.clock import Clock
from channels.base import MaybeSent, RetryLater, Undeliverable
from nlu.interpretation import Interpretation, Interpreter
from store import Database
from store.messages import UNSETTLED, outbox_counts
from store.models import OutboxItem, Task

log = logging.getLogger(__name__)

Outcome = Literal["sent", "failed", "retry", "unconfirmed"]
ErrorKind = Literal["undeliverable", "retry_later", "unclear", "unexpected"]
TaskOutcome = Literal["done", "retry", "failed"]

# registry=None: not the library's global registry; registry_for() adds them to each app's own.
MESSAGES_IN = Counter("sapa_messages_in", "Customer messages received and handed to the pipeline, per channel.",
                      ["channel"], registry=None)
MESSAGES_OUT = Counter("sapa_messages_out", "Outbox send attempts per channel and outcome (sent, failed, retry, "
                       "unconfirmed).", ["channel", "outcome"], registry=None)
PROVIDER_ERRORS = Counter("sapa_provider_errors", "Errors from a provider's API per channel and kind "
                          "(undeliverable, retry_later, unclear, unexpected).", ["channel", "kind"], registry=None)
TASKS_RUN = Counter("sapa_scheduler_tasks_run", "Scheduled tasks run by this process, per kind and outcome "
                    "(done, retry, failed).", ["kind", "outcome"], registry=None)
# The embedded backend answers in well under a millisecond; Rasa is an HTTP call of tens of milliseconds.
NLU_SECONDS = Histogram("sapa_nlu_seconds", "Time to understand one message, per NLU backend that answered.",
                        ["backend"], registry=None,
                        buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0))
COUNTERS: tuple[Counter | Histogram, ...] = (MESSAGES_IN, MESSAGES_OUT, PROVIDER_ERRORS, TASKS_RUN, NLU_SECONDS)


def inbound(channel: str) -> None:
    """One customer message accepted on `channel` (after its signature and limits were checked)."""
    MESSAGES_IN.labels(channel).inc()


def outbound(channel: str, outcome: Outcome) -> None:
    """One outbox send attempt on `channel` ended as `outcome`."""
    MESSAGES_OUT.labels(channel, outcome).inc()


def provider_error(channel: str, kind: ErrorKind) -> None:
    PROVIDER_ERRORS.labels(channel, kind).inc()


def error_kind(exc: BaseException) -> ErrorKind:
    """The kind label for an exception a channel's send raised (channels/base.py's exception types)."""
    if isinstance(exc, Undeliverable):
        return "undeliverable"
    if isinstance(exc, MaybeSent):
        return "unclear"
    if isinstance(exc, RetryLater):
        return "retry_later"
    return "unexpected"


def task_run(kind: str, outcome: TaskOutcome) -> None:
    TASKS_RUN.labels(kind, outcome).inc()


class TimedInterpreter:
    """An Interpreter that records how long each `interpret` took, labelled with the backend that answered
    (Interpretation.backend: "embedded", "rasa" or "embedded (rasa down)")."""

    def __init__(self, inner: Interpreter) -> None:
        self.inner = inner

    def interpret(self, text: str, language_hint: str | None = None, now: datetime | None = None) -> Interpretation:
        started = time.perf_counter()
        result = self.inner.interpret(text, language_hint, now)
        NLU_SECONDS.labels(result.backend).observe(time.perf_counter() - started)
        return result


class DatabaseGauges(Collector):
    """Outbox depth, the outbox's and the scheduler's lag, read at scrape time in one read-only transaction of
    three index-range queries (ix_outbox_status_next_attempt_at, ix_tasks_status_due_at). Every replica reports
    the same shared figures: aggregate them with max(), not sum()."""

    def __init__(self, database: Database, clock: Clock) -> None:
        self.database = database
        self.clock = clock

    def describe(self) -> Iterable[Metric]:
        return ()  # registering must not query the database; names are checked at scrape time instead

    def collect(self) -> Iterator[Metric]:
        now = self.clock.now()
        up = GaugeMetricFamily("sapa_database_up", "1 when the scrape could read the database, else 0.")
        try:
            with self.database.unit_of_work(read_only=True) as session:
                counts = outbox_counts(session)
                # The row waiting longest past its due time: a deferred broadcast or a backoff is not lag.
                oldest_outbox = session.execute(
                    select(OutboxItem.next_attempt_at)
                    .where(OutboxItem.status == "pending", OutboxItem.next_attempt_at <= now)
                    .order_by(OutboxItem.next_attempt_at).limit(1)).scalar()
                oldest_task = session.execute(
                    select(Task.due_at).where(Task.status == "pending", Task.due_at <= now)
                    .order_by(Task.due_at).limit(1)).scalar()
        except Exception as exc:  # an outage is reported as a value, so the process's own metrics still scrape
            log.warning("metrics: the database could not be read: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        rows = GaugeMetricFamily("sapa_outbox_rows", "Outbox rows not yet settled as sent, per status.",
                                 labels=["status"])
        for status in UNSETTLED:
            rows.add_metric([status], counts.get(status, 0))
        yield rows
        yield GaugeMetricFamily(
            "sapa_outbox_oldest_due_age_seconds",
            "Seconds the longest-waiting pending outbox row has been due (0 when none is due).",
            value=_age(now, oldest_outbox))
        yield GaugeMetricFamily(
            "sapa_scheduler_lag_seconds",
            "Seconds the oldest due scheduled task has been waiting to run (0 when none is due).",
            value=_age(now, oldest_task))


def _age(now: datetime, since: datetime | None) -> float:
    return max((now - since).total_seconds(), 0.0) if since is not None else 0.0


def registry_for(database: Database, clock: Clock) -> CollectorRegistry:
    """What one app's /metrics shows: the module's counters, this process's resources, the database gauges."""
    registry = CollectorRegistry(auto_describe=False)
    for metric in COUNTERS:
        registry.register(metric)
    ProcessCollector(registry=registry)  # process_cpu_seconds_total, resident memory, open files
    PlatformCollector(registry=registry)
    registry.register(DatabaseGauges(database, clock))
    return registry
