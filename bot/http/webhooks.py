"""Provider webhooks: verify, normalise, run the pipeline, answer fast.

POST /webhooks/telegram, /webhooks/twilio/sms, /webhooks/twilio/whatsapp, /webhooks/twilio/status.
A forged or unsigned request gets 403 and nothing is stored. A failure inside the pipeline
answers 500 so the provider delivers again; the duplicate check makes that safe.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from bot import limits, metrics
from bot.http.blocking import run_blocking
from bot.messages import DeliveryUpdate, InboundMessage
from channels.base import BadPayload, CustomerChannel, Forbidden, ProviderEvent, WebhookRequest

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


# The columns an inbound message's fields go to (store/models.py), checked for every channel in one place.
INBOUND_LIMITS = {
    "sender": limits.MAX_ID, "provider_message_id": limits.MAX_ID, "display_name": limits.MAX_NAME,
    "button_payload": limits.MAX_PAYLOAD, "phone": limits.MAX_PHONE, "shared_phone": limits.MAX_PHONE,
    "edit_of": limits.MAX_ID, "deep_link": limits.MAX_PAYLOAD, "ack_token": limits.MAX_ID,
    "forwarded_from": limits.MAX_NAME, "button_of": limits.MAX_ID, "unsupported": limits.MAX_ID,
}


def checked(event: ProviderEvent) -> ProviderEvent:
    """`event` within the field limits of bot/limits.py, or BadPayload naming the field (413 for a text longer
    than limits.MAX_TEXT). A language hint that no column can hold is dropped (it is only a hint) and a
    provider's error text is shortened to its column: both legitimately vary, neither is the customer's."""
    if isinstance(event, DeliveryUpdate):
        _strings(event.provider_message_id, "provider_message_id", limits.MAX_ID)
        if event.error is not None:
            _strings(event.error, "error", limits.MAX_FIELD)
            if len(event.error) > limits.MAX_DELIVERY_ERROR:
                event = dataclasses.replace(event, error=event.error[: limits.MAX_DELIVERY_ERROR - 1] + "…")
        return event
    if not isinstance(event, InboundMessage):
        _strings(dataclasses.asdict(event), "update", limits.MAX_FIELD)
        return event
    _strings(event.text, "text", limits.MAX_TEXT, too_long=413)
    for name, max_length in INBOUND_LIMITS.items():
        value = getattr(event, name)
        if value is not None:
            _strings(value, name, max_length)
    for item in (*event.media, event.location, event.contact):  # files, places, contact cards: JSON columns
        if item is not None:
            _strings(dataclasses.asdict(item), type(item).__name__.lower(), limits.MAX_FIELD)
    if not limits.date_in_range(event.received_at):
        raise BadPayload(f"the message's date {event.received_at.isoformat()} is outside "
                         f"{limits.MIN_DATE.year}-{limits.MAX_DATE.year - 1}")
    hint = event.language_hint
    if hint is not None and (len(hint) > limits.MAX_LANGUAGE or limits.unstorable(hint)):
        event = dataclasses.replace(event, language_hint=None)
    return event


def _strings(value: Any, name: str, max_length: int, *, too_long: int = 422) -> None:
    """BadPayload for a string in `value` (a string, or lists and dicts of them) past the limits."""
    if isinstance(value, str):
        try:
            limits.check_text(value, name, max_length, too_long=too_long)
        except limits.Refused as exc:
            raise BadPayload(exc.reason, exc.status) from None
    elif isinstance(value, dict):
        for item in value.values():
            _strings(item, name, max_length)
    elif isinstance(value, list | tuple):
        for item in value:
            _strings(item, name, max_length)


def mount(app: FastAPI, sapa: Any) -> None:
    def process(channel: CustomerChannel, webhook: WebhookRequest, ok: Response) -> Response:
        try:
            items = [checked(item) for item in channel.parse(webhook)]
        except Forbidden as exc:
            log.warning("refused %s webhook: %s", channel.name, exc or "bad or missing signature")
            return JSONResponse({"error": "forbidden"}, status_code=403)
        except BadPayload as exc:
            log.warning("unusable %s webhook: %s", channel.name, exc.reason)
            return JSONResponse({"error": exc.reason}, status_code=exc.status)
        for item in items:
            if isinstance(item, InboundMessage):
                # Counted after handle, and not for a repeat: each message once, whatever the provider re-delivers.
                if not sapa.pipeline.handle(item).duplicate:
                    metrics.inbound(channel.name)
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
            return await run_blocking(process, channel, webhook, ok)

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
