"""Customers on Telegram, SMS and WhatsApp as test fixtures: signed requests in the providers' shapes
to the real webhook endpoints, and what the fake provider then received from the real SDKs."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi.testclient import TestClient
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from bot.app import Sapa, build
from bot.config import Settings, settings_from_mapping
from bot.devtools.fake_providers import FakeProviders, Recorded
from store.models import OutboxItem

PUBLIC = "https://sapa.example.test"
TELEGRAM_SECRET = "test-webhook-secret"
TWILIO_TOKEN = "test-twilio-auth-token"
TWILIO_SID = "AC" + "1" * 32
SECRETS = {
    "TELEGRAM_BOT_TOKEN": "123456:TEST-token-for-the-fake",
    "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET,
    "TWILIO_ACCOUNT_SID": TWILIO_SID,
    "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
}
REPLY_TEMPLATE = "HX" + "a" * 32
_ids = itertools.count(1000)


def channel_config(fakes: FakeProviders, *, whatsapp_templates: bool = True) -> dict[str, Any]:
    templates = {"reply": {"id": {"content_sid": REPLY_TEMPLATE, "variables": ["name"]}}} if whatsapp_templates else {}
    return {
        "telegram": {"enabled": True, "api_base_url": fakes.telegram_base_url},
        "sms": {"enabled": True, "from_number": "+15005550006", "messages_per_second": 1,
                "api_base_url": fakes.twilio_base_url},
        "whatsapp": {"enabled": True, "from_number": "+14155238886", "messages_per_second": 80,
                     "api_base_url": fakes.twilio_base_url, "templates": templates},
    }


def provider_settings(db_url: str, fakes: FakeProviders, *, whatsapp_templates: bool = True) -> Settings:
    """config.yml with Telegram, SMS and WhatsApp on the fake providers (no Slack desk)."""
    import yaml

    raw = yaml.safe_load((Path(__file__).resolve().parents[2] / "config.yml").read_text())
    raw["server"]["public_base_url"] = PUBLIC
    raw["channels"].update(channel_config(fakes, whatsapp_templates=whatsapp_templates))
    raw["database"]["url"] = db_url
    return settings_from_mapping(raw, SECRETS, "test config")


def provider_sapa(db_url: str, fakes: FakeProviders, clock: Any, interpreter: Any, database: Any) -> Iterator[Sapa]:
    """The body of a module's `sapa` fixture for channel tests: `yield from provider_sapa(...)`."""
    sapa = build(provider_settings(db_url, fakes), clock=clock, interpreter=interpreter, database=database,
                 model_cache=None)
    yield sapa
    sapa.stop_background()


class ProviderCustomer:
    """One person writing on one channel."""

    def __init__(self, client: TestClient, fakes: FakeProviders, channel: str, address: str,
                 name: str = "Budi") -> None:
        self.client, self.fakes, self.channel, self.address, self.name = client, fakes, channel, address, name
        self.provider = "telegram" if channel == "telegram" else "twilio"

    # --- inbound ---------------------------------------------------------------------------------

    def request(self, text: str, *, message_id: str | None = None, extra: dict[str, Any] | None = None
                ) -> tuple[str, bytes, dict[str, str]]:
        if self.channel == "telegram":
            number = int(message_id or next(_ids))
            user = {"id": int(self.address), "is_bot": False, "first_name": self.name, "language_code": "id"}
            update: dict[str, Any] = {"update_id": number, "message": {
                "message_id": number, "date": int(time.time()), "from": user,
                "chat": {"id": int(self.address), "type": "private", "first_name": self.name}, "text": text}}
            update["message"].update(extra or {})
            return "/webhooks/telegram", json.dumps(update).encode(), {
                "content-type": "application/json", "x-telegram-bot-api-secret-token": TELEGRAM_SECRET}
        prefix = "whatsapp:" if self.channel == "whatsapp" else ""
        params = {"MessageSid": message_id or "SM" + uuid.uuid4().hex, "AccountSid": TWILIO_SID,
                  "From": prefix + self.address, "To": prefix + "+15005550006", "Body": text, "NumMedia": "0"}
        if self.channel == "whatsapp":
            params["ProfileName"] = self.name
        params.update(extra or {})
        path = f"/webhooks/twilio/{self.channel}"
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC + path, params)
        return path, urlencode(params).encode(), {
            "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature}

    def write(self, text: str, **kwargs: Any) -> int:
        path, body, headers = self.request(text, **kwargs)
        return self.client.post(path, content=body, headers=headers).status_code

    # --- what reached the provider -----------------------------------------------------------------

    def received(self) -> list[Recorded]:
        def mine(request: Recorded) -> bool:
            if self.provider == "telegram":
                return str(request.params.get("chat_id")) == self.address
            to = str(request.params.get("To", ""))
            return to == ("whatsapp:" if self.channel == "whatsapp" else "") + self.address

        return [r for r in self.fakes.sent(self.provider) if mine(r)]

    def texts(self) -> list[str]:
        key = "text" if self.provider == "telegram" else "Body"
        return [str(r.params.get(key, "")) for r in self.received()]

    def report(self, sid: str, status: str, error_code: str | None = None) -> int:
        """Twilio's signed status callback for a message Sapa sent this person (delivered, read, failed...)."""
        path, body, headers = self.status_request(sid, status, error_code)
        return self.client.post(path, content=body, headers=headers).status_code

    def status_request(self, sid: str, status: str, error_code: str | None = None
                       ) -> tuple[str, bytes, dict[str, str]]:
        """The path, body and headers of that callback, signed as Twilio signs it."""
        prefix = "whatsapp:" if self.channel == "whatsapp" else ""
        sender = "+14155238886" if self.channel == "whatsapp" else "+15005550006"
        params = {"MessageSid": sid, "SmsSid": sid, "AccountSid": TWILIO_SID, "MessageStatus": status,
                  "From": prefix + sender, "To": prefix + self.address, "ApiVersion": "2010-04-01"}
        if error_code:
            params["ErrorCode"] = error_code
        path = "/webhooks/twilio/status"
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC + path, params)
        return path, urlencode(params).encode(), {"content-type": "application/x-www-form-urlencoded",
                                                  "x-twilio-signature": signature}


def drain(sapa: Any, clock: Any, rounds: int = 40) -> None:
    """Run the outbox until nothing is waiting, moving the clock to each retry or rate-limit slot."""
    for _ in range(rounds):
        sapa.dispatcher.run_once()
        with sapa.database.unit_of_work(read_only=True) as session:
            waiting = [r.next_attempt_at for r in session.execute(
                select(OutboxItem).where(OutboxItem.status.in_(("pending", "sending")))).scalars()]
        if not waiting:
            return
        clock.set(max(clock.now(), min(waiting)) + timedelta(milliseconds=1))
    raise AssertionError("the outbox did not drain")


def settle_outbox(sapa: Any, passes: int = 2000, *, tasks: bool = False) -> None:
    """Run the dispatcher (and, with `tasks`, the due scheduled work first), moving the injected ManualClock to the
    next due row, until nothing is left to send. Stricter than `drain`: a row left `sending` (no crash happened
    here) fails the test, and it runs as many passes as faults and backoffs need."""
    for _ in range(passes):
        if tasks:
            sapa.runner.run_due()
        sapa.dispatcher.run_once()
        with sapa.database.unit_of_work(read_only=True) as session:
            due = session.execute(select(OutboxItem.next_attempt_at).where(OutboxItem.status == "pending")
                                  .order_by(OutboxItem.next_attempt_at).limit(1)).scalar()
            busy = session.execute(select(OutboxItem.id).where(OutboxItem.status == "sending").limit(1)).scalar()
        assert busy is None, "a row was left `sending` without a crash"
        if due is None:
            return
        sapa.clock.set(max(sapa.clock.now(), due) + timedelta(milliseconds=1))
    raise AssertionError("the outbox did not drain")


def queue_outbound(sapa: Any, channel: str, address: str, text: str, **options: Any) -> int:
    """A message to a customer queued as the pipeline queues a reply (`options`: add_outbound's, e.g. purpose),
    with WhatsApp's 24-hour window open so the text itself goes; the outbox row's id."""
    from store.conversations import continue_or_open
    from store.customers import get_or_create_identity
    from store.messages import add_outbound

    now = sapa.clock.now()
    with sapa.database.unit_of_work() as session:
        phone = address if address.startswith("+") else None
        identity, _ = get_or_create_identity(session, channel, address, now=now, phone=phone)
        identity.last_inbound_at = now
        conversation, _ = continue_or_open(session, identity, now=now, language="id",
                                           idle_close=timedelta(minutes=30))
        message = add_outbound(session, conversation, recipient=address, text=text, now=now, **options)
        session.flush()
        return int(session.execute(select(OutboxItem.id).where(OutboxItem.message_id == message.id)).scalar_one())

