"""The web chat page and its JSON API (documented in README.md).

POST /api/webchat/sessions {"language"?}         -> 201 {"session_id"}; 429 + Retry-After past
     channels.webchat.sessions_per_minute_per_address (client address: bot/http/clients.py)
POST /api/webchat/messages                       -> 200 {"message_id", "duplicate", "replies": [Message]}
     {"session_id", "client_message_id", "text", "payload"?, "button_of"?, "language"?}
     `language`: the page's language now (the session follows it); `button_of`: for a button press, the
     `id` of the message the button belongs to, so the core can refuse a button of an answered question.
GET  /api/webchat/sessions/{id}/messages?after=N -> 200 {"messages": [Message]}
Errors are JSON {"error": "..."} with 400/404/413/422/429. Bodies are read with bot.limits.loads (depth,
64-bit numbers, NUL and lone surrogates refused) and fields checked against bot/limits.py.
"""

from __future__ import annotations

import logging
import math
import re
import secrets
from dataclasses import replace
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import limits, metrics
from bot.http.blocking import run_blocking
from bot.http.clients import client_address
from bot.http.docs import json_body
from bot.http.webhooks import checked
from bot.messages import InboundMessage
from bot.ratelimit import RateLimiter
from channels.base import BadPayload, RateKey, WebhookRequest
from channels.webchat import CLIENT_ID, LANGUAGE, MAX_MESSAGE_ID, SESSION_TOKEN
from store.customers import find_identity
from store.inbound_context import InboundContext
from store.messages import history
from store.models import Agent, Conversation, Message, WebchatSession

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent.parent / "static" / "webchat"
MAX_BODY_BYTES = 64 * 1024
AFTER = re.compile(r"^-?[0-9]{1,19}$")  # ASCII digits: int() also reads "١٢"
MAX_THROTTLED_ADDRESSES = 50_000  # buckets kept before they are all dropped (a full bucket costs nothing)


# The bodies, for /openapi.json only: the routes read them with bot.limits.loads and channels/webchat.py.
class NewSession(BaseModel):
    """A new chat session; an empty body is fine (the default language)."""

    language: str | None = Field(None, pattern=LANGUAGE.pattern, examples=["id"],
                                 description="The page's language; one Sapa does not speak is ignored.")


class NewMessage(BaseModel):
    """A customer's message from the web chat page."""

    session_id: str = Field(pattern=SESSION_TOKEN.pattern, examples=["the-session_id-it-gave-you"],
                            description="From POST /api/webchat/sessions.")
    client_message_id: str = Field(pattern=CLIENT_ID.pattern, examples=["m-1"],
                                   description="The page's id of this message: a retry with the same id is "
                                               "answered as a duplicate, not handled twice.")
    text: str | None = Field(None, min_length=1, max_length=limits.MAX_TEXT, examples=["halo"],
                             description="The customer's words (at most channels.webchat.max_text_length "
                                         "characters); for a button press it may be left out: the payload is "
                                         "the text.")
    payload: str | None = Field(None, min_length=1, max_length=200,
                                description="The payload of the button the customer pressed.")
    button_of: int | None = Field(None, gt=0, le=MAX_MESSAGE_ID,
                                  description="With payload: the `id` of the message the button belongs to.")
    language: str | None = Field(None, pattern=LANGUAGE.pattern, examples=["id"],
                                 description="The page's language now; the session follows it.")


class UnknownSession(Exception):
    """A message for a web chat session that does not exist: refused, nothing stored."""


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def serialise(message: Message, agent_names: dict[int, str]) -> dict[str, Any]:
    return {
        "id": message.id,
        "direction": message.direction,
        "sender": message.sender,
        "agent_name": agent_names.get(message.agent_id) if message.agent_id else None,
        "text": message.text,
        "buttons": message.buttons or [],
        # A customer's button press says which button (the page shows the question it answered as answered).
        "payload": message.button_payload if message.direction == "in" else None,
        "created_at": message.created_at.isoformat(),
    }


def mount(app: FastAPI, sapa: Any) -> None:
    channel = sapa.channels["webchat"]
    database = sapa.database

    app.mount("/static/webchat", StaticFiles(directory=STATIC), name="webchat-static")
    per_minute = sapa.settings.channels.webchat.sessions_per_minute_per_address
    throttle = [RateLimiter(sapa.clock)]  # replaced when it holds too many addresses

    def session_wait(request: Request) -> tuple[float, str]:
        """(0.0, address) and a token taken if the client's address may open a session now; else the seconds
        to wait."""
        address = client_address(request, sapa.settings.server.trusted_proxies)
        if throttle[0].keys_held() > MAX_THROTTLED_ADDRESSES:
            throttle[0] = RateLimiter(sapa.clock)
        key = RateKey(f"webchat-session:{address}", per_minute / 60, burst=per_minute)
        return throttle[0].reserve([key]), address

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.post("/api/webchat/sessions", status_code=201, tags=["web chat"],
              openapi_extra=json_body(NewSession, required=False))
    async def create_session(request: Request) -> JSONResponse:
        wait, address = session_wait(request)
        if wait > 0:
            log.info("web chat sessions: %s throttled for %.1f s", address, wait)
            return JSONResponse({"error": "too many new chat sessions from this address; try again shortly"},
                                status_code=429, headers={"Retry-After": str(max(1, math.ceil(wait)))})
        language = sapa.settings.default_language
        body = await request.body()
        if body.strip():
            try:
                data = limits.loads(body)
            except limits.Refused as exc:
                return error(exc.status, exc.reason)
            if isinstance(data, dict) and data.get("language") in sapa.settings.languages:
                language = data["language"]
        token = secrets.token_urlsafe(24)
        now = sapa.clock.now()

        def store() -> None:
            with database.unit_of_work() as session:
                session.add(WebchatSession(token=token, language=language, created_at=now))

        await run_blocking(store)
        return JSONResponse({"session_id": token}, status_code=201)

    # Sessions' languages as last seen by this process: the hint a message is understood with before its
    # transaction. Only a hint: the session row, read in the message's own transaction, decides (Pipeline.handle
    # understands again in the rare case they differ: another replica saw the page switch).
    known_languages: dict[str, str] = {}

    def understanding_hint(token: str, chosen: str | None) -> str | None:
        if chosen in sapa.settings.languages:
            return chosen
        return known_languages.get(token)

    def session_language(session: Session, message: InboundMessage, chosen: str | None,
                         context: InboundContext | None) -> InboundMessage:
        """The message with its session's language; a language the page sends with a message becomes the session's.

        The page can switch language at any time (the session is created on page load, before the
        customer chose): each message says which language the page shows, and the session follows it.
        A language Sapa does not speak is ignored, as in session creation. An unknown session is refused
        (UnknownSession) before anything is stored. The session came with the message's context when the address
        has written before; only a first message reads it on its own.
        """
        row = context.webchat_session if context is not None else session.get(WebchatSession, message.sender)
        if row is None:
            raise UnknownSession
        if chosen is not None and chosen in sapa.settings.languages and chosen != row.language:
            row.language = chosen
        if len(known_languages) > MAX_THROTTLED_ADDRESSES:
            known_languages.clear()
        known_languages[message.sender] = row.language
        return replace(message, language_hint=row.language)

    @app.post("/api/webchat/messages", tags=["web chat"], openapi_extra=json_body(NewMessage))
    async def post_message(request: Request) -> JSONResponse:
        declared = request.headers.get("content-length")
        if declared and limits.is_ascii_number(declared) and int(declared) > MAX_BODY_BYTES:
            return error(413, f"request body larger than {MAX_BODY_BYTES} bytes")
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return error(413, f"request body larger than {MAX_BODY_BYTES} bytes")
        webhook = WebhookRequest("POST", str(request.url), dict(request.headers), body)
        try:
            (parsed,) = [checked(item) for item in channel.parse(webhook)]
        except BadPayload as exc:
            return error(exc.status, exc.reason)
        assert isinstance(parsed, InboundMessage)
        # One trip to the thread pool for the whole exchange: session check, pipeline, replies.
        return await run_blocking(_exchange, parsed)

    def _exchange(parsed: InboundMessage) -> JSONResponse:
        # One transaction for the whole exchange: the session and its language, the pipeline, the replies as written.
        chosen = parsed.language_hint
        hinted = replace(parsed, language_hint=understanding_hint(parsed.sender, chosen))
        try:
            result = sapa.pipeline.handle(
                hinted, prepare=lambda session, message, context: session_language(session, message, chosen, context))
        except UnknownSession:
            return error(404, "unknown session")
        if not result.duplicate:
            metrics.inbound(channel.name)
        replies = [serialise(reply, {}) for reply in result.replies]
        return JSONResponse({"message_id": result.message_id, "duplicate": result.duplicate, "replies": replies})

    @app.get("/api/webchat/sessions/{token}/messages", tags=["web chat"])
    def list_messages(token: str, after: str = "0") -> JSONResponse:
        if not SESSION_TOKEN.match(token):
            return error(404, "unknown session")
        if not AFTER.match(after.strip()) or not limits.in_int64(int(after)):
            return error(422, "after must be the id of a message (a whole number)")
        with database.unit_of_work(read_only=True) as session:
            if session.get(WebchatSession, token) is None:
                return error(404, "unknown session")
            identity = find_identity(session, channel.name, token)
            if identity is None:
                return JSONResponse({"messages": []})
            conversation_ids = list(
                session.execute(select(Conversation.id).where(Conversation.identity_id == identity.id)).scalars()
            )
            rows = history(session, conversation_ids, after_id=max(int(after), 0))
            agent_ids = {row.agent_id for row in rows if row.agent_id}
            names = {
                agent.id: agent.name
                for agent in session.execute(select(Agent).where(Agent.id.in_(agent_ids))).scalars()
            } if agent_ids else {}
            return JSONResponse({"messages": [serialise(row, names) for row in rows]})
