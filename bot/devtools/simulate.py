"""`sapa simulate`: send a signed inbound message to a running Sapa, print what the fake provider got.

It signs exactly as each provider does (Telegram's secret header, Twilio's X-Twilio-Signature over
the public URL, Slack's v0 signature with SLACK_SIGNING_SECRET), so the request takes the same path as
a real one. The agent actions (`agent-reply`, `agent-resolve`) find the conversation and its card's
ts with a read-only query on the configured database (what Slack itself would know from the card),
and print what Sapa wrote afterwards: messages to the customer and notes in the card's thread.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from bot.config import Settings, TelegramConfig, TwilioChannelConfig
from bot.limits import is_ascii_number
from store import create_database
from store.models import Conversation, Message, OutboxItem, Ticket

_update_ids = itertools.count(int(time.time()) % 1_000_000)


@dataclass(frozen=True)
class Signed:
    path: str
    body: bytes
    headers: dict[str, str]


def telegram_update(settings: Settings, text: str, user_id: int, name: str) -> Signed:
    secret = settings.channels.telegram.webhook_secret
    if not settings.channels.telegram.enabled or secret is None:
        raise ValueError("telegram is not enabled: use config.local-channels.yml and set TELEGRAM_* variables")
    message: dict[str, Any] = {
        "message_id": int(time.time() * 1000) % 2_000_000_000,
        "date": int(time.time()),
        "chat": {"id": user_id, "type": "private", "first_name": name},
        "from": {"id": user_id, "is_bot": False, "first_name": name, "language_code": "id"},
        "text": text,
    }
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    update = {"update_id": next(_update_ids), "message": message}
    return Signed("/webhooks/telegram", json.dumps(update).encode(), {
        "content-type": "application/json", "x-telegram-bot-api-secret-token": secret.get_secret_value()})


def twilio_message(settings: Settings, channel: str, text: str, phone: str, name: str, base_url: str) -> Signed:
    section = settings.channels.sms if channel == "sms" else settings.channels.whatsapp
    if not section.enabled or section.auth_token is None:
        raise ValueError(f"{channel} is not enabled: use config.local-channels.yml and set TWILIO_* variables")
    prefix = "whatsapp:" if channel == "whatsapp" else ""
    params = {
        "MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": section.account_sid or "", "From": prefix + phone,
        "To": prefix + (section.from_number or ""), "Body": text, "NumMedia": "0", "ApiVersion": "2010-04-01",
    }
    if channel == "whatsapp":
        params["ProfileName"] = name
        params["WaId"] = phone.lstrip("+")
    path = f"/webhooks/twilio/{channel}"
    public = (settings.server.public_base_url or base_url).rstrip("/")
    signature = RequestValidator(section.auth_token.get_secret_value()).compute_signature(public + path, params)
    return Signed(path, urlencode(params).encode(), {
        "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature})


def default_sapa_url(settings: Settings) -> str:
    """Where `sapa serve` with these settings answers on this machine (server.host and server.port). Never the
    public URL: a simulation is local, and must not reach a production server by default."""
    host = settings.server.host
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else (f"[{host}]" if ":" in host else host)
    return f"http://{host}:{settings.server.port}"


def default_fake_url(settings: Settings, channel: str) -> str:
    """The fake providers the config sends this channel's API calls to (scheme, host and port of api_base_url)."""
    sections: dict[str, TelegramConfig | TwilioChannelConfig] = {
        "telegram": settings.channels.telegram, "sms": settings.channels.sms, "whatsapp": settings.channels.whatsapp}
    section = sections.get(channel)
    base = section.api_base_url if section is not None else None
    if base:
        parts = urlsplit(base)
        if parts.scheme and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}"
    return "http://127.0.0.1:8099"


def simulate(settings: Settings, channel: str, text: str, *, sender: str, name: str, sapa_url: str,
             fake_url: str, wait_s: float) -> tuple[int, list[dict[str, Any]]]:
    """Post the signed message; return Sapa's HTTP status and the sends the fake recorded after it."""
    if channel == "telegram":
        signed = telegram_update(settings, text, int(sender), name)
        provider = "telegram"
    else:
        signed = twilio_message(settings, channel, text, sender, name, sapa_url)
        provider = "twilio"
    with httpx.Client(timeout=10) as client:
        listing = client.get(f"{fake_url}/_fake/requests", params={"provider": provider}).json()["requests"]
        after = max((r["index"] for r in listing), default=-1)
        url = sapa_url.rstrip("/") + signed.path
        status = client.post(url, content=signed.body, headers=signed.headers).status_code
        seen: list[dict[str, Any]] = []
        quiet_since = time.monotonic()
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and time.monotonic() - quiet_since < 2.5:
            time.sleep(0.25)
            fresh = client.get(f"{fake_url}/_fake/requests", params={"provider": provider, "after": after}).json()
            for request in fresh["requests"]:
                after = max(after, request["index"])
                if request["method"] in ("sendMessage", "Messages.create") and request.get("ok", True):
                    seen.append(request)
                    quiet_since = time.monotonic()
    return status, seen


def describe(request: dict[str, Any]) -> str:
    params = request["params"]
    if request["method"] == "sendMessage":
        keyboard = (params.get("reply_markup") or {}).get("inline_keyboard") or []
        buttons = [button["text"] for row in keyboard for button in row]
        return params.get("text", "") + (f"\n   [buttons: {' | '.join(buttons)}]" if buttons else "")
    if params.get("ContentSid"):
        return f"[template {params['ContentSid']} variables {params.get('ContentVariables')}]"
    return str(params.get("Body", ""))


# --- the agent desk: what Slack would send Sapa when an agent replies in a card's thread or presses a button


@dataclass(frozen=True)
class Target:
    conversation_id: int
    card_ts: str
    channel: str  # where the card is: the queue, or the VIP channel
    ticket: str | None


@dataclass(frozen=True)
class Happened:
    to_customer: list[str]
    in_thread: list[str]
    status: str


def _signing_secret(settings: Settings) -> str:
    secret = settings.slack.signing_secret
    if not settings.slack.enabled or secret is None:
        raise ValueError("slack is not enabled: use config.walkthrough.yml and set SLACK_BOT_TOKEN and "
                         "SLACK_SIGNING_SECRET")
    return secret.get_secret_value()


def slack_signed(settings: Settings, body: str, content_type: str) -> dict[str, str]:
    secret = _signing_secret(settings)
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    return {"content-type": content_type, "x-slack-request-timestamp": timestamp, "x-slack-signature": str(signature)}


def agent_id(settings: Settings, agent: str | None) -> str:
    """The Slack user id to act as: the one given, else the first agent in slack.agents."""
    _signing_secret(settings)
    if agent:
        return agent
    if not settings.slack.agents:
        raise ValueError("no agent: give --agent U0... or list one under slack.agents")
    return settings.slack.agents[0].slack_user_id


def find_target(settings: Settings, key: str, *, wait_s: float) -> Target:
    """TKT-000123 (its conversation) or a conversation id, with its card's ts; waits for a card still queued."""
    database = create_database(settings.database.url)
    deadline = time.monotonic() + wait_s
    try:
        while True:
            with database.unit_of_work(read_only=True) as session:
                digits = key.upper().removeprefix("TKT-").lstrip("#")
                if not is_ascii_number(digits):
                    raise ValueError(f"{key}: give a ticket (TKT-000123) or a conversation id (12)")
                ticket = None
                if key.upper().startswith("TKT-"):
                    ticket = session.get(Ticket, int(digits))
                    if ticket is None or ticket.conversation_id is None:
                        raise ValueError(f"no ticket {key} with a conversation in {settings.database.url}")
                    conversation = session.get(Conversation, ticket.conversation_id)
                else:
                    conversation = session.get(Conversation, int(digits))
                if conversation is None:
                    raise ValueError(f"no conversation {key} in {settings.database.url}")
                if conversation.desk_ts:
                    return Target(conversation.id, conversation.desk_ts,
                                  conversation.desk_channel or settings.slack.queue_channel,
                                  key.upper() if ticket else None)
            if time.monotonic() >= deadline:
                raise ValueError(f"conversation {conversation.id} has no Slack card yet: it was never handed to an "
                                 "agent, or slack was not enabled then")
            time.sleep(0.25)
    finally:
        database.dispose()


def _marks(settings: Settings) -> tuple[int, int]:
    database = create_database(settings.database.url)
    try:
        with database.unit_of_work(read_only=True) as session:
            message = session.execute(select(Message.id).order_by(Message.id.desc()).limit(1)).scalar()
            outbox = session.execute(select(OutboxItem.id).order_by(OutboxItem.id.desc()).limit(1)).scalar()
            return int(message or 0), int(outbox or 0)
    finally:
        database.dispose()


def _since(settings: Settings, conversation_id: int, marks: tuple[int, int]) -> Happened:
    database = create_database(settings.database.url)
    try:
        with database.unit_of_work(read_only=True) as session:
            conversation = session.get_one(Conversation, conversation_id)
            messages = session.execute(
                select(Message).where(Message.customer_id == conversation.customer_id, Message.id > marks[0],
                                      Message.direction == "out").order_by(Message.id)).scalars()
            notes = session.execute(
                select(OutboxItem).where(OutboxItem.conversation_id == conversation_id, OutboxItem.id > marks[1],
                                         OutboxItem.channel == "slack").order_by(OutboxItem.id)).scalars()
            return Happened([m.text or "" for m in messages],
                            [str(n.payload.get("text", "")) for n in notes
                             if (n.payload.get("options") or {}).get("thread_of")],
                            conversation.status)
    finally:
        database.dispose()


def _post_and_watch(settings: Settings, target: Target, sapa_url: str, body: str, content_type: str,
                    wait_s: float) -> tuple[int, Happened]:
    marks = _marks(settings)
    with httpx.Client(timeout=10) as client:
        status = client.post(sapa_url.rstrip("/") + "/slack/events", content=body,
                             headers=slack_signed(settings, body, content_type)).status_code
    happened = Happened([], [], "")
    quiet_since = time.monotonic()
    deadline = time.monotonic() + wait_s
    while status == 200 and time.monotonic() < deadline and time.monotonic() - quiet_since < 2.5:
        time.sleep(0.25)
        now = _since(settings, target.conversation_id, marks)
        if (len(now.to_customer), len(now.in_thread)) != (len(happened.to_customer), len(happened.in_thread)):
            quiet_since = time.monotonic()
        happened = now
    return status, happened


def agent_reply(settings: Settings, target: Target, text: str, *, agent: str, sapa_url: str,
                wait_s: float) -> tuple[int, Happened]:
    """An agent writes TEXT in the card's thread: Slack's Events API message event, signed."""
    ts = f"{time.time():.6f}"
    event = {"type": "message", "channel": target.channel, "user": agent, "text": text, "ts": ts,
             "thread_ts": target.card_ts, "event_ts": ts, "channel_type": "channel"}
    body = json.dumps({"token": "simulated", "team_id": "T0SAPA", "api_app_id": "A0SAPA", "type": "event_callback",
                       "event_id": "Ev" + uuid.uuid4().hex[:16].upper(), "event_time": int(time.time()),
                       "event": event})
    return _post_and_watch(settings, target, sapa_url, body, "application/json", wait_s)


def agent_press(settings: Settings, target: Target, action: str, *, agent: str, sapa_url: str,
                wait_s: float) -> tuple[int, Happened]:
    """An agent presses a card button (claim, resolve, escalate, back_to_bot): Slack's block_actions, signed."""
    channel = target.channel
    payload = {"type": "block_actions", "user": {"id": agent, "username": agent, "team_id": "T0SAPA"},
               "api_app_id": "A0SAPA", "token": "simulated", "trigger_id": "trig-" + uuid.uuid4().hex[:12],
               "team": {"id": "T0SAPA", "domain": "sapa"}, "channel": {"id": channel, "name": "queue"},
               "container": {"type": "message", "message_ts": target.card_ts, "channel_id": channel},
               "message": {"type": "message", "ts": target.card_ts, "text": "card"},
               "response_url": "https://hooks.slack.com/actions/T0SAPA/1/simulated",
               "actions": [{"type": "button", "action_id": f"sapa_{action}", "block_id": "actions",
                            "value": str(target.conversation_id), "action_ts": f"{time.time():.6f}",
                            "text": {"type": "plain_text", "text": action}}]}
    body = urlencode({"payload": json.dumps(payload)})
    return _post_and_watch(settings, target, sapa_url, body, "application/x-www-form-urlencoded", wait_s)
