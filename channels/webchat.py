"""The web chat: a browser page talks to Sapa over a small JSON API.

There is no provider to deliver through: the browser reads its messages back from the API, so
sending only hands out an id. The session token is the customer's address on this channel.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from bot import limits
from bot.messages import InboundMessage, OutboundMessage
from channels.base import BadPayload, ProviderEvent, RateKey, WebhookRequest

SESSION_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,80}$")
# The page's language as a short code ("id", "en"); whether Sapa speaks it is the API's call (config languages).
LANGUAGE = re.compile(r"^[a-z]{2,3}$")
MAX_MESSAGE_ID = limits.INT64_MAX  # messages.id is a BIGINT at most


class WebchatChannel:
    name = "webchat"
    session_window: timedelta | None = None

    def __init__(self, max_text_length: int = 2000) -> None:
        self.max_text_length = min(max_text_length, limits.MAX_TEXT)  # never past the limit of every channel

    def parse(self, request: WebhookRequest) -> list[ProviderEvent]:
        try:
            data = limits.loads(request.body or b"null")  # depth, 64-bit numbers, NUL and surrogates refused
        except limits.Refused as exc:
            raise BadPayload(exc.reason, exc.status) from None
        if not isinstance(data, dict):
            raise BadPayload("body must be a JSON object with session_id, client_message_id and text", 400)
        session_id = data.get("session_id")
        client_id = data.get("client_message_id")
        text = data.get("text")
        payload = data.get("payload")
        language = data.get("language")
        button_of = data.get("button_of")
        if not isinstance(session_id, str) or not SESSION_TOKEN.match(session_id):
            raise BadPayload("session_id is missing or malformed; create one with POST /api/webchat/sessions")
        if not isinstance(client_id, str) or not CLIENT_ID.match(client_id):
            raise BadPayload("client_message_id must be a string of 1-80 letters, digits or -_.:")
        if payload is not None and (not isinstance(payload, str) or not 0 < len(payload) <= 200):
            raise BadPayload("payload must be a string of 1-200 characters")
        if language is not None and (not isinstance(language, str) or not LANGUAGE.match(language)):
            raise BadPayload("language must be a language code such as \"id\" or \"en\"")
        if button_of is not None:
            # The id of the message bubble the pressed button belongs to (the `id` the messages API returns):
            # the core refuses a button of an older, already-answered question. bool is an int in Python.
            if isinstance(button_of, bool) or not isinstance(button_of, int) or not 0 < button_of <= MAX_MESSAGE_ID:
                raise BadPayload("button_of must be the positive integer id of the message the button belongs to")
            if payload is None:
                raise BadPayload("button_of is only for button presses: send it with the button's payload")
        if text is None and payload is not None:
            text = payload
        if not isinstance(text, str) or not text.strip():
            raise BadPayload("text must be a non-empty string")
        if len(text) > self.max_text_length:
            raise BadPayload(f"text is longer than {self.max_text_length} characters", 413)
        return [
            InboundMessage(
                channel=self.name,
                sender=session_id,
                # Scoped by session so one browser's ids can never collide with another's.
                provider_message_id=f"{session_id}:{client_id}",
                text=text.strip(),
                received_at=datetime.now(UTC),
                language_hint=language,
                button_payload=payload,
                button_of=f"#{button_of}" if button_of is not None else None,
            )
        ]

    def send(self, message: OutboundMessage) -> str:
        return f"wc-{uuid.uuid4().hex}"

    def rate_keys(self, message: OutboundMessage) -> list[RateKey]:
        return []  # the browser fetches its own messages: nothing to pace

    def acknowledge(self, message: InboundMessage) -> None:
        return None
