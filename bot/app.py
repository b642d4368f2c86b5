"""Assembly: the one place where settings become objects and objects are wired together."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from apscheduler.triggers.interval import IntervalTrigger
from fastapi import FastAPI

from bot.clock import Clock, SystemClock
from bot.config import Settings, SlackConfig
from bot.metrics import TimedInterpreter
from bot.outbox import OutboxDispatcher
from bot.pipeline import Pipeline
from bot.ratelimit_shared import limiter_for
from channels.base import ChannelContext, CustomerChannel, Sender
from channels.registry import build_channels
from channels.slack import SlackDesk
from handlers.desk import sync_agents
from handlers.knowledge_live import Knowledge
from nlu.backends import build_interpreter
from nlu.interpretation import Interpreter
from scheduler.clock import SchedulerClock
from scheduler.jobs import CurrentTaskKinds
from scheduler.runner import TaskRunner
from store import Database, create_database
from store.tasks import schedule

log = logging.getLogger(__name__)
IDLE_SWEEP_MINUTES = 15


@dataclass
class Sapa:
    """Everything one process runs, built from one Settings."""

    settings: Settings
    database: Database
    clock: Clock
    interpreter: Interpreter
    channels: dict[str, CustomerChannel]
    pipeline: Pipeline
    dispatcher: OutboxDispatcher
    runner: TaskRunner
    scheduler: SchedulerClock
    # The FAQ and reply texts as edited in the console over config.yml's (handlers/knowledge.py).
    knowledge: Knowledge
    desk: SlackDesk | None = None  # the Slack agent desk, when slack.enabled

    def start_background(self) -> None:
        self.dispatcher.start()
        if self.settings.scheduler.enabled:
            self.scheduler.start()

    def stop_background(self) -> None:
        self.scheduler.stop()
        self.dispatcher.stop()
        for channel in [*self.channels.values(), self.desk]:
            close = getattr(channel, "close", None)  # adapters holding a client or event loop
            if close is not None:
                close()

    def schedule_idle_sweep(self) -> None:
        """Queue one idle-conversation sweep per time bucket; replicas agree through the dedupe key."""
        now = self.clock.now()
        bucket = now.replace(second=0, microsecond=0, minute=now.minute - now.minute % IDLE_SWEEP_MINUTES)
        with self.database.unit_of_work() as session:
            schedule(
                session, "conversation.close_idle", due_at=now, now=now,
                payload={"minutes": self.settings.conversation.idle_close_minutes},
                dedupe_key=f"close_idle:{bucket.isoformat()}",
            )


def build(
    settings: Settings,
    *,
    clock: Clock | None = None,
    interpreter: Interpreter | None = None,
    channels: dict[str, CustomerChannel] | None = None,
    database: Database | None = None,
    model_cache: Path | None = Path("var/nlu"),
) -> Sapa:
    clock = clock or SystemClock()
    database = database or create_database(settings.database.url)
    if interpreter is None:
        interpreter = build_interpreter(settings.nlu, model_cache)
    if channels is None:
        channels = build_channels(dict(settings.channels), ChannelContext(settings.server.public_base_url))
    desk = build_desk(settings.slack) if settings.slack.enabled else None
    senders: dict[str, Sender] = {**channels, **({"slack": desk} if desk else {})}
    dispatcher = OutboxDispatcher(database, senders, clock, settings.outbox,
                                  broadcast_rates=settings.broadcasts.rate_per_second,
                                  limiter=limiter_for(database, clock))
    knowledge = Knowledge(settings, database)
    pipeline = Pipeline(database, TimedInterpreter(interpreter), settings, clock, on_outbox=dispatcher.wake,
                        current_settings=knowledge.settings)
    runner = TaskRunner(database, clock, CurrentTaskKinds(knowledge.settings),
                        max_attempts=settings.scheduler.max_attempts)
    scheduler = SchedulerClock(runner, settings.scheduler.poll_interval_s, settings.company.timezone)
    sapa = Sapa(settings, database, clock, interpreter, channels, pipeline, dispatcher, runner, scheduler, knowledge,
                desk)
    scheduler.add_periodic(
        "idle-sweep", sapa.schedule_idle_sweep, IntervalTrigger(minutes=IDLE_SWEEP_MINUTES)
    )
    if settings.slack.agents:
        with database.unit_of_work() as session:
            sync_agents(session, settings, now=clock.now())
    return sapa


def build_desk(section: SlackConfig) -> SlackDesk:
    assert section.bot_token is not None and section.signing_secret is not None  # checked by the config
    return SlackDesk(section.bot_token.get_secret_value(), section.signing_secret.get_secret_value(),
                     api_base_url=section.api_base_url)


def create_app(sapa: Sapa, *, background: bool = True) -> FastAPI:
    """The ASGI app. With background=False tests drive the outbox and scheduler by hand."""
    from bot.console.mount import mount as mount_console
    from bot.http import (
        broadcasts_api,
        docs,
        health,
        media,
        metrics,
        slack_events,
        transactions_api,
        unavailable,
        webchat_api,
        webhooks,
    )
    from bot.http.body_limit import BodyLimit

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if background:
            sapa.start_background()
        try:
            yield
        finally:
            if background:
                sapa.stop_background()

    # docs_url/redoc_url None: FastAPI's pages load from a CDN; bot/http/docs.py serves /docs from Sapa.
    app = FastAPI(title="Sapa", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(BodyLimit)  # oversize bodies are refused before they are read, on every route
    unavailable.install(app)  # a database that cannot be reached: 503 with Retry-After, not a 500
    app.state.sapa = sapa
    app.include_router(health.router)
    metrics.mount(app, sapa)  # /metrics for Prometheus
    if "webchat" in sapa.channels:
        webchat_api.mount(app, sapa)
    webhooks.mount(app, sapa)
    transactions_api.mount(app, sapa)
    broadcasts_api.mount(app, sapa)
    media.mount(app, sapa)  # signed links to customers' and agents' files
    if sapa.desk is not None:
        slack_events.mount(app, sapa)
    mount_console(app, sapa)  # the staff web app, /console
    docs.mount(app)  # /docs: Swagger UI from the console's vendored files
    return app

