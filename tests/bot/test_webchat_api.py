"""The web chat JSON API: bad input gets a clear error and stores nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from store.migrate import current_heads
from store.models import Customer, Message
from tests.support.webchat import NOTICE

STATIC = Path(__file__).resolve().parents[2] / "bot" / "static" / "webchat"


def stored(sapa) -> tuple[int, int]:
    with sapa.database.unit_of_work(read_only=True) as session:
        return (
            session.execute(select(func.count()).select_from(Message)).scalar_one(),
            session.execute(select(func.count()).select_from(Customer)).scalar_one(),
        )


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"not json at all", 400, "body is not valid JSON"),
        (b"[1, 2]", 400, "body must be a JSON object"),
        (b'{"client_message_id": "x", "text": "halo"}', 422, "session_id is missing or malformed"),
        (b'{"session_id": "short", "client_message_id": "x", "text": "halo"}', 422, "session_id is missing"),
        (b'{"session_id": "SESSION", "text": "halo"}', 422, "client_message_id must be"),
        (b'{"session_id": "SESSION", "client_message_id": "x", "text": "   "}', 422, "text must be a non-empty"),
        (b'{"session_id": "SESSION", "client_message_id": "x", "text": 42}', 422, "text must be a non-empty"),
        (b'{"session_id": "SESSION", "client_message_id": "x y", "text": "hi"}', 422, "client_message_id must be"),
    ],
)
def test_malformed_messages_are_refused_with_a_reason(client, customer, sapa, body, status, error):
    response = client.post(
        "/api/webchat/messages", content=body.replace(b"SESSION", customer.session_id.encode()),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == status
    assert response.json()["error"].startswith(error)
    assert stored(sapa) == (0, 0)


def test_oversize_text_and_bodies_are_refused(client, customer, sapa):
    limit = sapa.settings.channels.webchat.max_text_length
    response = client.post("/api/webchat/messages", json={
        "session_id": customer.session_id, "client_message_id": "big", "text": "a" * (limit + 1)})
    assert response.status_code == 413
    assert response.json() == {"error": f"text is longer than {limit} characters"}
    response = client.post("/api/webchat/messages", content=b"{" + b" " * 70_000 + b"}",
                           headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert stored(sapa) == (0, 0)


def test_unknown_session_is_404_and_stores_nothing(client, sapa):
    response = client.post("/api/webchat/messages", json={
        "session_id": "A" * 32, "client_message_id": "1", "text": "halo"})
    assert response.status_code == 404 and response.json() == {"error": "unknown session"}
    assert client.get(f"/api/webchat/sessions/{'A' * 32}/messages").status_code == 404
    assert client.get("/api/webchat/sessions/..%2f..%2fetc/messages").status_code == 404
    assert stored(sapa) == (0, 0)


def test_history_returns_the_conversation_after_an_id(customer):
    customer.say("halo")
    messages = customer.history()
    assert [(m["direction"], m["sender"]) for m in messages] == [("in", "customer"), ("out", "bot"), ("out", "bot"),
                                                                  ("out", "bot")]  # greeting, name, privacy notice
    assert messages[-1]["text"] == NOTICE
    assert customer.history(after=messages[1]["id"]) == messages[2:]
    assert customer.history() == messages  # reading twice changes nothing


def test_a_new_session_has_empty_history(customer):
    assert customer.history() == []


def test_the_page_is_served_and_loads_nothing_from_other_hosts(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'id="chat-input"' in page.text
    for asset in ("app.js", "style.css"):
        assert client.get(f"/static/webchat/{asset}").status_code == 200
    for path in STATIC.iterdir():
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", path.read_text()), f"{path.name} uses a remote URL"


def test_healthz_reports_database_and_scheduler(client, sapa):
    body = client.get("/healthz").json()
    assert body["database"] == {"ok": True, "dialect": sapa.database.dialect, "revision": max(current_heads())}
    assert body["scheduler"]["enabled"] is True
    assert body["scheduler"]["running"] is False  # background off in tests: reported honestly
    assert body["status"] == "degraded"
    assert body["outbox"] == {"pending": 0, "failed": 0}


@pytest.mark.parametrize("broken", ["unmigrated-sqlite", "unreachable-postgres"])
def test_healthz_says_error_when_the_database_is_unusable(broken, base_settings, interpreter, tmp_path):
    from fastapi.testclient import TestClient

    from bot.app import build, create_app
    from store import create_database

    url = f"sqlite:///{tmp_path}/empty.db" if broken == "unmigrated-sqlite" else (
        "postgresql+psycopg://sapa@127.0.0.1:1/sapa?connect_timeout=2")
    sapa = build(base_settings, interpreter=interpreter, database=create_database(url), model_cache=None)
    with TestClient(create_app(sapa, background=False)) as client:
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "error"
    assert response.json()["database"]["ok"] is False
