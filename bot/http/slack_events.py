"""POST /slack/events: Events API, interactivity and the /sapa slash command, in one endpoint.

Verified first (403 for a forged signature or a stale timestamp, nothing stored). Slash commands
are quick reads answered in the response. Thread replies and button presses are stored as durable
tasks keyed by Slack's event id / action, so Slack gets its answer at once, the work survives a
crash, and a retried delivery (X-Slack-Retry-Num) is never relayed twice.
A reply's shared files travel in the task's payload; they are fetched later, by the outbox or the media route.

Replays (issue 15): a signed request sent again within Slack's 5-minute window is the same body, so it carries
the same event id, trigger id and action_ts: the task's dedupe key drops a replayed reply or press, and a slash
command is run once per request (store/slack_requests.py): a replay gets the first answer and changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from bot.http.blocking import run_blocking
from bot.http.webhooks import to_webhook_request
from channels.base import BadPayload, Forbidden, WebhookRequest
from channels.slack import AgentAction, AgentCommand, AgentReply, UrlVerification
from handlers.desk_commands import run_command
from store import slack_requests
from store.tasks import schedule

log = logging.getLogger(__name__)
DESK_TASK = "slack.desk"
MAX_COMMAND_TEXT = 4000  # characters after /sapa; the longest real command (a broadcast in two languages) fits
MAX_DEDUPE_KEY = 200  # tasks.dedupe_key


def dedupe_key(kind: str, key: str) -> str:
    """slack:<kind>:<key>, hashed when it would not fit the column (ids are Slack's, of any length it chose)."""
    full = f"slack:{kind}:{key}"
    return full if len(full) <= MAX_DEDUPE_KEY else f"slack:{kind}-sha256:{hashlib.sha256(key.encode()).hexdigest()}"


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
                return JSONResponse({"response_type": "ephemeral", "text": command(event, webhook, now)})
            with sapa.database.unit_of_work() as session:
                if isinstance(event, AgentReply):
                    # The channel and the ts together name the card: a ts is unique only within its channel.
                    schedule(session, DESK_TASK, due_at=now, now=now, dedupe_key=dedupe_key("event", event.event_id),
                             payload={"kind": "reply", "slack_user": event.slack_user, "channel": event.channel,
                                      "thread_ts": event.thread_ts, "text": event.text,
                                      **({"files": [shared.as_dict() for shared in event.files]} if event.files
                                         else {})})
                elif isinstance(event, AgentAction):  # its value is a conversation number (channels.slack)
                    schedule(session, DESK_TASK, due_at=now, now=now, dedupe_key=dedupe_key("action", event.dedupe_key),
                             payload={"kind": "action", "action": event.action, "slack_user": event.slack_user,
                                      "conversation_id": int(event.value), "channel": event.channel,
                                      "message_ts": event.message_ts})
            queued = True
        if queued:
            sapa.scheduler.wake()
        return Response(status_code=200)

    def command(event: AgentCommand, webhook: WebhookRequest, now: Any) -> str:
        """Run /sapa once per request: a replay of the same signed request gets the first answer again."""
        if len(event.text) > MAX_COMMAND_TEXT:
            return (f"That command is {len(event.text):,} characters long; /sapa reads at most "
                    f"{MAX_COMMAND_TEXT:,}. Nothing was done.")
        key = slack_requests.request_key(event.trigger_id, webhook.headers.get("x-slack-request-timestamp", ""),
                                         webhook.body)
        with sapa.database.unit_of_work() as session:
            receipt = slack_requests.claim(session, key, slack_user=event.slack_user, command=event.text, now=now)
            if receipt is None:
                log.warning("Slack slash command from %s replayed (%s): answered as before, not run again",
                            event.slack_user, key)
                return slack_requests.answer_of(session, key) or ""
            receipt.answer = run_command(session, sapa.knowledge.settings(), slack_user=event.slack_user,
                                         text=event.text, now=now)
            return receipt.answer

    @app.post("/slack/events", include_in_schema=False)
    async def slack_events(request: Request) -> Response:
        webhook = await to_webhook_request(request)
        if isinstance(webhook, JSONResponse):
            return webhook
        return await run_blocking(process, webhook)
