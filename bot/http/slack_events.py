"""POST /slack/events: Events API, interactivity and the /sapa slash command, in one endpoint.

Verified first (403 for a forged signature or a stale timestamp, nothing stored). Slash commands
are quick reads answered in the response. Thread replies and button presses are stored as durable
tasks keyed by Slack's event id / action, so Slack gets its answer at once, the work survives a
crash, and a retried delivery (X-Slack-Retry-Num) is never relayed twice.
A reply's shared files travel in the task's payload; they are fetched later, by the outbox or the media route.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from bot.http.webhooks import to_webhook_request
from channels.base import BadPayload, Forbidden, WebhookRequest
from channels.slack import AgentAction, AgentCommand, AgentReply, UrlVerification
from handlers.desk_commands import run_command
from store.tasks import schedule

log = logging.getLogger(__name__)
DESK_TASK = "slack.desk"


def mount(app: FastAPI, sapa: Any) -> None:
    desk = sapa.desk

    def process(webhook: WebhookRequest) -> Response:
        try:
            events = desk.parse(webhook)
        except Forbidden as exc:
            log.warning("refused Slack request: %s", exc)
            return JSONResponse({"error": "forbidden"}, status_code=403)
        except BadPayload as exc:
            return JSONResponse({"error": exc.reason}, status_code=exc.status)
        now = sapa.clock.now()
        queued = False
        for event in events:
            if isinstance(event, UrlVerification):
                return JSONResponse({"challenge": event.challenge})
            if isinstance(event, AgentCommand):
                with sapa.database.unit_of_work() as session:
                    text = run_command(session, sapa.settings, slack_user=event.slack_user, text=event.text, now=now)
                return JSONResponse({"response_type": "ephemeral", "text": text})
            with sapa.database.unit_of_work() as session:
                if isinstance(event, AgentReply):
                    schedule(session, DESK_TASK, due_at=now, now=now, dedupe_key=f"slack:event:{event.event_id}",
                             payload={"kind": "reply", "slack_user": event.slack_user,
                                      "thread_ts": event.thread_ts, "text": event.text,
                                      **({"files": [shared.as_dict() for shared in event.files]} if event.files
                                         else {})})
                elif isinstance(event, AgentAction) and event.value.isdigit():
                    schedule(session, DESK_TASK, due_at=now, now=now, dedupe_key=f"slack:action:{event.dedupe_key}",
                             payload={"kind": "action", "action": event.action, "slack_user": event.slack_user,
                                      "conversation_id": int(event.value)})
            queued = True
        if queued:
            sapa.scheduler.wake()
        return Response(status_code=200)

    @app.post("/slack/events", include_in_schema=False)
    async def slack_events(request: Request) -> Response:
        webhook = await to_webhook_request(request)
        if isinstance(webhook, JSONResponse):
            return webhook
        return await run_in_threadpool(process, webhook)
