"""Issue 15, item 2: an oversize body is refused before it is read, on every route, and nothing is stored."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.http.body_limit import MAX_BODY_BYTES
from store.models import Message, WebchatSession


def sessions(sapa) -> int:
    with sapa.database.unit_of_work(read_only=True) as session:
        return session.execute(select(func.count()).select_from(WebchatSession)).scalar_one()


def test_a_huge_body_to_the_session_endpoint_is_refused_and_stores_nothing(client, sapa):
    response = client.post("/api/webchat/sessions", content=b"{" + b" " * (MAX_BODY_BYTES + 1) + b"}",
                           headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json() == {"error": f"request body larger than {MAX_BODY_BYTES} bytes"}
    assert sessions(sapa) == 0
    assert client.post("/api/webchat/sessions", json={"language": "en"}).status_code == 201  # the limit only


def test_a_chunked_body_without_a_length_is_refused_at_the_limit(client, sapa, customer):
    def chunks():
        for _ in range(64):  # 4 MB, 64 KB at a time, no Content-Length
            yield b"x" * 65536

    response = client.post("/api/webchat/messages", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.execute(select(func.count()).select_from(Message)).scalar_one() == 0


def test_a_declared_length_over_the_limit_is_refused_without_reading(client):
    response = client.post("/webhooks/twilio/sms", content=b"x" * 10,
                           headers={"content-length": str(100 * 1024 * 1024)})
    assert response.status_code == 413
