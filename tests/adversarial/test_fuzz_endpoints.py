"""Issue 15: property-based fuzzing of every HTTP endpoint, on SQLite and PostgreSQL: no hostile body is a 5xx.

Each route of the app (listed from `app.routes`, so a new endpoint without a strategy here fails
`test_every_route_has_a_fuzz_strategy`) gets genuine credentials (Twilio signature, Telegram secret header,
Slack signature, bearer token, signed media links) and hostile content: deeply nested JSON, lone UTF-16
surrogates, NUL bytes, integers past 64 bits, dates outside any calendar, over-long strings, non-ASCII digits
("²"), empty or wrongly typed arrays and objects, random JSON, random form fields and oversize bodies. Every
answer must be below 500, and /healthz answers 200 afterwards.

Seeded (Hypothesis `derandomize`), so CI sees the same requests every run. SAPA_FUZZ_EXAMPLES is the number of
requests per database, shared evenly across the routes (default 600: about six seconds per database; `make soak`
sets 5,000 per database, 10,000 in all). Figures (requests, status classes per route, the first 5xx payloads) go to
var/adversarial/fuzz-<database>.json (and are printed, shown with `pytest -s`).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import delete
from starlette.routing import Mount, Route
from twilio.request_validator import RequestValidator

from bot.app import Sapa, build, create_app
from bot.console import auth, inbox_routes
from bot.media_links import links
from handlers.permissions import ROLES
from store import staff as staff_store
from store.models import LoginFailure
from tests.console.conftest import CHEAP, csrf
from tests.support.population import broadcast_settings
from tests.support.providers import PUBLIC, TELEGRAM_SECRET, TWILIO_SID, TWILIO_TOKEN
from tests.support.slack import signed

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("SAPA_FUZZ_EXAMPLES", "600"))
API_TOKEN = "test-api-token-0123456789"
AUTH = {"authorization": f"Bearer {API_TOKEN}"}
FUZZ_PASSWORD = "fuzz-admin-password-long-enough"


@pytest.fixture(autouse=True)
def short_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    """The console's live streams run for minutes in a browser; here each ends after a few quick polls, and
    Argon2 runs with cheap parameters (one sign-in per console route)."""
    monkeypatch.setattr(inbox_routes, "POLL_S", 0.005)
    monkeypatch.setattr(inbox_routes, "STREAM_MAX_S", 0.02)
    monkeypatch.setattr(auth, "HASHER", CHEAP)


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database) -> Iterator[Sapa]:
    settings = broadcast_settings(db_url, fakes, api_token=API_TOKEN)
    webchat = settings.channels.webchat
    assert webchat is not None
    # The session throttle has its own test; here it would only turn most session requests into 429s.
    channels = settings.channels.model_copy(update={"webchat": webchat.model_copy(
        update={"sessions_per_minute_per_address": 1_000_000})})
    sapa = build(settings.model_copy(update={"channels": channels}), clock=clock, interpreter=interpreter,
                 database=database, model_cache=None)
    yield sapa
    sapa.stop_background()


@pytest.fixture
def client(sapa: Sapa) -> Iterator[TestClient]:
    # A server exception becomes the 500 the server would answer, so it is counted instead of ending the run.
    # https, as behind the public URL: the console sets its cookies Secure there.
    with TestClient(create_app(sapa, background=False), raise_server_exceptions=False,
                    base_url="https://testserver") as client:
        yield client


# --- hostile values ------------------------------------------------------------------------------------------

BIG = [2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64, 10**30, 10**400, -1, 0, 1, 2**31]
NASTY = [
    "", " ", "\x00", "a\x00b", "\ud800", "x\udfffy", "\ud83d", "²", "¹²³", "١٢٣", "１２", "-1", "0", "+1", "00",
    "1e400", "NaN", "Infinity", "-0", str(2**63), str(2**64), str(-(2**63) - 1), "9" * 30, "9" * 5000,
    "x" * 201, "x" * 400, "x" * 20_000, "é" * 5000, "🙂" * 3000, "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00", "0001-01-01", "9999-12-31", "+275760-09-13", "2026-13-45", "99999-01-01T00:00:00",
    "2026-01-01T00:00:00+99:00", "{{ 7 * 7 }}", "{{ 'x' * 10**8 }}", "{% for x in y %}", "<script>alert(1)</script>",
    "' OR 1=1 --", "whatsapp:", "whatsapp:+62\x00", "#²", "#" + "9" * 25, "Rp 99999999999999999999999",
    "Rp 1.500.000", "1" * 19, "\u202e", "\r\n", "%00", "null", "[]", "{}", "consent:data:yes", "sapa_claim",
]
ANY_CHAR = st.characters(exclude_categories=())  # surrogates included
# The classes issue 15 found, drawn more often than the rest so that each reaches storage in a short run.
POISON = ["a\x00b", "x\ud800", "²", "9" * 30, "x" * 10_001, str(2**64), "0001-01-01T00:00:00+14:00", "x" * 201]
texts = st.one_of(st.sampled_from(POISON), st.sampled_from(NASTY), st.text(ANY_CHAR, max_size=40), st.text(max_size=8))
ints = st.one_of(st.sampled_from(BIG), st.integers())
scalars = st.one_of(st.none(), st.booleans(), ints, st.floats(), texts)
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)), max_leaves=10)


def deep(depth: int, opener: bytes = b"[", closer: bytes = b"]", core: bytes = b"1") -> bytes:
    return opener * depth + core + closer * depth


RAW = [
    b"", b" ", b"{", b"null", b"[]", b'""', b"\xff\xfe\x00", b'"\\ud800"', b'{"a":"\\u0000"}', b'{"a":"\\udc00"}',
    deep(100), deep(1000), deep(100_000), deep(3000, b'{"a":', b"}"), b"9" * 5000, b'{"x":' + b"9" * 5000 + b"}",
    b"1e999", b"-1e999", b"NaN", b'{"a":NaN}', b'{"a":Infinity}', b"[" + b"1," * 50_000 + b"1]",
    b"x" * (1024 * 1024 + 1),  # past the 1 MB ceiling
]
raw_bodies = st.one_of(st.sampled_from(RAW), st.binary(max_size=200))
MISSING = object()


def as_json(value: Any) -> bytes:
    try:
        return json.dumps(value).encode()  # ensure_ascii: a lone surrogate travels as "\ud800", as an attacker sends it
    except ValueError:  # an int past Python's str-digits limit: send it raw
        return b"9" * 5000


def mutated(base: dict[str, Any], values: st.SearchStrategy[Any] = json_values) -> st.SearchStrategy[dict[str, Any]]:
    """`base` with one field replaced by a hostile value (so the rest is valid and the value reaches storage), or
    with each field kept, replaced or left out."""
    def replaced(key: str, value: Any) -> dict[str, Any]:
        return {**base, key: value} if value is not MISSING else {k: v for k, v in base.items() if k != key}

    one = st.builds(replaced, st.sampled_from(sorted(base)), st.one_of(values, values, st.just(MISSING)))
    many = st.fixed_dictionaries({key: st.one_of(st.just(value), st.just(value), values, st.just(MISSING))
                                  for key, value in base.items()}).map(
        lambda fields: {key: value for key, value in fields.items() if value is not MISSING})
    return st.one_of(one, one, many)


def json_bodies(base: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[bytes]:
    return st.one_of(base.map(as_json), base.map(as_json), json_values.map(as_json), raw_bodies)


def plain(value: str) -> str:
    """A string that survives form encoding: what a server decodes from any bytes it is sent."""
    return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def segment(value: str) -> str:
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


# --- requests ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Req:
    method: str
    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Context:
    session_id: str
    broadcast_id: int
    sign_media: Callable[[str, str, str], str]
    sign_in: Callable[[], str]  # signs the fuzzing client in to the console as an admin; returns the CSRF token


JSON = {"content-type": "application/json"}
FORM = "application/x-www-form-urlencoded"


def twilio_request(path: str, params: dict[str, str]) -> Req:
    params = {plain(key): plain(value) for key, value in params.items()}
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC + path, params)
    return Req("POST", path, urlencode(params).encode(), {"content-type": FORM, "x-twilio-signature": signature})


def slack_request(body: bytes, content_type: str) -> Req:
    try:
        headers = signed(body.decode("utf-8"), content_type)
    except UnicodeDecodeError:
        headers = {"content-type": content_type}
    return Req("POST", "/slack/events", body, headers)


sids = st.binary(min_size=16, max_size=16).map(lambda b: "SM" + b.hex())
form_texts = texts.map(plain)
TWILIO_FIELDS = ["NumMedia", "MediaUrl0", "MediaContentType0", "Latitude", "Longitude", "ButtonPayload", "ButtonText",
                 "ProfileName", "OriginalRepliedMessageSid", "ErrorCode", "ErrorMessage", "MessageStatus",
                 "Forwarded", "WaId", "Label", "Address", "MessageType", "SmsSid", "ChannelPrefix"]


def twilio_inbound(channel: str) -> Callable[[Context], st.SearchStrategy[Req]]:
    prefix = "whatsapp:" if channel == "whatsapp" else ""

    def strategy(ctx: Context) -> st.SearchStrategy[Req]:
        @st.composite
        def build(draw: st.DrawFn) -> Req:
            base = {"MessageSid": draw(sids), "AccountSid": TWILIO_SID, "From": prefix + "+6281234567",
                    "To": prefix + "+15005550006", "Body": "halo", "NumMedia": "0"}
            params = draw(mutated(base, form_texts))
            params.update(draw(st.dictionaries(st.one_of(st.sampled_from(TWILIO_FIELDS), form_texts), form_texts,
                                               max_size=5)))
            return twilio_request(f"/webhooks/twilio/{channel}", params)

        return build()

    return strategy


def twilio_status(ctx: Context) -> st.SearchStrategy[Req]:
    @st.composite
    def build(draw: st.DrawFn) -> Req:
        base = {"MessageSid": draw(sids), "MessageStatus": draw(st.sampled_from(["delivered", "failed", "read"])),
                "ErrorCode": draw(form_texts), "From": "whatsapp:+14155238886", "To": "whatsapp:+6281234567",
                "AccountSid": TWILIO_SID}
        params = draw(mutated(base, form_texts))
        params.update(draw(st.dictionaries(st.sampled_from(TWILIO_FIELDS), form_texts, max_size=3)))
        return twilio_request("/webhooks/twilio/status", params)

    return build()


TELEGRAM_USER = {"id": 5550001, "is_bot": False, "first_name": "Budi", "language_code": "id"}


def telegram(ctx: Context) -> st.SearchStrategy[Req]:
    headers = {**JSON, "x-telegram-bot-api-secret-token": TELEGRAM_SECRET}
    user = mutated(TELEGRAM_USER)
    chat = mutated({"id": 5550001, "type": "private", "first_name": "Budi"})

    @st.composite
    def message(draw: st.DrawFn) -> dict[str, Any]:
        base = {"message_id": draw(st.integers(1, 10**9)), "date": int(time.time()), "from": draw(user),
                "chat": draw(chat), "text": "halo"}
        fields = draw(mutated(base))
        fields.update(draw(st.dictionaries(st.sampled_from(
            ["caption", "photo", "document", "voice", "location", "contact", "edit_date", "reply_to_message",
             "forward_origin", "forward_from", "forward_date", "entities", "sticker", "venue", "dice", "poll"]),
            json_values, max_size=3)))
        return fields

    @st.composite
    def update(draw: st.DrawFn) -> dict[str, Any]:
        kind = draw(st.sampled_from(["message", "edited_message", "callback_query", "my_chat_member",
                                     "channel_post", "message", "message"]))
        if kind == "callback_query":
            body = draw(mutated({"id": "4382bfdwdsb323b2d9", "from": draw(user), "chat_instance": "x",
                                 "data": "consent:data:yes", "message": draw(message())}))
        elif kind == "my_chat_member":
            body = draw(mutated({"chat": draw(chat), "from": draw(user), "date": int(time.time()),
                                 "old_chat_member": {"status": "member", "user": TELEGRAM_USER},
                                 "new_chat_member": {"status": "kicked", "user": TELEGRAM_USER,
                                                     "until_date": 0}}))
        else:
            body = draw(message())
        return draw(mutated({"update_id": draw(st.integers(1, 10**9)), kind: body}, ints))

    return json_bodies(update()).map(lambda body: Req("POST", "/webhooks/telegram", body, headers))


def slack(ctx: Context) -> st.SearchStrategy[Req]:
    event = mutated({"type": "message", "channel": "C0QUEUE", "user": "U0RINA", "text": "halo",
                     "ts": "1800000000.000001", "thread_ts": "1800000000.000000", "channel_type": "channel"})
    callback = st.builds(lambda e, i: {"token": "x", "team_id": "T0SAPA", "api_app_id": "A0SAPA",
                                       "type": "event_callback", "event_id": i, "event_time": 1, "event": e},
                         event, st.one_of(st.text(max_size=12).map(lambda s: "Ev" + s), json_values))
    action = mutated({"type": "button", "action_id": "sapa_claim", "block_id": "actions", "value": "1",
                      "action_ts": "1800000001.000001"}, st.one_of(json_values, st.sampled_from(["²", "9" * 30])))
    actions = st.one_of(st.just([]), st.just({}), json_values, st.lists(action, max_size=2))
    payload = st.builds(lambda acts, user: {
        "type": "block_actions", "user": user, "api_app_id": "A0SAPA", "token": "x", "trigger_id": "t",
        "team": {"id": "T0SAPA"}, "channel": {"id": "C0QUEUE"},
        "container": {"type": "message", "message_ts": "1800000000.000000", "channel_id": "C0QUEUE"},
        "actions": acts}, actions, st.one_of(st.just({"id": "U0RINA"}), json_values))
    interactive = st.one_of(mutated({"type": "block_actions"}), payload).map(
        lambda p: urlencode({"payload": plain(as_json(p).decode())}).encode())
    command = mutated({"command": "/sapa", "text": "status", "user_id": "U0SUPER", "team_id": "T0SAPA",
                       "channel_id": "C0QUEUE"}, form_texts).map(
        lambda fields: urlencode({plain(str(k)): plain(str(v)) for k, v in fields.items()}).encode())
    verification = mutated({"type": "url_verification", "challenge": "abc"}).map(as_json)
    return st.one_of(
        json_bodies(callback).map(lambda body: slack_request(body, "application/json")),
        verification.map(lambda body: slack_request(body, "application/json")),
        interactive.map(lambda body: slack_request(body, FORM)),
        command.map(lambda body: slack_request(body, FORM)),
        raw_bodies.map(lambda body: slack_request(body, FORM)),
    )


def webchat_session(ctx: Context) -> st.SearchStrategy[Req]:
    return json_bodies(mutated({"language": "en"})).map(lambda body: Req("POST", "/api/webchat/sessions", body, JSON))


def webchat_message(ctx: Context) -> st.SearchStrategy[Req]:
    base = mutated({"session_id": ctx.session_id, "client_message_id": "m1", "text": "halo",
                    "payload": "consent:data:yes", "button_of": 1, "language": "id"})
    fresh = st.builds(lambda fields, cid: {**fields, "client_message_id": cid} if "client_message_id" in fields
                      else fields, base, st.uuids().map(str))
    return json_bodies(fresh).map(lambda body: Req("POST", "/api/webchat/messages", body, JSON))


def webchat_history(ctx: Context) -> st.SearchStrategy[Req]:
    token = st.one_of(st.just(ctx.session_id), st.just(ctx.session_id), texts.filter(bool))
    after = st.one_of(st.none(), texts, ints.map(str))
    return st.builds(lambda t, a: Req("GET", f"/api/webchat/sessions/{segment(t)}/messages"
                                      + ("" if a is None else "?after=" + segment(a))), token, after)


def transactions(ctx: Context) -> st.SearchStrategy[Req]:
    base = mutated({"external_id": "fz-1", "amount": 150000, "occurred_at": "2025-01-01",
                    "customer_phone": "+6281234567890"})
    extra = st.dictionaries(st.sampled_from(["customer_id", "customer_email"]), json_values, max_size=2)
    fresh = st.builds(lambda fields, uid, more: {**fields, **more, "external_id": uid}
                      if fields.get("external_id") == "fz-1" else {**fields, **more}, base, st.uuids().map(str), extra)
    return json_bodies(fresh).map(lambda body: Req("POST", "/api/transactions", body, {**JSON, **AUTH}))


agents = st.sampled_from([None, None, "U0MKT", "U0RINA", "x" * 500, "nobody"])


def with_agent(req: Req, agent: str | None) -> Req:
    return req if agent is None else Req(req.method, req.path, req.body, {**req.headers, "x-sapa-agent": agent})


FILTER_KEYS = ["loyalty_tier", "vip_tier", "segment", "channel", "language", "last_purchase_within_days",
               "last_purchase_before_days", "min_points", "max_points", "vip", "tier", "consent"]
filters = st.one_of(json_values, st.dictionaries(st.sampled_from(FILTER_KEYS), json_values, max_size=4))


def segments_post(ctx: Context) -> st.SearchStrategy[Req]:
    body = mutated({"name": "fuzz", "filters": {"channel": "telegram"}, "replace": True},
                   st.one_of(json_values, filters))
    return st.builds(with_agent, json_bodies(body).map(lambda b: Req("POST", "/api/segments", b, {**JSON, **AUTH})),
                     agents)


def segments_list(ctx: Context) -> st.SearchStrategy[Req]:
    return st.builds(with_agent, st.just(Req("GET", "/api/segments", headers=AUTH)), agents)


def segment_named(method: str) -> Callable[[Context], st.SearchStrategy[Req]]:
    def strategy(ctx: Context) -> st.SearchStrategy[Req]:
        names = st.one_of(st.just("fuzz"), texts.filter(bool))
        return st.builds(with_agent, names.map(lambda n: Req(method, f"/api/segments/{segment(n)}", headers=AUTH)),
                         agents)

    return strategy


def broadcasts_post(ctx: Context) -> st.SearchStrategy[Req]:
    body = mutated({"name": "Promo", "filters": {"channel": "telegram"}, "channels": ["telegram"],
                    "messages": {"id": "Halo {{ name }}", "en": "Hi {{ name }}"}, "segment": "fuzz",
                    "at": "2026-12-24T10:00:00+07:00"}, st.one_of(json_values, filters))
    return st.builds(with_agent, json_bodies(body).map(lambda b: Req("POST", "/api/broadcasts", b, {**JSON, **AUTH})),
                     agents)


def broadcasts_list(ctx: Context) -> st.SearchStrategy[Req]:
    return st.just(Req("GET", "/api/broadcasts", headers=AUTH))


ids = st.one_of(st.integers(1, 5), ints, texts.filter(bool))


def broadcast_get(ctx: Context) -> st.SearchStrategy[Req]:
    return st.one_of(st.just(ctx.broadcast_id), ids).map(
        lambda i: Req("GET", f"/api/broadcasts/{segment(str(i))}", headers=AUTH))


def broadcast_act(ctx: Context) -> st.SearchStrategy[Req]:
    actions = st.one_of(st.sampled_from(["preview", "test", "schedule", "pause", "resume", "cancel"]),
                        texts.filter(bool))
    body = mutated({"to": "+6281234567", "channel": "whatsapp", "language": "id", "at": "2026-12-24T10:00:00"})
    return st.builds(lambda i, a, b, agent: with_agent(Req("POST", f"/api/broadcasts/{segment(str(i))}/{segment(a)}",
                                                           b, {**JSON, **AUTH}), agent),
                     st.one_of(st.just(ctx.broadcast_id), ids), actions, json_bodies(body), agents)


def media(ctx: Context) -> st.SearchStrategy[Req]:
    numbers = st.one_of(st.sampled_from(["1", "0", "²", "9" * 19, "9" * 30, str(2**63), "١"]), ints.map(str), texts)

    @st.composite
    def build(draw: st.DrawFn) -> Req:
        message_id, index, expires = (plain(value) for value in (draw(numbers), draw(numbers), draw(
            st.one_of(st.just(str(int(time.time()) + 3600)), numbers))))
        signature = ctx.sign_media(message_id, index, expires) if draw(st.booleans()) else draw(texts)
        query = urlencode({"exp": plain(expires), "sig": plain(signature)})
        return Req("GET", f"/media/{segment(message_id)}/{segment(index)}?{query}")

    return build()


def static(ctx: Context) -> st.SearchStrategy[Req]:
    names = st.one_of(st.sampled_from(["index.html", "chat.js", "../../../etc/passwd", "%2e%2e/x", ""]), texts)
    return names.map(lambda n: Req("GET", f"/static/webchat/{segment(n)}"))


CONSOLE_FIELDS = ("name", "change", "text", "to_agent_id", "availability", "next_path", "next", "email", "password",
                  "current_password", "new_password", "repeat_password", "role", "reason", "confirm", "keep_id",
                  "language", "token", "slack_user_id", "csrf_token",
                  # issue 17: knowledge base, segments, broadcasts, loyalty
                  "id", "question_id", "question_en", "answer_id", "answer_en", "examples", "terms", "note",
                  "revision", "text_id", "text_en", "channel", "segment", "at", "when", "to", "code", "stock",
                  "loyalty_tier", "vip", "vip_tier", "consent", "min_points", "max_points",
                  "last_purchase_within_days", "last_purchase_before_days", "outcome")
CONSOLE_VALUES = ("add", "remove", "claim", "resolve", "transfer", "escalate", "back_to_bot", "takeover", "online",
                  "csv", "xlsx", "7", "365", "100000", "2026-12-01", "2026-02-30", "9999-12-31", "sla_breached",
                  "live_breached", "faq", "templates", "config", "pause", "resume", "cancel", "opening_hours",
                  "whatsapp", "telegram", "sms", "webchat", "gold", "marketing_ok",
                  "away", "1", "2", "0", "²", "9" * 19, str(2**63), "admin", "marketing", "supervisor",
                  "/console/inbox", "//evil.example/x", "https://evil.example", "id", "en", "", "a@b.co", "x" * 5000)
CONSOLE_QUERY = ("mine", "unassigned", "vip", "channel", "status", "cursor", "before", "after", "kind", "lang", "token",
                 "next", "done", "detail",
                 # issue 17: dashboard periods, drill-downs and exports; knowledge search; campaign lists
                 "days", "from", "to", "metric", "group", "key", "table", "format", "q", "show", "section",
                 "reply_language", "segment", "name", "outcome", "page")


def console(method: str, template: str) -> Callable[[Context], st.SearchStrategy[Req]]:
    """A console page or form, signed in as an admin (so the requests reach the code behind the checks): hostile
    ids in the path, hostile query parameters and form fields, the page's CSRF token nine times in ten."""
    def strategy(ctx: Context) -> st.SearchStrategy[Req]:
        token = ctx.sign_in()  # afresh per route: sign-out, sign-in and password changes end the session
        values = st.one_of(st.sampled_from(CONSOLE_VALUES), texts).map(plain)
        ids = st.one_of(st.sampled_from(["1", "2", "0", "-1", "²", "9" * 19, str(2**63), "abc", " 1",
                                         "opening_hours", "csat_question"]), texts)
        names = re.findall(r"{(\w+)}", template)

        @st.composite
        def build(draw: st.DrawFn) -> Req:
            path = template
            for name in names:
                path = path.replace("{" + name + "}", segment(draw(ids)))
            query = draw(st.dictionaries(st.sampled_from(CONSOLE_QUERY), values, max_size=4))
            path = f"{path}?{urlencode(query)}" if query else path
            if method == "GET":
                return Req("GET", path)
            form = draw(st.dictionaries(st.sampled_from(CONSOLE_FIELDS), values, max_size=6))
            if draw(st.integers(0, 9)):
                form["csrf_token"] = token
            body = urlencode(form).encode() if draw(st.integers(0, 4)) else draw(raw_bodies)
            return Req("POST", path, body, {"content-type": FORM})

        return build()

    return strategy


def fixed(method: str, path: str) -> Callable[[Context], st.SearchStrategy[Req]]:
    return lambda ctx: st.one_of(st.just(Req(method, path)), texts.map(lambda q: Req(method, f"{path}?x={segment(q)}")))


STRATEGIES: dict[tuple[str, str], Callable[[Context], st.SearchStrategy[Req]]] = {
    ("GET", "/healthz"): fixed("GET", "/healthz"),
    ("GET", "/livez"): fixed("GET", "/livez"),
    ("GET", "/readyz"): fixed("GET", "/readyz"),
    ("GET", "/metrics"): fixed("GET", "/metrics"),
    ("GET", "/"): fixed("GET", "/"),
    ("GET", "/openapi.json"): fixed("GET", "/openapi.json"),
    ("GET", "/docs"): fixed("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"): fixed("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"): fixed("GET", "/redoc"),
    ("GET", "/static/webchat"): static,
    ("POST", "/api/webchat/sessions"): webchat_session,
    ("POST", "/api/webchat/messages"): webchat_message,
    ("GET", "/api/webchat/sessions/{token}/messages"): webchat_history,
    ("POST", "/webhooks/telegram"): telegram,
    ("POST", "/webhooks/twilio/sms"): twilio_inbound("sms"),
    ("POST", "/webhooks/twilio/whatsapp"): twilio_inbound("whatsapp"),
    ("POST", "/webhooks/twilio/status"): twilio_status,
    ("POST", "/api/transactions"): transactions,
    ("POST", "/api/segments"): segments_post,
    ("GET", "/api/segments"): segments_list,
    ("GET", "/api/segments/{name}"): segment_named("GET"),
    ("DELETE", "/api/segments/{name}"): segment_named("DELETE"),
    ("POST", "/api/broadcasts"): broadcasts_post,
    ("GET", "/api/broadcasts"): broadcasts_list,
    ("GET", "/api/broadcasts/{broadcast_id}"): broadcast_get,
    ("POST", "/api/broadcasts/{broadcast_id}/{action}"): broadcast_act,
    ("GET", "/media/{message_id}/{index}"): media,
    ("POST", "/slack/events"): slack,
    ("GET", "/console/static"): lambda ctx: st.one_of(
        st.sampled_from(["console.css", "console.js", "charts.js", "vendor/VENDORED.md", "../../auth.py", "%2e%2e/x",
                         ""]),
        texts).map(lambda n: Req("GET", f"/console/static/{segment(n)}")),
    **{(method, path): console(method, path) for method, path in (
        ("GET", "/console"), ("POST", "/console/availability"), ("GET", "/console/conversations/{conversation_id}"),
        ("POST", "/console/conversations/{conversation_id}/action"),
        ("GET", "/console/conversations/{conversation_id}/events"),
        ("GET", "/console/conversations/{conversation_id}/messages"),
        ("POST", "/console/conversations/{conversation_id}/note"),
        ("POST", "/console/conversations/{conversation_id}/reply"), ("GET", "/console/customers/{customer_id}"),
        ("POST", "/console/customers/{customer_id}/erase"), ("POST", "/console/customers/{customer_id}/export"),
        ("POST", "/console/customers/{customer_id}/merge"), ("POST", "/console/customers/{customer_id}/profile"),
        ("POST", "/console/customers/{customer_id}/vip"), ("GET", "/console/media/{message_id}/{index}"),
        ("GET", "/console/inbox"), ("GET", "/console/inbox/events"), ("GET", "/console/inbox/queue"),
        ("GET", "/console/password"), ("POST", "/console/password"), ("GET", "/console/reset"),
        ("POST", "/console/reset"), ("GET", "/console/setup"), ("POST", "/console/setup"),
        ("GET", "/console/sign-in"), ("POST", "/console/sign-in"), ("POST", "/console/sign-out"),
        ("GET", "/console/staff"), ("POST", "/console/staff"), ("POST", "/console/staff/{staff_id}/disable"),
        ("POST", "/console/staff/{staff_id}/reset"), ("GET", "/console/tickets"),
        ("GET", "/console/tickets/{ticket_id}"),
        # issue 17
        ("GET", "/console/dashboard"), ("GET", "/console/dashboard/drill"), ("GET", "/console/dashboard/export"),
        ("GET", "/console/dashboard/drill/export"),
        ("GET", "/console/knowledge"), ("GET", "/console/knowledge/try"), ("GET", "/console/knowledge/faq/new"),
        ("POST", "/console/knowledge/faq/new"), ("GET", "/console/knowledge/faq/{key}"),
        ("POST", "/console/knowledge/faq/{key}"), ("POST", "/console/knowledge/faq/{key}/delete"),
        ("GET", "/console/knowledge/faq/{key}/history"), ("POST", "/console/knowledge/faq/{key}/rollback"),
        ("GET", "/console/knowledge/templates/{key}"), ("POST", "/console/knowledge/templates/{key}"),
        ("GET", "/console/knowledge/templates/{key}/history"),
        ("POST", "/console/knowledge/templates/{key}/rollback"),
        ("GET", "/console/campaigns"), ("GET", "/console/campaigns/segments"),
        ("GET", "/console/campaigns/segments/count"), ("POST", "/console/campaigns/segments"),
        ("POST", "/console/campaigns/segments/delete"), ("GET", "/console/campaigns/broadcasts/new"),
        ("POST", "/console/campaigns/broadcasts"), ("GET", "/console/campaigns/broadcasts/{broadcast_id}"),
        ("POST", "/console/campaigns/broadcasts/{broadcast_id}/test"),
        ("POST", "/console/campaigns/broadcasts/{broadcast_id}/schedule"),
        ("POST", "/console/campaigns/broadcasts/{broadcast_id}/action"),
        ("GET", "/console/campaigns/broadcasts/{broadcast_id}/progress"),
        ("GET", "/console/campaigns/broadcasts/{broadcast_id}/recipients"),
        ("GET", "/console/campaigns/broadcasts/{broadcast_id}/export"),
        ("GET", "/console/campaigns/loyalty"), ("POST", "/console/campaigns/loyalty/rewards"),
        ("GET", "/console/campaigns/loyalty/export"))},
}


def routes_of(app: FastAPI) -> list[tuple[str, str]]:
    found: set[tuple[str, str]] = set()

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            if isinstance(route, Mount):
                found.add(("GET", prefix + route.path))
            elif isinstance(route, Route):
                found.update((method, prefix + route.path) for method in (route.methods or set()) - {"HEAD"})
            elif hasattr(route, "original_router"):
                # FastAPI 0.16x keeps an included router as one entry (a private _IncludedRouter): walk into it, or
                # every route added with include_router (/healthz, the console) would go unlisted and unfuzzed.
                walk(route.original_router.routes, prefix + getattr(route.include_context, "prefix", ""))

    walk(app.routes, "")
    return sorted(found, key=lambda item: (item[1], item[0]))


def test_every_route_has_a_fuzz_strategy(client: TestClient) -> None:
    app = client.app
    assert isinstance(app, FastAPI)
    missing = [route for route in routes_of(app) if route not in STRATEGIES]
    assert not missing, f"routes without a fuzz strategy in {__name__}: {missing}"


def fuzz(client: TestClient, requests: st.SearchStrategy[Req], examples: int, route: str,
         failures: list[dict[str, Any]]) -> Counter[str]:
    """Send `examples` requests drawn from `requests`; count the status classes and keep the first 5xx."""
    counts: Counter[str] = Counter()

    @hypothesis_settings(max_examples=examples, derandomize=True, deadline=None, database=None,
                         phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(requests)
    def send(req: Req) -> None:
        response = client.request(req.method, req.path, content=req.body or None, headers=req.headers)
        counts[f"{response.status_code // 100}xx"] += 1
        counts["requests"] += 1
        if response.status_code >= 500 and len(failures) < 40:
            failures.append({"route": route, "status": response.status_code, "path": req.path[:300],
                             "headers": {k: v[:100] for k, v in req.headers.items()},
                             "body": req.body[:600].decode("utf-8", "replace"), "answer": response.text[:300]})

    send()
    return counts


def test_fuzz_every_endpoint(client: TestClient, sapa: Sapa, db_url: str) -> None:
    database = "sqlite" if db_url.startswith("sqlite") else "postgres"
    app = client.app
    assert isinstance(app, FastAPI)
    created = client.post("/api/webchat/sessions", json={"language": "id"})
    assert created.status_code == 201, created.text
    assert client.post("/api/segments", json={"name": "fuzz", "filters": {"channel": "telegram"}},
                       headers=AUTH).status_code == 201
    made = client.post("/api/broadcasts", headers=AUTH, json={
        "name": "Promo", "segment": "fuzz", "channels": ["telegram"], "messages": {"id": "Halo", "en": "Hi"}})
    assert made.status_code == 201, made.text
    signer = links(sapa.settings)
    with sapa.database.unit_of_work() as session:
        staff_store.create_staff(session, name="Fuzz Admin", email="fuzz-admin@example.co.id", role="admin",
                                 roles=ROLES, now=sapa.clock.now(), password_hash=auth.hash_password(FUZZ_PASSWORD))

    def sign_in() -> str:
        with sapa.database.unit_of_work() as session:  # earlier routes may have locked this address out
            session.execute(delete(LoginFailure))
        client.cookies.clear()  # whatever the last route's requests left (a stale session, form cookie, language)
        form = client.get("/console/sign-in")
        signed = client.post("/console/sign-in", follow_redirects=False, data={
            "email": "fuzz-admin@example.co.id", "password": FUZZ_PASSWORD, "csrf_token": csrf(form.text)})
        assert signed.status_code == 303, signed.text
        return csrf(client.get("/console/password").text)

    ctx = Context(created.json()["session_id"], made.json()["id"], signer.signature, sign_in)

    routes = routes_of(app)
    remaining = EXAMPLES
    statuses: dict[str, Counter[str]] = {}
    failures: list[dict[str, Any]] = []
    started = time.monotonic()
    for done, (method, path) in enumerate(routes):
        # An even share of what is left: a route whose strategy has fewer distinct requests (GET /api/broadcasts
        # has one) leaves its share to the routes after it, so the total stays near SAPA_FUZZ_EXAMPLES.
        route = f"{method} {path}"
        share = max(1, remaining // (len(routes) - done))
        statuses[route] = fuzz(client, STRATEGIES[(method, path)](ctx), share, route, failures)
        remaining -= statuses[route]["requests"]
    elapsed = time.monotonic() - started
    health = client.get("/healthz")
    total: Counter[str] = Counter()
    for counts in statuses.values():
        total.update(counts)
    summary = {"database": database, "requests": total["requests"], "seconds": round(elapsed, 1),
               "by_class": {k: v for k, v in sorted(total.items()) if k != "requests"},
               "health_after": health.status_code, "examples_setting": EXAMPLES,
               "by_route": {route: dict(sorted(counts.items())) for route, counts in statuses.items()},
               "failures": failures}
    out = ROOT / "var" / "adversarial"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"fuzz-{database}.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    print(f"\nfuzz {database}: {summary['requests']} requests in {elapsed:.1f}s, {summary['by_class']}")
    assert health.status_code == 200, health.text
    assert not failures, f"{total['5xx']} answers were 5xx, first: {json.dumps(failures[:5], indent=1)}"
