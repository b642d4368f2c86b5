"""Shared fixtures: each database test runs on SQLite and on a throwaway PostgreSQL server.

Locally a missing PostgreSQL skips its tests with a loud reason; with SAPA_REQUIRE_POSTGRES=1
(set by .ci/run) it is a failure instead.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bot.app import Sapa, build, create_app
from bot.clock import ManualClock
from bot.config import Settings, load_settings
from bot.devtools.fake_providers import FakeProviders
from nlu.embedded import EmbeddedInterpreter, load_or_train
from store import Database, create_database
from store.migrate import upgrade
from tests.support.pgserver import PostgresServer, PostgresUnavailable
from tests.support.providers import TWILIO_TOKEN
from tests.support.slack import Slack
from tests.support.webchat import WebchatUser

# The whole suite's logs, formatted and redacted as production's, are scanned for personal data at the end.
pytest_plugins = ["tests.support.log_scan"]

ROOT = Path(__file__).resolve().parent.parent
_counter = itertools.count()


def _missing(what: str, reason: str, env: str) -> None:
    message = f"{what} UNAVAILABLE, tests skipped: {reason}"
    if os.environ.get(env) == "1":
        pytest.fail(f"{message} ({env}=1 makes this a failure)", pytrace=False)
    pytest.skip(f"!!! {message} !!!")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer().start()
    except PostgresUnavailable as exc:
        _missing("PostgreSQL", str(exc), "SAPA_REQUIRE_POSTGRES")
    try:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute("CREATE DATABASE sapa_template")
        upgrade(server.url("sapa_template"))
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """A freshly migrated, empty database, on each backend."""
    if request.param == "sqlite":
        target = tmp_path / "sapa.db"
        shutil.copy(sqlite_template, target)
        return f"sqlite:///{target}"
    server: PostgresServer = request.getfixturevalue("pg_server")
    return server.copy_of("sapa_template", f"t{os.getpid()}_{next(_counter)}")


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    database = create_database(db_url)
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    return load_settings(ROOT / "config.yml", environ={})


@pytest.fixture
def settings(base_settings: Settings, db_url: str) -> Settings:
    return base_settings.model_copy(
        update={"database": base_settings.database.model_copy(update={"url": db_url})}
    )


@pytest.fixture(scope="session")
def interpreter(base_settings: Settings) -> EmbeddedInterpreter:
    return load_or_train(base_settings.nlu.confidence_threshold, None, None)


@pytest.fixture(scope="session")
def rasa_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Rasa 3.6 server trained on nlu/data (model cached in var/rasa by data fingerprint).

    The environment comes from nlu/rasa/setup.sh, which .ci/run calls; locally a missing environment
    skips loudly, and SAPA_REQUIRE_RASA=1 (set by .ci/run) makes it a failure.
    """
    from nlu.rasa_server import RasaUnavailable, find_venv, serve, train
    from tests.support.server import free_port

    venv = find_venv()
    if venv is None:
        _missing("Rasa", "no Rasa environment; run `sapa nlu rasa setup` (or bash nlu/rasa/setup.sh)",
                 "SAPA_REQUIRE_RASA")
    assert venv is not None
    try:
        model = train(venv, ROOT / "var" / "rasa")
        log = tmp_path_factory.mktemp("rasa") / "rasa-server.log"
        with serve(venv, model.path, free_port(), log) as server:
            yield server.url
    except RasaUnavailable as exc:
        _missing("Rasa", str(exc), "SAPA_REQUIRE_RASA")


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProviders]:
    """Local fake Telegram, Twilio and Slack APIs for tests that talk to providers."""
    monkeypatch.delenv("TWILIO_REGION", raising=False)
    monkeypatch.delenv("TWILIO_EDGE", raising=False)
    with FakeProviders(twilio_auth_token=TWILIO_TOKEN) as fakes:
        yield fakes


@pytest.fixture
def slack(client: TestClient, fakes: FakeProviders, sapa: Sapa, clock: ManualClock) -> Slack:
    """An agent workspace against the module's desk-enabled `sapa` (see tests/support/slack.py)."""
    return Slack(client, fakes, sapa, clock)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sapa(settings: Settings, clock: ManualClock, interpreter: EmbeddedInterpreter,
         database: Database) -> Iterator[Sapa]:
    sapa = build(settings, clock=clock, interpreter=interpreter, database=database, model_cache=None)
    yield sapa
    sapa.stop_background()


@pytest.fixture
def client(sapa: Sapa) -> Iterator[TestClient]:
    """The real ASGI app, without background threads: tests run the outbox and tasks by hand."""
    with TestClient(create_app(sapa, background=False)) as client:
        yield client


@pytest.fixture
def customer(client: TestClient, sapa: Sapa) -> WebchatUser:
    return WebchatUser(client, sapa)
