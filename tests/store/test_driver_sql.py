"""store.driver_sql: a statement run by the driver stores exactly what SQLAlchemy's own execution stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from sqlalchemy import Table, bindparam, insert, update

from store import Database, driver_sql
from store.models import Message
from tests.store.test_direct_insert import a_conversation

NOW = datetime(2026, 12, 7, 9, 0, 0, 123456, tzinfo=UTC)
MESSAGES = cast(Table, Message.__table__)


def raw(database: Database, message_id: int) -> tuple[Any, ...]:
    """The row as the database holds it (text for JSON and, on SQLite, the dates), without SQLAlchemy's types."""
    with database.engine.connect() as connection:
        row = connection.exec_driver_sql(
            "SELECT text, buttons, meta, media, language, created_at, reply_to_id FROM messages WHERE id = "
            + str(int(message_id))).one()
    return tuple(row)


def test_an_insert_by_the_driver_stores_what_sqlalchemy_stores(database: Database):
    conversation_id = a_conversation(database)
    with database.engine.begin() as connection:
        customer_id = connection.exec_driver_sql(
            f"SELECT customer_id FROM conversations WHERE id = {int(conversation_id)}").scalar_one()
        values = {"conversation_id": conversation_id, "customer_id": customer_id, "channel": "webchat",
                  "direction": "out", "sender": "bot", "text": "Halo 'Sari' 100% \"ok\" ✓",
                  "buttons": [{"title": "Ya", "payload": "intent:affirm"}], "meta": {"nlu": {"é": [1, None]}},
                  "media": [], "language": "id", "created_at": NOW, "reply_to_id": None}
        statement = insert(MESSAGES).returning(MESSAGES.c.id)
        theirs = connection.execute(statement, values).scalar_one()
        ours = driver_sql.execute(connection, statement, values).scalar_one()
    assert ours != theirs
    assert raw(database, ours) == raw(database, theirs)


def test_an_update_by_the_driver_matches_rows_as_sqlalchemys_does(database: Database):
    conversation_id = a_conversation(database)
    statement = update(MESSAGES).where(MESSAGES.c.id == bindparam("row"))
    with database.engine.begin() as connection:
        customer_id = connection.exec_driver_sql(
            f"SELECT customer_id FROM conversations WHERE id = {int(conversation_id)}").scalar_one()
        ids = [connection.execute(insert(MESSAGES).returning(MESSAGES.c.id), {
            "conversation_id": conversation_id, "customer_id": customer_id, "channel": "webchat", "direction": "in",
            "sender": "customer", "text": "halo", "buttons": [], "media": [], "meta": {}, "created_at": NOW,
        }).scalar_one() for _ in range(2)]
        later = {"meta": {"sentiment": "negatif"}, "created_at": NOW + timedelta(seconds=1)}
        assert connection.execute(statement, {**later, "row": ids[0]}).rowcount == 1
        assert driver_sql.execute(connection, statement, {**later, "row": ids[1]}).rowcount == 1
        assert driver_sql.execute(connection, statement, {**later, "row": 10**12}).rowcount == 0
    assert raw(database, ids[0]) == raw(database, ids[1])


def test_a_statement_with_values_of_its_own_is_refused(database: Database):
    # A bind parameter the caller does not give (here a value built into the statement) would be lost.
    statement = update(MESSAGES).where(MESSAGES.c.id == bindparam("row")).values(text="fixed")
    with database.engine.begin() as connection, pytest.raises(ValueError, match="plain bind parameters"):
        driver_sql.execute(connection, statement, {"row": 1})
