"""Issue 15: while the database cannot be reached, requests get 503 with Retry-After (not a 500 and a traceback),
nothing is half-stored, and the provider's re-delivery afterwards is answered once."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from urllib.parse import urlsplit

import psycopg
import pytest
from sqlalchemy import func, select

from bot.app import Sapa
from store.models import Message
from tests.support.providers import ProviderCustomer, drain, provider_sapa


@pytest.fixture(params=["postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path, sqlite_template) -> str:
    # Only PostgreSQL can be taken away from a running server; the conftest's db_url does the rest.
    from tests import conftest

    return conftest.db_url.__wrapped__(request, tmp_path, sqlite_template)  # type: ignore[attr-defined]


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database) -> Iterator[Sapa]:
    yield from provider_sapa(db_url, fakes, clock, interpreter, database)


def set_reachable(db_url: str, reachable: bool) -> None:
    url = urlsplit(db_url.replace("postgresql+psycopg", "postgresql"))
    name = url.path.lstrip("/")
    with psycopg.connect(f"host={url.hostname} port={url.port} user=postgres dbname=postgres", autocommit=True) as c:
        c.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS {'true' if reachable else 'false'}")
        if not reachable:  # and cut the connections Sapa's pool holds, as a restart would
            c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))


def test_a_webhook_during_a_database_outage_gets_503_and_its_redelivery_is_answered_once(
        sapa: Sapa, client, fakes, clock, db_url, caplog) -> None:
    budi = ProviderCustomer(client, fakes, "telegram", "700555")
    path, body, headers = budi.request("jam buka toko?")
    set_reachable(db_url, False)
    try:
        with caplog.at_level(logging.WARNING):
            refused = client.post(path, content=body, headers=headers)
    finally:
        set_reachable(db_url, True)
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "5"
    assert refused.json() == {"error": "the database is unavailable for a moment; try again"}
    outage = [r.getMessage() for r in caplog.records if r.name == "bot.http.unavailable"]
    assert outage and "POST /webhooks/telegram" in outage[0] and "jam buka" not in outage[0]
    assert not [r for r in caplog.records if r.exc_info]  # one clear line, no traceback

    assert client.post(path, content=body, headers=headers).status_code == 200  # Telegram delivers again
    drain(sapa, clock)
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.execute(select(func.count()).select_from(Message).where(
            Message.direction == "in")).scalar_one() == 1
        replies = list(session.execute(select(Message.text).where(Message.direction == "out")).scalars())
    texts = budi.texts()
    assert "buka setiap hari" in texts[0] and sorted(texts) == sorted(replies)  # the answer (and notice), once
