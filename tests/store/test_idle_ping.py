"""PostgreSQL connections are pinged before use only after sitting idle (store/db.py, issue 18).

pool_pre_ping sent a `SELECT 1` round trip before every transaction. Now a connection returned a moment ago is used
as it is, and one that sat idle longer than PING_AFTER_IDLE_S is checked first and replaced if the server dropped it.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import psycopg
import pytest
from sqlalchemy import text

import store.db
from store.db import Database, create_database, unavailable_reason


@pytest.fixture(params=["postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path, sqlite_template) -> str:
    # Only PostgreSQL pools network connections a server can drop; the conftest's db_url does the rest.
    from tests import conftest

    return conftest.db_url.__wrapped__(request, tmp_path, sqlite_template)  # type: ignore[attr-defined]


@pytest.fixture
def pinged(database: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """The connections the pool pinged (SQLAlchemy's own ping still runs: this only notes each call)."""
    calls: list[object] = []
    real = database.engine.dialect.do_ping

    def noting(dbapi_connection: object) -> bool:
        calls.append(dbapi_connection)
        return real(dbapi_connection)

    monkeypatch.setattr(database.engine.dialect, "do_ping", noting)
    yield calls


def backend_pid(database: Database) -> int:
    with database.unit_of_work() as session:
        return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def drop_connections(db_url: str) -> None:
    """What a server restart does to the pool: every backend of the database is terminated."""
    url = urlsplit(db_url.replace("postgresql+psycopg", "postgresql"))
    with psycopg.connect(f"host={url.hostname} port={url.port} user=postgres dbname=postgres",
                         autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> "
                      "pg_backend_pid()", (url.path.lstrip("/"),))


def test_a_connection_used_a_moment_ago_is_used_without_a_ping(database, pinged):
    first = backend_pid(database)
    assert [backend_pid(database) for _ in range(20)] == [first] * 20  # the same pooled connection, reused
    assert pinged == []


def test_an_idle_connection_is_pinged_and_one_the_server_dropped_is_replaced_unseen(database, db_url, pinged,
                                                                                    monkeypatch):
    before = backend_pid(database)
    monkeypatch.setattr(store.db, "PING_AFTER_IDLE_S", 0.0)  # every pooled connection counts as idle
    drop_connections(db_url)
    after = backend_pid(database)  # no error: the ping found the dead connection and the pool made a new one
    assert after != before
    dead, *_ = pinged  # the dropped one failed its ping and was closed; the new one passed its own
    assert dead.closed and not pinged[-1].closed  # type: ignore[attr-defined]


def test_a_connection_dropped_right_after_use_fails_once_as_unavailable_then_the_pool_is_new(database, db_url,
                                                                                             pinged):
    # Two pooled connections, both returned a moment ago.
    with database.unit_of_work() as one, database.unit_of_work(read_only=True) as two:
        one.execute(text("SELECT 1"))
        two.execute(text("SELECT 1"))
    drop_connections(db_url)
    with pytest.raises(Exception) as failed:
        backend_pid(database)
    assert unavailable_reason(failed.value) is not None  # answered 503 with Retry-After, not a 500
    # The disconnect renewed the whole pool: the other dead connection is not handed out again.
    with database.unit_of_work() as one, database.unit_of_work(read_only=True) as two:
        assert one.execute(text("SELECT 1")).scalar_one() == two.execute(text("SELECT 1")).scalar_one() == 1
    assert pinged == []


def test_sqlite_has_no_pool_ping(tmp_path):
    database = create_database(f"sqlite:///{tmp_path / 'sapa.db'}")
    try:
        # A file, not a server: nothing to drop a connection, nothing pinged.
        assert not database.engine.pool._pre_ping  # type: ignore[attr-defined]
        with database.unit_of_work() as session:
            assert session.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        database.dispose()
