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


def test_0014_drops_the_repeated_messages_index_and_reads_the_latest_consent_from_an_index(db_url, database):
    """One index fewer written per message; the latest consent of a customer for a purpose needs no sort."""
    from sqlalchemy import text

    def indexes(table: str) -> set[str]:
        return {index["name"] for index in inspect(database.engine).get_indexes(table)}

    assert "ix_messages_customer_id" not in indexes("messages")
    assert {"ix_messages_customer_id_id", "ix_messages_customer_id_created_at"} <= indexes("messages")
    assert indexes("consents") >= {"ix_consents_customer_id_purpose_recorded_at"}
    assert "ix_consents_customer_id" not in indexes("consents")
    latest = ("SELECT granted FROM consents WHERE customer_id = 7 AND purpose = 'marketing' "
              "ORDER BY recorded_at DESC, id DESC LIMIT 1")
    with database.engine.connect() as connection:
        if database.dialect == "sqlite":
            plan = " ".join(str(row[-1]) for row in connection.execute(text(f"EXPLAIN QUERY PLAN {latest}")))
            assert "ix_consents_customer_id_purpose_recorded_at" in plan and "TEMP B-TREE" not in plan, plan
        else:
            connection.execute(text("SET enable_seqscan = off"))  # an empty table: the planner's choice, not cost
            plan = " ".join(row[0] for row in connection.execute(text(f"EXPLAIN {latest}")))
            assert "ix_consents_customer_id_purpose_recorded_at" in plan and "Sort" not in plan, plan

    downgrade(db_url, "0013")
    assert "ix_messages_customer_id" in indexes("messages")
    assert "ix_consents_customer_id" in indexes("consents")
    assert "ix_consents_customer_id_purpose_recorded_at" not in indexes("consents")
    upgrade(db_url)
    assert "ix_consents_customer_id_purpose_recorded_at" in indexes("consents")
