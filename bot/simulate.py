"""`sapa simulate`: send a signed inbound message to a running Sapa, print what the fake provider got.

It signs exactly as each provider does (Telegram's secret header, Twilio's X-Twilio-Signature over
the public URL), so the request takes the same path as a real one.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from twilio.request_validator import RequestValidator

from bot.config import Settings

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
