"""Provider webhooks: verify, normalise, run the pipeline, answer fast.

POST /webhooks/telegram, /webhooks/twilio/sms, /webhooks/twilio/whatsapp, /webhooks/twilio/status.
A forged or unsigned request gets 403 and nothing is stored. A failure inside the pipeline
answers 500 so the provider delivers again; the duplicate check makes that safe.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from bot.messages import DeliveryUpdate, InboundMessage
from channels.base import BadPayload, CustomerChannel, Forbidden, WebhookRequest

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1024 * 1024
TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


async def to_webhook_request(request: Request) -> WebhookRequest | JSONResponse:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return JSONResponse({"error": f"request body larger than {MAX_BODY_BYTES} bytes"}, status_code=413)
    form: tuple[tuple[str, str], ...] = ()
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        try:
            form = tuple(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
        except UnicodeDecodeError:
            return JSONResponse({"error": "form body is not UTF-8"}, status_code=400)
    headers = {name.lower(): value for name, value in request.headers.items()}
    return WebhookRequest(request.method, str(request.url), headers, body, form)


def mount(app: FastAPI, sapa: Any) -> None:
    def process(channel: CustomerChannel, webhook: WebhookRequest, ok: Response) -> Response:
        try:
            items = channel.parse(webhook)
        except Forbidden as exc:
            log.warning("refused %s webhook: %s", channel.name, exc or "bad or missing signature")
            return JSONResponse({"error": "forbidden"}, status_code=403)
        except BadPayload as exc:
            log.warning("unusable %s webhook: %s", channel.name, exc.reason)
            return JSONResponse({"error": exc.reason}, status_code=exc.status)
        for item in items:
            if isinstance(item, InboundMessage):
                sapa.pipeline.handle(item)
                channel.acknowledge(item)
            elif isinstance(item, DeliveryUpdate):
                sapa.pipeline.record_delivery(item)
            else:
                sapa.pipeline.record_reachability(item)
        return ok

    def route(path: str, channel: CustomerChannel, ok: Response) -> None:
        async def receive(request: Request) -> Response:
            webhook = await to_webhook_request(request)
            if isinstance(webhook, JSONResponse):
                return webhook
            return await run_in_threadpool(process, channel, webhook, ok)

        app.add_api_route(path, receive, methods=["POST"], include_in_schema=False, name=f"webhook-{channel.name}")

    twiml = Response(TWIML_EMPTY, media_type="text/xml")  # replies go through the outbox, not TwiML
    if "telegram" in sapa.channels:
        route("/webhooks/telegram", sapa.channels["telegram"], JSONResponse({"ok": True}))
    for name in ("sms", "whatsapp"):
        if name in sapa.channels:
            route(f"/webhooks/twilio/{name}", sapa.channels[name], twiml)
    # One status URL for both Twilio channels: the same account signs both, and the provider id
    # finds the message whichever channel it went out on.
    status_channel = sapa.channels.get("whatsapp") or sapa.channels.get("sms")
    if status_channel is not None:
        route("/webhooks/twilio/status", status_channel, twiml)
