"""A Slack workspace for tests: signed Slack requests into Sapa, and what Sapa posted to the fake Slack.

Shared by the desk tests and the SOP scenario tests (SLA escalations, requests, surveys). Each test
module declares its own `fakes`, `sapa` and `slack` fixtures with `desk_settings` and `Slack`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import yaml
from fastapi.testclient import TestClient
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import select

from bot.app import Sapa, build
from bot.config import Settings, settings_from_mapping
from bot.devtools.fake_providers import FakeProviders
from store.models import Conversation
from tests.support.providers import SECRETS as PROVIDER_SECRETS
from tests.support.providers import channel_config, drain
from tests.support.webchat import WebchatUser

ROOT = Path(__file__).resolve().parents[2]
SIGNING_SECRET = "test-slack-signing-secret"
SECRETS = {**PROVIDER_SECRETS, "SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_SIGNING_SECRET": SIGNING_SECRET}
AGENTS = [
    {"slack_user_id": "U0RINA", "name": "Rina", "role": "customer_service"},
    {"slack_user_id": "U0SUPER", "name": "Sari", "role": "supervisor"},
    {"slack_user_id": "U0AMGR", "name": "Andi", "role": "account_manager"},
    {"slack_user_id": "U0BOSS", "name": "Bu Ratna", "role": "management"},
]


def desk_settings(db_url: str, fakes: FakeProviders) -> Settings:
    """config.yml with every channel on the fake providers and the Slack desk enabled."""
    raw = yaml.safe_load((ROOT / "config.yml").read_text())
    raw["server"]["public_base_url"] = "https://sapa.example.test"
    raw["channels"].update(channel_config(fakes))
    raw["slack"] = {"enabled": True, "api_base_url": fakes.slack_base_url, "queue_channel": "C0QUEUE",
                    "vip_channel": "C0VIP", "escalation_channel": "C0ESC", "operations_channel": "C0OPS",
                    "agents": AGENTS}
    raw["database"]["url"] = db_url
    return settings_from_mapping(raw, SECRETS, "test")


def signed(body: str, content_type: str, *, age_s: int = 0, secret: str = SIGNING_SECRET) -> dict[str, str]:
    timestamp = str(int(time.time()) - age_s)
    return {"content-type": content_type, "x-slack-request-timestamp": timestamp,
            "x-slack-signature": SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)}


class Slack:
    """An agent workspace: what Slack would send Sapa, and what Sapa posted to Slack."""

    def __init__(self, client: TestClient, fakes: FakeProviders, sapa: Sapa, clock: Any) -> None:
        self.client, self.fakes, self.sapa, self.clock = client, fakes, sapa, clock
        self.events = 0

    def settle(self) -> None:
        """Slack got its quick answer; now the queued work and the outbox run."""
        for _ in range(5):
            self.sapa.runner.run_due()
            drain(self.sapa, self.clock)

    def posts(self, channel: str | None = None) -> list[dict[str, Any]]:
        return [r.params for r in self.fakes.sent("slack") if channel is None or r.params.get("channel") == channel]

    def card(self, channel: str = "C0QUEUE") -> dict[str, Any]:
        return next(p for p in self.posts(channel) if p.get("blocks") and not p.get("thread_ts"))

    def thread(self, ts: str) -> list[str]:
        return [p["text"] for p in self.posts() if p.get("thread_ts") == ts]

    def card_channel(self, *, ts: str | None = None, conversation_id: int | None = None) -> str:
        """The channel of the card with this ts (or of this conversation): where Slack says the agent was."""
        if self.sapa is None:  # a Sapa in another process: its cards are in the queue
            return "C0QUEUE"
        with self.sapa.database.unit_of_work(read_only=True) as session:
            found = (session.get(Conversation, conversation_id) if conversation_id is not None else
                     session.execute(select(Conversation).where(Conversation.desk_ts == ts)).scalars().first())
        return (found.desk_channel if found is not None else None) or "C0QUEUE"

    def reply(self, user: str, thread_ts: str, text: str, *, event_id: str | None = None, retry: int = 0,
              extra: dict[str, Any] | None = None) -> int:
        self.events += 1
        ts = f"1800000000.{self.events:06d}"
        event = {"type": "message", "channel": self.card_channel(ts=thread_ts), "user": user, "text": text, "ts": ts,
                 "thread_ts": thread_ts, "event_ts": ts, "channel_type": "channel"}
        event.update(extra or {})
        body = json.dumps({"token": "x", "team_id": "T0SAPA", "api_app_id": "A0SAPA", "type": "event_callback",
                           "event_id": event_id or f"Ev{self.events:08d}", "event_time": int(time.time()),
                           "event": event})
        headers = signed(body, "application/json")
        if retry:
            headers.update({"x-slack-retry-num": str(retry), "x-slack-retry-reason": "http_timeout"})
        return self.client.post("/slack/events", content=body, headers=headers).status_code

    def press(self, user: str, action: str, conversation_id: int, message_ts: str) -> int:
        self.events += 1
        channel = self.card_channel(conversation_id=conversation_id)  # the card's: VIP cards are in the VIP channel
        payload = {"type": "block_actions", "user": {"id": user, "username": user, "team_id": "T0SAPA"},
                   "api_app_id": "A0SAPA", "token": "x", "trigger_id": f"trig-{self.events}",
                   "team": {"id": "T0SAPA", "domain": "sapa"}, "channel": {"id": channel, "name": "cs-queue"},
                   "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
                   "message": {"type": "message", "ts": message_ts, "text": "card"},
                   "response_url": "https://hooks.slack.com/actions/T0SAPA/1/x",
                   "actions": [{"type": "button", "action_id": f"sapa_{action}", "block_id": "actions",
                                "value": str(conversation_id), "action_ts": f"1800000001.{self.events:06d}",
                                "text": {"type": "plain_text", "text": action}}]}
        body = urlencode({"payload": json.dumps(payload)})
        return self.client.post("/slack/events", content=body,
                                headers=signed(body, "application/x-www-form-urlencoded")).status_code

    def command(self, user: str, text: str) -> dict[str, Any]:
        self.events += 1  # each command its own trigger_id, as in Slack: the same one is a replay
        body = urlencode({"token": "x", "team_id": "T0SAPA", "team_domain": "sapa", "channel_id": "C0QUEUE",
                          "channel_name": "cs-queue", "user_id": user, "user_name": user, "command": "/sapa",
                          "text": text, "api_app_id": "A0SAPA", "response_url": "https://hooks.slack.com/commands/1",
                          "trigger_id": f"trig-cmd-{self.events}"})
        response = self.client.post("/slack/events", content=body,
                                    headers=signed(body, "application/x-www-form-urlencoded"))
        assert response.status_code == 200, response.text
        return dict(response.json())


def conversation_of(sapa: Sapa) -> Conversation:
    with sapa.database.unit_of_work(read_only=True) as session:
        return session.execute(select(Conversation).order_by(Conversation.id.desc())).scalars().first()


def handed_off(customer: WebchatUser, slack: Slack) -> tuple[Conversation, str]:
    customer.say("halo")
    customer.say("Budi")
    customer.say("saya mau bicara dengan petugas")
    slack.settle()
    conversation = conversation_of(slack.sapa)
    assert conversation.desk_ts
    return conversation, conversation.desk_ts


def complained(customer: WebchatUser, slack: Slack, complaint: str) -> Conversation:
    customer.say("halo")
    customer.say("Budi")
    customer.say(complaint)
    slack.settle()
    return conversation_of(slack.sapa)




def desk_sapa(settings: Settings, clock: Any, interpreter: Any, database: Any) -> Iterator[Sapa]:
    """The body of a module's `sapa` fixture for desk tests: `yield from desk_sapa(desk_settings(...), ...)`."""
    sapa = build(settings, clock=clock, interpreter=interpreter, database=database, model_cache=None)
    yield sapa
    sapa.stop_background()
