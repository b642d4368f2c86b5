"""Every schema change is a migration: upgrade, downgrade and the models agree, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from store.migrate import current_heads, downgrade, upgrade
from store.models import Base


def test_migrated_schema_matches_the_models(database):
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == [], f"models and migrations differ: {differences}"


def test_downgrade_to_base_and_upgrade_again(db_url, database):
    downgrade(db_url, "base")
    assert set(inspect(database.engine).get_table_names()) <= {"alembic_version"}
    upgrade(db_url)
    tables = set(inspect(database.engine).get_table_names())
    assert {"customers", "channel_identities", "conversations", "messages", "tickets", "ticket_events",
            "agents", "tasks", "outbox", "consents", "audit_log", "knowledge_revisions"} <= tables


def test_there_is_one_head():
    assert len(current_heads()) == 1


def test_sqlite_runs_with_wal_and_foreign_keys(tmp_path):
    from sqlalchemy import text

    from store import create_database

    database = create_database(f"sqlite:///{tmp_path}/x.db")
    with database.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_0010_makes_agent_emails_unique_and_lower_cased_keeping_the_older_agents(db_url, database):
    """The Slack desk's agents become staff rows as they are; two with one email (any case) cannot both sign in
    with it, so the older keeps it and the newer gets none (an admin gives it another)."""
    from datetime import UTC, datetime

    from sqlalchemy import text

    downgrade(db_url, "0009")
    now = datetime(2026, 12, 6, tzinfo=UTC)
    with database.engine.begin() as connection:
        for name, email in (("Sari", " Sari@Example.co.id"), ("Budi", None), ("Sari 2", "sari@example.co.id"),
                            ("Dewi", "dewi@example.co.id")):
            connection.execute(text("INSERT INTO agents (name, role, email, active, created_at) "
                                    "VALUES (:name, 'customer_service', :email, true, :now)"),
                               {"name": name, "email": email, "now": now})
    upgrade(db_url)
    with database.engine.connect() as connection:
        rows = connection.execute(text("SELECT name, email, availability, password_hash FROM agents ORDER BY id"))
        assert [tuple(row) for row in rows] == [("Sari", "sari@example.co.id", "away", None),
                                                ("Budi", None, "away", None), ("Sari 2", None, "away", None),
                                                ("Dewi", "dewi@example.co.id", "away", None)]


def test_0013_adds_the_shared_rate_buckets_and_takes_them_away_again(db_url, database):
    """Replicas on PostgreSQL share provider rate limits through `rate_buckets`; a downgrade to 0012 drops it."""
    from datetime import UTC, datetime

    from sqlalchemy import text

    downgrade(db_url, "0012")
    assert "rate_buckets" not in inspect(database.engine).get_table_names()
    upgrade(db_url)
    with database.engine.begin() as connection:
        connection.execute(text("INSERT INTO rate_buckets (key, tokens, as_of) VALUES ('telegram:global', 29.5, :now)"),
                           {"now": datetime(2026, 12, 7, tzinfo=UTC)})
        assert connection.execute(text("SELECT tokens FROM rate_buckets")).scalar() == 29.5
