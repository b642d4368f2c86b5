"""Replay real-shaped provider payloads against Sapa's real endpoints (issue 14, "Done when").

The corpus (tests/channels/fixtures/corpus, sources and licences in its SOURCES.md) holds Telegram updates,
Twilio SMS/WhatsApp webhooks and status callbacks, and Slack events, interactivity and slash commands, taken
from provider documentation and SDK/bot test suites with every identifier replaced. Each file is POSTed to the
endpoint the provider would call, signed as that provider signs, on SQLite and on PostgreSQL, and must:

- get a 2xx (anything else makes the provider redeliver forever, or drop the message), unless the file is
  `refused`: a shape the provider never sends (a test suite's invention), answered 4xx with the reason;
- be stored (a messages row answered by a reply, a delivery status, a reachability mark, a durable Slack task)
  or be deliberately ignored, with a log line that says "ignored";
- never put button data Sapa did not issue through the NLU;
- change no consent unless it carries explicit words (STOP, START) or the provider's unsubscribe report (21610);
- change nothing when delivered a second time (row counts, statuses, sends to the providers).

What a file must do is in the file (`expect`, `button`, `consent`, `delivery`), derived from what the provider
means by the payload, not from what the code does today.

One Sapa per backend serves the whole module; each file uses its own customers (distinct chat ids, phones, Slack
event ids), so files do not see each other's state.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from bot.app import Sapa, build, create_app
from bot.clock import ManualClock
from bot.devtools.fake_providers import FakeProviders
from store import create_database
from store.models import (
    ChannelIdentity,
    Consent,
    Conversation,
    Customer,
    Message,
    OutboxItem,
    Task,
    Ticket,
)
from tests.support.providers import PUBLIC, TELEGRAM_SECRET, TWILIO_TOKEN, ProviderCustomer, drain
from tests.support.slack import Slack, desk_settings, handed_off, signed
from tests.support.webchat import WebchatUser

CORPUS = Path(__file__).parent / "fixtures" / "corpus"
FILES = sorted(CORPUS.glob("*/*.json"))
EXPECTATIONS = {"stored", "edit", "ignored", "status", "unreachable", "reachable", "task", "answered", "refused"}
PRIME_MESSAGE_ID = 900001  # Telegram message ids of a file's set-up messages; corpus files use smaller ones
CLASSIFIERS = ("embedded", "rasa")  # Interpretation.backend values that mean the NLU read the text
DESK_TASK = "slack.desk"


@dataclass
class Env:
    sapa: Sapa
    client: TestClient
    fakes: FakeProviders
    clock: ManualClock
    slack: Slack


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path,
        interpreter: Any) -> Iterator[Env]:
    """One Sapa with Telegram, SMS, WhatsApp and the Slack desk on the fake providers, per backend."""
    if request.param == "sqlite":
        target = tmp_path_factory.mktemp("corpus") / "sapa.db"
        shutil.copy(sqlite_template, target)
        url = f"sqlite:///{target}"
    else:
        import psycopg

        server = request.getfixturevalue("pg_server")
        name = f"corpus{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE sapa_template")
        url = server.url(name)
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("TWILIO_REGION", raising=False)
        patch.delenv("TWILIO_EDGE", raising=False)
        # In a real private chat the bot's and the customer's messages share one sequence of ids; the fake
        # counts the bot's across all chats, so it starts above every id a corpus file uses.
        with FakeProviders(twilio_auth_token=TWILIO_TOKEN, first_message_id=50_000_000) as fakes:
            database = create_database(url)
            clock = ManualClock()
            sapa = build(desk_settings(url, fakes), clock=clock, interpreter=interpreter, database=database,
                         model_cache=None)
            try:
                with TestClient(create_app(sapa, background=False)) as client:
                    yield Env(sapa, client, fakes, clock, Slack(client, fakes, sapa, clock))
            finally:
                sapa.stop_background()
                database.dispose()


# -- the corpus itself ---------------------------------------------------------------------------------


def load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8")))


def test_the_corpus_is_large_varied_and_every_file_names_its_source() -> None:
    cases = {f"{p.parent.name}/{p.name}": load(p) for p in FILES}
    assert len(cases) >= 60
    assert {name.split("/")[0] for name in cases} == {"telegram", "twilio", "slack"}
    sources = (CORPUS / "SOURCES.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([^`]+\.json)` \| ([^|]+?):", sources, re.MULTILINE))
    assert set(rows) == set(cases), "SOURCES.md must have exactly one row per corpus file"
    assert len(set(rows.values())) >= 4, "at least four independent sources"
    addresses: dict[tuple[str, str], str] = {}
    for name, case in cases.items():
        assert set(case["expect"]) <= EXPECTATIONS, name
        assert sum(key in case for key in ("json", "form", "payload")) == 1, name
        if "who" in case:
            key = (case["who"]["channel"], case["who"]["address"])
            assert key not in addresses, f"{name} and {addresses.get(key)} share a customer"
            addresses[key] = name


# -- replay --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.stem}" for p in FILES])
def test_a_provider_payload_is_handled_once_and_honestly(path: Path, env: Env,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    case = load(path)
    bindings = prepare(env, case)
    request = Request.of(case, bindings)
    before = snapshot(env)
    consents_before = consents(env)
    marks = high_water_marks(env)

    caplog.set_level(logging.INFO)
    caplog.clear()
    first = request.send(env)
    if case["expect"] == ["refused"]:
        assert 400 <= first.status_code < 500 and first.json().get("error"), f"{path.name}: {first.status_code}"
        settle(env)
        assert snapshot(env)["counts"] == before["counts"], "refused, yet rows were added"
        return
    assert 200 <= first.status_code < 300, f"{path.name}: {first.status_code} {first.text}"
    settle(env)
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    after = snapshot(env)

    new_in, new_out, new_tasks = new_rows(env, marks)
    who = identity(env, case)
    for expectation in case["expect"]:
        check(env, expectation, case, bindings, first, who, new_in, new_out, new_tasks, before, after, said)
    if "button" in case:
        check_button(case["button"], who, new_in, before, after)
    check_consents(case, who, consents_before, consents(env))

    again = request.send(env, redelivery=True)
    assert 200 <= again.status_code < 300, f"{path.name} redelivered: {again.status_code} {again.text}"
    settle(env)
    assert snapshot(env) == after, f"{path.name}: delivering it again changed something"


# -- set-up --------------------------------------------------------------------------------------------


def prepare(env: Env, case: dict[str, Any]) -> dict[str, Any]:
    """Do what the file's `setup` asks and return the values its placeholders stand for."""
    setup, who = case.get("setup", {}), case.get("who")
    bindings: dict[str, Any] = {}
    for number, text in enumerate(setup.get("prime", [])):
        assert who is not None
        person = ProviderCustomer(env.client, env.fakes, who["channel"], who["address"])
        message_id = str(PRIME_MESSAGE_ID + number) if who["channel"] == "telegram" else None
        assert person.write(text, message_id=message_id) == 200, f"set-up message {text!r} refused"
        settle(env)
    if setup.get("unreachable"):
        assert who is not None
        with env.sapa.database.unit_of_work() as session:
            found = session.execute(select(ChannelIdentity).where(
                ChannelIdentity.channel == who["channel"], ChannelIdentity.address == who["address"])).scalar_one()
            found.undeliverable_reason = setup["unreachable"]
            found.undeliverable_at = env.clock.now()
    if setup.get("card"):
        conversation, card_ts = handed_off(WebchatUser(env.client, env.sapa), env.slack)
        bindings["$CARD_TS"], bindings["$CONVERSATION"] = card_ts, str(conversation.id)
    if who is not None and setup.get("prime"):
        with env.sapa.database.unit_of_work(read_only=True) as session:
            sent = outbound_to(session, who)
            if sent and sent[0].provider_message_id:
                bindings["$FIRST_SID"] = sent[0].provider_message_id
            button = case.get("button", {})
            offered = [m for m in sent if any(b.get("payload") == button.get("payload") for b in m.buttons or [])]
            if button.get("verdict") == "ours" and offered and offered[-1].provider_message_id:
                provider_id = offered[-1].provider_message_id
                bindings["$OFFERED_SID"] = provider_id
                if who["channel"] == "telegram":  # "chat:message_id", as the Telegram adapter records it
                    bindings["$OFFERED_MESSAGE_ID"] = int(provider_id.rsplit(":", 1)[1])
    return bindings


def outbound_to(session: Any, who: dict[str, str]) -> list[Message]:
    """Sapa's messages to this customer on this channel, oldest first."""
    found = session.execute(select(ChannelIdentity).where(
        ChannelIdentity.channel == who["channel"], ChannelIdentity.address == who["address"])).scalar_one_or_none()
    if found is None:
        return []
    return list(session.execute(select(Message).where(
        Message.customer_id == found.customer_id, Message.channel == who["channel"], Message.direction == "out",
    ).order_by(Message.id)).scalars())


def bind(value: Any, bindings: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        return {key: bind(item, bindings) for key, item in value.items()}
    if isinstance(value, list):
        return [bind(item, bindings) for item in value]
    if isinstance(value, str) and value.startswith("$"):
        assert value in bindings, f"the set-up produced nothing for {value}"
        return bindings[value]
    return value


@dataclass(frozen=True)
class Request:
    path: str
    body: bytes
    content_type: str
    headers: dict[str, str]
    slack: bool

    @staticmethod
    def of(case: dict[str, Any], bindings: dict[str, Any]) -> Request:
        path = case["endpoint"]
        if "form" in case:
            pairs = [(str(k), str(v)) for k, v in bind(case["form"], bindings)]
            body, content_type = urlencode(pairs).encode(), "application/x-www-form-urlencoded"
        elif "payload" in case:
            body = urlencode({"payload": json.dumps(bind(case["payload"], bindings))}).encode()
            content_type = "application/x-www-form-urlencoded"
        else:
            body, content_type = json.dumps(bind(case["json"], bindings)).encode(), "application/json"
        headers = {"content-type": content_type}
        if path == "/webhooks/telegram":
            headers["x-telegram-bot-api-secret-token"] = TELEGRAM_SECRET
        elif path.startswith("/webhooks/twilio/"):
            headers["x-twilio-signature"] = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC + path,
                                                                                             dict(pairs))
        return Request(path, body, content_type, headers, slack=path == "/slack/events")

    def send(self, env: Env, *, redelivery: bool = False) -> Any:
        headers = dict(self.headers)
        if self.slack:  # Slack signs each delivery with its own timestamp; a redelivery says so
            headers = signed(self.body.decode(), self.content_type)
            if redelivery and self.content_type == "application/json":
                headers.update({"x-slack-retry-num": "1", "x-slack-retry-reason": "http_timeout"})
        return env.client.post(self.path, content=self.body, headers=headers)


def settle(env: Env) -> None:
    """Run due tasks and drain the outbox until nothing moves: the provider got its answer, now the work."""
    for _ in range(20):
        started = env.clock.now()
        ran = env.sapa.runner.run_due()
        drain(env.sapa, env.clock)
        if ran == 0 and env.clock.now() == started:
            return
    raise AssertionError("tasks and outbox did not settle")


# -- observations --------------------------------------------------------------------------------------


def snapshot(env: Env) -> dict[str, Any]:
    """Everything a redelivery must leave alone."""
    with env.sapa.database.unit_of_work(read_only=True) as session:
        counts = {model.__tablename__: int(session.execute(select(func.count()).select_from(model)).scalar_one())
                  for model in (Customer, ChannelIdentity, Conversation, Message, OutboxItem, Ticket, Consent, Task)}
        statuses = sorted(session.execute(select(Message.id, Message.delivery_status, Message.delivery_error)
                                          .where(Message.direction == "out")).all())
        reachability = sorted(session.execute(select(ChannelIdentity.id, ChannelIdentity.undeliverable_reason))
                              .all())
    sends = {provider: len(env.fakes.sent(provider)) for provider in ("telegram", "twilio", "slack")}
    return {"counts": counts, "statuses": statuses, "reachability": reachability, "sends": sends}


def high_water_marks(env: Env) -> dict[str, int]:
    with env.sapa.database.unit_of_work(read_only=True) as session:
        return {"messages": int(session.execute(select(func.coalesce(func.max(Message.id), 0))).scalar_one()),
                "tasks": int(session.execute(select(func.coalesce(func.max(Task.id), 0))).scalar_one())}


def new_rows(env: Env, marks: dict[str, int]) -> tuple[list[Message], list[Message], list[Task]]:
    with env.sapa.database.unit_of_work(read_only=True) as session:
        messages = list(session.execute(select(Message).where(Message.id > marks["messages"])
                                        .order_by(Message.id)).scalars())
        tasks = list(session.execute(select(Task).where(Task.id > marks["tasks"])).scalars())
    return ([m for m in messages if m.direction == "in"], [m for m in messages if m.direction == "out"], tasks)


def identity(env: Env, case: dict[str, Any]) -> ChannelIdentity | None:
    who = case.get("who")
    if who is None:
        return None
    with env.sapa.database.unit_of_work(read_only=True) as session:
        return session.execute(select(ChannelIdentity).where(
            ChannelIdentity.channel == who["channel"], ChannelIdentity.address == who["address"],
        )).scalar_one_or_none()


def consents(env: Env) -> tuple[int, dict[tuple[int, str], bool]]:
    """How many consent rows there are, and each customer's current answer per purpose."""
    with env.sapa.database.unit_of_work(read_only=True) as session:
        rows = list(session.execute(select(Consent.customer_id, Consent.purpose, Consent.granted)
                                    .order_by(Consent.recorded_at, Consent.id)).all())
    return len(rows), {(customer, purpose): granted for customer, purpose, granted in rows}


# -- expectations --------------------------------------------------------------------------------------


def theirs(who: ChannelIdentity | None, rows: list[Message], channel: str | None) -> list[Message]:
    assert who is not None, "no customer on this channel and address was created"
    return [m for m in rows if m.customer_id == who.customer_id and m.channel == channel]


def check(env: Env, expectation: str, case: dict[str, Any], bindings: dict[str, Any], response: Any,
          who: ChannelIdentity | None, new_in: list[Message], new_out: list[Message], new_tasks: list[Task],
          before: dict[str, Any], after: dict[str, Any], said: list[str]) -> None:
    channel = (case.get("who") or {}).get("channel")
    if expectation in ("stored", "edit"):
        stored = theirs(who, new_in, channel)
        assert stored, f"nothing stored for the customer ({len(new_in)} other inbound rows)"
        if expectation == "stored":  # never dropped silently: the customer hears back
            replies = [m for m in new_out if m.reply_to_id in {s.id for s in stored}]
            assert replies, "stored, but no reply was queued"
    elif expectation == "ignored":
        grew = {table: after["counts"][table] - before["counts"][table]
                for table in ("customers", "messages", "outbox", "tasks")
                if after["counts"][table] != before["counts"][table]}
        assert not grew, f"ignored, yet rows were added: {grew}"
        assert any("ignor" in line.lower() for line in said), f"no log line says it was ignored: {said}"
    elif expectation == "status":
        delivery = case["delivery"]
        with env.sapa.database.unit_of_work(read_only=True) as session:
            reported = session.execute(select(Message).where(
                Message.provider_message_id == bindings["$FIRST_SID"], Message.direction == "out")).scalar_one()
        status, error = reported.delivery_status, reported.delivery_error
        assert status == delivery["status"], f"delivery status {status!r}, expected {delivery['status']!r}"
        if delivery.get("error_code"):
            assert delivery["error_code"] in (error or ""), f"error {error!r} lacks {delivery['error_code']}"
    elif expectation == "unreachable":
        assert who is not None and who.undeliverable_reason, "the address was not marked undeliverable"
    elif expectation == "reachable":
        assert who is not None and who.undeliverable_reason is None, "the address is still marked undeliverable"
    elif expectation == "task":
        assert [t for t in new_tasks if t.kind == DESK_TASK], "no durable Slack desk task was stored"
    elif expectation == "answered":
        answer = response.json()
        if "json" in case and case["json"].get("type") == "url_verification":
            assert answer == {"challenge": case["json"]["challenge"]}
        else:
            assert str(answer.get("text") or "").strip(), f"a slash command must be answered: {answer}"
    else:
        raise AssertionError(f"unknown expectation {expectation!r}")


def check_button(button: dict[str, str], who: ChannelIdentity | None, new_in: list[Message],
                 before: dict[str, Any], after: dict[str, Any]) -> None:
    pressed = [m for m in theirs(who, new_in, who.channel if who else None)]
    assert pressed, "the press was not stored"
    row = pressed[-1]
    meta = row.meta or {}
    if button["verdict"] == "foreign":
        assert meta.get("button") == "foreign", f"data Sapa never issued was not marked foreign: {meta}"
        backend = str((meta.get("nlu") or {}).get("backend") or "")
        assert not backend.startswith(CLASSIFIERS), f"the NLU read button data as text ({backend}: {row.intent})"
        assert after["counts"]["tickets"] == before["counts"]["tickets"], "a foreign button opened a ticket"
    else:
        assert row.button_payload == button["payload"], f"the press lost its payload: {row.button_payload!r}"
        assert meta.get("button") != "foreign", "Sapa's own button was refused as foreign"


def check_consents(case: dict[str, Any], who: ChannelIdentity | None, before: tuple[int, dict[Any, bool]],
                   after: tuple[int, dict[Any, bool]]) -> None:
    wanted = case.get("consent")
    if wanted is None:
        assert after == before, "consent changed without explicit words"
        return
    assert who is not None
    key = (who.customer_id, "marketing")
    assert after[1].get(key) is (wanted == "granted"), f"marketing consent is {after[1].get(key)}, expected {wanted}"
    others = {k: v for k, v in after[1].items() if k != key}
    assert others == {k: v for k, v in before[1].items() if k != key}, "another consent changed too"
