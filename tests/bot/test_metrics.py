"""GET /metrics: after real traffic through the webhooks, Prometheus reads what happened and what is waiting."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from bot.app import Sapa, build, create_app
from bot.config import ConfigError, load_settings
from store import create_database
from store.tasks import schedule
from tests.conftest import ROOT
from tests.support.providers import ProviderCustomer, drain, provider_sapa

PHONE = "+6281234567890"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database) -> Iterator[Sapa]:
    yield from provider_sapa(db_url, fakes, clock, interpreter, database)


def scrape(client: TestClient, **headers: str) -> Samples:
    """Every sample of the page, parsed as Prometheus parses it: (name, sorted labels) -> value."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")  # the text exposition format
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_messages_in_nlu_time_and_the_outbox_show_after_customers_write(client, fakes, sapa, clock):
    # The counters belong to the process (every test's app shares them): compare before and after.
    before = scrape(client)
    ProviderCustomer(client, fakes, "telegram", "5550001").write("halo")
    ProviderCustomer(client, fakes, "telegram", "5550001").write("mau tanya harga")
    ProviderCustomer(client, fakes, "whatsapp", PHONE).write("halo")
    clock.advance(timedelta(seconds=90))  # the replies wait, unsent: the dispatcher is not running
    waiting = scrape(client)

    assert value(waiting, "sapa_messages_in_total", channel="telegram") - \
        value(before, "sapa_messages_in_total", channel="telegram") == 2
    assert value(waiting, "sapa_messages_in_total", channel="whatsapp") - \
        value(before, "sapa_messages_in_total", channel="whatsapp") == 1
    assert value(waiting, "sapa_nlu_seconds_count", backend="embedded") - \
        value(before, "sapa_nlu_seconds_count", backend="embedded") == 3
    assert value(waiting, "sapa_database_up") == 1
    assert value(waiting, "sapa_outbox_rows", status="pending") >= 3  # at least one reply per message
    assert value(waiting, "sapa_outbox_oldest_due_age_seconds") == pytest.approx(90, abs=1)
    assert value(waiting, "process_cpu_seconds_total") > 0

    drain(sapa, clock)
    sent = scrape(client)
    assert value(sent, "sapa_outbox_rows", status="pending") == 0
    assert value(sent, "sapa_outbox_oldest_due_age_seconds") == 0


def test_scheduler_lag_is_the_age_of_the_oldest_due_task(client, sapa, clock):
    assert value(scrape(client), "sapa_scheduler_lag_seconds") == 0
    with sapa.database.unit_of_work() as session:
        schedule(session, "conversation.close_idle", due_at=clock.now(), now=clock.now(), payload={"minutes": 60})
        schedule(session, "conversation.close_idle", due_at=clock.now() + timedelta(hours=1), now=clock.now(),
                 payload={"minutes": 60})  # not due yet: not lag
    clock.advance(timedelta(seconds=45))
    assert value(scrape(client), "sapa_scheduler_lag_seconds") == pytest.approx(45, abs=1)
    sapa.runner.run_due()
    assert value(scrape(client), "sapa_scheduler_lag_seconds") == 0


def test_a_configured_token_is_required(sapa, clock, interpreter, database):
    server = sapa.settings.server.model_copy(update={"metrics_token": SecretStr("scrape-secret")})
    guarded = build(sapa.settings.model_copy(update={"server": server}), clock=clock, interpreter=interpreter,
                    database=database, model_cache=None)
    with TestClient(create_app(guarded, background=False)) as client:
        missing = client.get("/metrics")
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert client.get("/metrics", headers={"authorization": "Bearer wrong"}).status_code == 403
        assert value(scrape(client, authorization="Bearer scrape-secret"), "sapa_database_up") == 1
        assert client.get("/healthz").status_code in (200, 503)  # the health checks stay open


def test_the_token_comes_from_the_environment_only(tmp_path):
    settings = load_settings(ROOT / "config.yml", environ={"SAPA_METRICS_TOKEN": "scrape-secret"})
    assert settings.server.metrics_token is not None
    assert settings.server.metrics_token.get_secret_value() == "scrape-secret"
    assert load_settings(ROOT / "config.yml", environ={}).server.metrics_token is None
    path = tmp_path / "config.yml"
    path.write_text(f"extends: {ROOT / 'config.yml'}\nserver:\n  metrics_token: in-the-file\n")
    with pytest.raises(ConfigError, match="server.metrics_token: secrets must not be in the file"):
        load_settings(path, environ={})


def test_an_unreachable_database_is_a_value_not_an_error(base_settings, interpreter):
    database = create_database("postgresql+psycopg://sapa@127.0.0.1:1/sapa?connect_timeout=2")
    sapa = build(base_settings, interpreter=interpreter, database=database, model_cache=None)
    try:
        with TestClient(create_app(sapa, background=False)) as client:
            samples = scrape(client)
    finally:
        database.dispose()
    assert value(samples, "sapa_database_up") == 0
    assert ("sapa_outbox_rows", (("status", "pending"),)) not in samples
    assert value(samples, "process_cpu_seconds_total") > 0
