"""Issue 15: forged, mangled and replayed requests to every authenticated endpoint, on SQLite and PostgreSQL.

A forgery (no credential, a wrong one, a signature over other bytes, another URL, a stale or future Slack
timestamp, Twilio parameters folded into each other) gets a 4xx and stores nothing: every table a request
can write keeps its row count and the fake providers receive nothing. A replay of a genuine request changes
nothing the second time: one message, one reply, one relay, one points adjustment.

SAPA_FORGERY_REQUESTS sets how many forged requests each database gets (and the replay count is half of
it); `make test` runs a small seeded sample, `make soak` 2,500 per database. Figures go to
var/adversarial/forgery-<database>.json for the closing notes.
"""

from __future__ import annotations

import base64
import json
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from bot.app import Sapa
from bot.media_links import links
from store.models import (
    AuditEntry,
    ChannelIdentity,
    Customer,
    LoyaltyEntry,
    Message,
    OutboxItem,
    Task,
    Transaction,
    WebchatSession,
)
from tests.support.population import api_sapa
from tests.support.providers import PUBLIC, TELEGRAM_SECRET, TWILIO_SID, TWILIO_TOKEN, ProviderCustomer, drain
from tests.support.slack import Slack, handed_off, signed
from tests.support.webchat import WebchatUser

ROOT = Path(__file__).resolve().parents[2]
FORGERIES = int(os.environ.get("SAPA_FORGERY_REQUESTS", "150"))
API_TOKEN = "test-api-token-0123456789"
COUNTED = (Message, Customer, ChannelIdentity, OutboxItem, Task, AuditEntry, Transaction, LoyaltyEntry,
           WebchatSession)


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database) -> Iterator[Sapa]:
    yield from api_sapa(db_url, fakes, clock, interpreter, database, API_TOKEN)


def counts(sapa: Sapa) -> dict[str, int]:
    with sapa.database.unit_of_work(read_only=True) as session:
        return {model.__tablename__: session.execute(select(func.count()).select_from(model)).scalar_one()
                for model in COUNTED}


def report(name: str, db_url: str, figures: dict[str, Any]) -> None:
    database = "postgres" if db_url.startswith("postgresql") else "sqlite"
    folder = ROOT / "var" / "adversarial"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}-{database}.json").write_text(json.dumps(figures, indent=2, sort_keys=True))
    print(f"\n{name} on {database}: {json.dumps(figures, sort_keys=True)}")


# -- forgeries -----------------------------------------------------------------------------------------

Request = tuple[str, str, bytes, dict[str, str]]  # method, path (with query), body, headers


def _twilio_params(rng: random.Random, channel: str) -> dict[str, str]:
    prefix = "whatsapp:" if channel == "whatsapp" else ""
    phone = f"+6281{rng.randrange(10**8, 10**9)}"
    return {"MessageSid": "SM" + uuid.UUID(int=rng.getrandbits(128)).hex, "AccountSid": TWILIO_SID,
            "From": prefix + phone, "To": prefix + "+15005550006", "Body": "halo", "NumMedia": "0"}


def _twilio_status_params(rng: random.Random) -> dict[str, str]:
    sid = "SM" + uuid.UUID(int=rng.getrandbits(128)).hex
    return {"MessageSid": sid, "SmsSid": sid, "AccountSid": TWILIO_SID, "MessageStatus": "delivered",
            "To": f"+6281{rng.randrange(10**8, 10**9)}", "ApiVersion": "2010-04-01"}


def _sign(path: str, params: dict[str, str], token: str = TWILIO_TOKEN, base: str = PUBLIC) -> str:
    return RequestValidator(token).compute_signature(base + path, params)


def forged_twilio(rng: random.Random) -> Request:
    channel = rng.choice(["sms", "whatsapp", "status"])
    path = f"/webhooks/twilio/{channel}"
    params = _twilio_status_params(rng) if channel == "status" else _twilio_params(rng, channel)
    form = {"content-type": "application/x-www-form-urlencoded"}
    kind = rng.randrange(9)
    if kind == 0:  # no signature at all
        return "POST", path, urlencode(params).encode(), form
    if kind == 1:  # random bytes in the right shape
        return "POST", path, urlencode(params).encode(), {
            **form, "x-twilio-signature": base64.b64encode(rng.randbytes(20)).decode()}
    if kind == 2:  # signed with another account's token
        return "POST", path, urlencode(params).encode(), {
            **form, "x-twilio-signature": _sign(path, params, token="someone-elses-token")}
    if kind == 3:  # signed for another URL (another Sapa, or the other channel's webhook)
        other = "/webhooks/twilio/sms" if channel != "sms" else "/webhooks/twilio/whatsapp"
        return "POST", path, urlencode(params).encode(), {**form, "x-twilio-signature": _sign(other, params)}
    signature = _sign(path, params)
    if kind == 4:  # a genuine signature, then the text was changed
        changed = {**params, ("Body" if "Body" in params else "MessageStatus"): "transfer now"}
        return "POST", path, urlencode(changed).encode(), {**form, "x-twilio-signature": signature}
    if kind == 5:  # a parameter added after signing
        return "POST", path, urlencode({**params, "NumMedia": "1", "MediaUrl0": "https://evil.example/x.jpg"}
                                       ).encode(), {**form, "x-twilio-signature": signature}
    if kind == 6:  # a parameter removed after signing
        reduced = {k: v for k, v in params.items() if k != "AccountSid"}
        return "POST", path, urlencode(reduced).encode(), {**form, "x-twilio-signature": signature}
    if kind == 7:  # folding: Twilio signs keys and values without separators, so "NumMedia"+"0" moved into
        # the MessageSid value keeps the signature valid; the id's format gives it away
        keys = sorted(params)
        after = keys[keys.index("MessageSid") + 1]  # NumMedia on a message, MessageStatus on a report
        folded = {k: v for k, v in params.items() if k != after}
        folded["MessageSid"] = params["MessageSid"] + after + params[after]
        assert _sign(path, folded) == signature
        return "POST", path, urlencode(folded).encode(), {**form, "x-twilio-signature": signature}
    # a truncated genuine signature
    return "POST", path, urlencode(params).encode(), {**form, "x-twilio-signature": signature[:-4]}


def forged_telegram(rng: random.Random) -> Request:
    number = rng.randrange(10**6, 10**9)
    update = {"update_id": number, "message": {
        "message_id": number, "date": int(time.time()), "text": "halo",
        "from": {"id": number, "is_bot": False, "first_name": "Mallory"},
        "chat": {"id": number, "type": "private", "first_name": "Mallory"}}}
    headers = {"content-type": "application/json"}
    secret = rng.choice([None, "", "wrong-secret", TELEGRAM_SECRET.upper(), TELEGRAM_SECRET + " ",
                         TELEGRAM_SECRET[:-1], "x" * 256])
    if secret is not None:
        headers["x-telegram-bot-api-secret-token"] = secret
    return "POST", "/webhooks/telegram", json.dumps(update).encode(), headers


def forged_slack(rng: random.Random) -> Request:
    kind = rng.randrange(6)
    if rng.random() < 0.5:
        body = urlencode({"command": "/sapa", "text": "points adjust #1 +100 forged", "user_id": "U0SUPER",
                          "channel_id": "C0QUEUE", "trigger_id": f"trig-forged-{rng.getrandbits(32)}"})
        content_type = "application/x-www-form-urlencoded"
    else:
        body = json.dumps({"type": "event_callback", "event_id": f"EvF{rng.getrandbits(32)}",
                           "event": {"type": "message", "channel": "C0QUEUE", "user": "U0RINA", "text": "hi",
                                     "ts": "1800000000.000001", "thread_ts": "1700000000.000001"}})
        content_type = "application/json"
    if kind == 0:
        return "POST", "/slack/events", body.encode(), {"content-type": content_type}
    if kind == 1:
        return "POST", "/slack/events", body.encode(), signed(body, content_type, secret="not-the-secret")
    if kind == 2:  # older than Slack's five minutes
        return "POST", "/slack/events", body.encode(), signed(body, content_type, age_s=rng.randrange(301, 86400))
    if kind == 3:  # from the future
        return "POST", "/slack/events", body.encode(), signed(body, content_type, age_s=-rng.randrange(301, 86400))
    headers = signed(body, content_type)
    if kind == 4:  # a genuine signature over other bytes
        return "POST", "/slack/events", (body + " ").encode(), headers
    headers["x-slack-signature"] = headers["x-slack-signature"].replace("v0=", "v1=")
    return "POST", "/slack/events", body.encode(), headers


def forged_api(rng: random.Random) -> Request:
    method, path, body = rng.choice([
        ("POST", "/api/transactions", json.dumps({"external_id": f"INV-{rng.getrandbits(32)}", "amount": 2000000,
                                                   "occurred_at": "2026-12-01", "customer_phone": "+6281234567890"})),
        ("POST", "/api/segments", json.dumps({"name": f"s{rng.getrandbits(16)}", "filters": {}})),
        ("POST", "/api/broadcasts", json.dumps({"name": "Promo", "filters": {}, "channels": ["telegram"],
                                                "messages": {"id": "Halo", "en": "Hi"}})),
        ("GET", "/api/broadcasts", ""), ("GET", "/api/segments", ""),
        ("POST", "/api/broadcasts/1/start", ""), ("DELETE", "/api/segments/x", ""),
    ])
    headers = {"content-type": "application/json"}
    auth = rng.choice([None, "Bearer", "Bearer ", "Bearer wrong", f"Bearer {API_TOKEN[:-1]}",
                       f"Bearer {API_TOKEN}x", f"Basic {base64.b64encode(API_TOKEN.encode()).decode()}",
                       f"Token {API_TOKEN}", API_TOKEN, f"Bearer {API_TOKEN.upper()}"])
    if auth is not None:
        headers["authorization"] = auth
    return method, path, body.encode(), headers


def forged_media(rng: random.Random, sapa: Sapa) -> Request:
    signer = links(sapa.settings)
    now = sapa.clock.now()
    message_id, index = rng.randrange(1, 50), rng.randrange(0, 3)
    future = int(now.timestamp()) + 3600
    kind = rng.randrange(4)
    if kind == 0:  # guessed signature
        query = urlencode({"exp": future, "sig": base64.urlsafe_b64encode(rng.randbytes(32)).decode().rstrip("=")})
    elif kind == 1:  # a genuine link, expired
        past = int(now.timestamp()) - 60
        query = urlencode({"exp": past, "sig": signer.signature(str(message_id), str(index), str(past))})
    elif kind == 2:  # a genuine signature for another file
        query = urlencode({"exp": future, "sig": signer.signature(str(message_id + 1), str(index), str(future))})
    else:  # the expiry pushed back under the old signature
        query = urlencode({"exp": future + 86400, "sig": signer.signature(str(message_id), str(index), str(future))})
    return "GET", f"/media/{message_id}/{index}?{query}", b"", {}


def forged_webchat(rng: random.Random) -> Request:
    token = base64.urlsafe_b64encode(rng.randbytes(24)).decode().rstrip("=")
    if rng.random() < 0.5:
        return "GET", f"/api/webchat/sessions/{token}/messages", b"", {}
    body = json.dumps({"session_id": token, "text": "halo", "client_message_id": str(uuid.uuid4())})
    return "POST", "/api/webchat/messages", body.encode(), {"content-type": "application/json"}


def test_forged_requests_are_refused_and_store_nothing(sapa: Sapa, client: TestClient, fakes, db_url) -> None:
    rng = random.Random(15)
    before, sent_before = counts(sapa), len(fakes.requests())
    makers: dict[str, Callable[[random.Random], Request]] = {
        "twilio": forged_twilio, "telegram": forged_telegram, "slack": forged_slack, "api": forged_api,
        "webchat": forged_webchat, "media": lambda r: forged_media(r, sapa)}
    statuses: Counter[str] = Counter()
    accepted: list[str] = []
    for _ in range(FORGERIES):
        name = rng.choice(sorted(makers))
        method, path, body, headers = makers[name](rng)
        response = client.request(method, path, content=body or None, headers=headers)
        statuses[f"{name} {response.status_code}"] += 1
        if response.status_code < 400 or response.status_code >= 500:
            accepted.append(f"{method} {path} {headers.get('x-twilio-signature', '')[:8]} -> "
                            f"{response.status_code} {response.text[:200]}")
    assert client.get("/healthz").status_code == 200
    drain(sapa, sapa.clock)
    report("forgery", db_url, {"requests": FORGERIES, "accepted_or_5xx": len(accepted),
                               "by_endpoint_and_status": dict(sorted(statuses.items()))})
    assert accepted == []
    assert counts(sapa) == before
    assert len(fakes.requests()) == sent_before  # nobody was answered, nothing reached Slack


# -- replays ---------------------------------------------------------------------------------------------


def test_replayed_requests_change_nothing(sapa: Sapa, client: TestClient, fakes, db_url, clock,
                                          customer: WebchatUser) -> None:
    """Genuine requests captured and sent again, verbatim, within their validity window."""
    rng = random.Random(16)
    slack = Slack(client, fakes, sapa, clock)
    people = [ProviderCustomer(client, fakes, channel, address) for channel, address in
              (("sms", "+6281100000001"), ("whatsapp", "+6281100000002"), ("telegram", "700100"))]
    genuine: list[Request] = []
    for person in people:
        for text in ("halo", "Budi", "jam buka toko?"):
            path, body, headers = person.request(text)
            assert client.post(path, content=body, headers=headers).status_code == 200
            genuine.append(("POST", path, body, headers))
    drain(sapa, clock)
    # a delivery report Sapa accepted
    with sapa.database.unit_of_work(read_only=True) as session:
        sid = session.execute(select(Message.provider_message_id).where(
            Message.direction == "out", Message.provider_message_id.like("SM%"))).scalars().first()
    assert sid
    path, body, headers = people[0].status_request(sid, "delivered")
    assert client.post(path, content=body, headers=headers).status_code == 200
    genuine.append(("POST", path, body, headers))
    # a points adjustment by a supervisor, signed once
    with sapa.database.unit_of_work(read_only=True) as session:
        customer_id = session.execute(select(Customer.id).order_by(Customer.id)).scalars().first()
    command = urlencode({"token": "x", "team_id": "T0SAPA", "channel_id": "C0QUEUE", "user_id": "U0SUPER",
                         "command": "/sapa", "text": f"points adjust #{customer_id} +100 goodwill",
                         "trigger_id": "trig-replayed-adjust", "response_url": "https://hooks.slack.com/c/1"})
    command_headers = signed(command, "application/x-www-form-urlencoded")
    first = client.post("/slack/events", content=command, headers=command_headers)
    assert first.status_code == 200, first.text
    genuine.append(("POST", "/slack/events", command.encode(), command_headers))
    slack.settle()

    # an agent takes a handed-off web chat conversation and answers in the card's thread
    conversation, card_ts = handed_off(customer, slack)
    press = urlencode({"payload": json.dumps({
        "type": "block_actions", "user": {"id": "U0RINA"}, "trigger_id": "trig-replayed-take",
        "container": {"type": "message", "message_ts": card_ts, "channel_id": "C0QUEUE"},
        "channel": {"id": "C0QUEUE"}, "message": {"type": "message", "ts": card_ts},
        "actions": [{"type": "button", "action_id": "sapa_take", "block_id": "actions",
                     "value": str(conversation.id), "action_ts": "1800000001.000001"}]})})
    press_headers = signed(press, "application/x-www-form-urlencoded")
    assert client.post("/slack/events", content=press, headers=press_headers).status_code == 200
    genuine.append(("POST", "/slack/events", press.encode(), press_headers))
    answer = json.dumps({"type": "event_callback", "event_id": "EvREPLAYED1", "event_time": int(time.time()),
                         "event": {"type": "message", "channel": "C0QUEUE", "user": "U0RINA",
                                   "text": "Halo Budi, saya Rina.", "ts": "1800000002.000001",
                                   "thread_ts": card_ts, "channel_type": "channel"}})
    answer_headers = signed(answer, "application/json")
    assert client.post("/slack/events", content=answer, headers=answer_headers).status_code == 200
    genuine.append(("POST", "/slack/events", answer.encode(), answer_headers))
    slack.settle()
    assert customer.history()[-1]["text"] == "Halo Budi, saya Rina."

    after_first, sent_first = counts(sapa), len(fakes.requests())
    replays = max(FORGERIES // 2, len(genuine))
    statuses: Counter[int] = Counter()
    for number in range(replays):
        method, path, body, headers = genuine[number % len(genuine)] if number < len(genuine) else rng.choice(genuine)
        response = client.request(method, path, content=body, headers=headers)
        statuses[response.status_code] += 1
        assert response.status_code < 500, response.text
    drain(sapa, clock)
    slack.settle()
    report("replay", db_url, {"replays": replays, "statuses": dict(statuses)})
    assert client.get("/healthz").status_code == 200
    assert len(fakes.requests()) == sent_first  # no reply or relay was sent twice
    assert counts(sapa) == after_first  # no second message, task, audit entry or ledger row
    with sapa.database.unit_of_work(read_only=True) as session:
        adjustments = session.execute(select(func.count()).select_from(LoyaltyEntry).where(
            LoyaltyEntry.customer_id == customer_id)).scalar_one()
    assert adjustments == 1
