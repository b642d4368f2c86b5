"""store.fast_flush: a flush of column changes writes what the unit of work would, with one UPDATE per changed row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, event, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from store import Database
from store.models import ChannelIdentity, Conversation, Customer, Ticket
from tests.store.test_direct_insert import a_conversation

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def statements(database: Database) -> list[str]:
    seen: list[str] = []
    event.listen(database.engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_: seen.append(" ".join(statement.split()[:2]).upper()))
    return seen


def change(session: Session, conversation_id: int) -> Conversation:
    """The same changes, for both kinds of session: times, a JSON column, a nullable text, one unchanged value."""
    conversation = session.get_one(Conversation, conversation_id)
    identity = session.get_one(ChannelIdentity, conversation.identity_id)
    conversation.last_message_at = NOW + timedelta(minutes=5)
    conversation.last_inbound_at = NOW + timedelta(minutes=5)
    conversation.pending_data = {"step": "name", "tries": [1, 2]}
    conversation.pending_question = "intake:name"
    conversation.language = "id"  # the value it had: no column of the UPDATE
    identity.last_inbound_at = NOW + timedelta(minutes=5)
    identity.display_name = "Sari W."
    return conversation


def stored(database: Database, conversation_id: int) -> tuple[object, ...]:
    with database.unit_of_work(read_only=True) as session:
        conversation = session.get_one(Conversation, conversation_id)
        identity = session.get_one(ChannelIdentity, conversation.identity_id)
        return (conversation.last_message_at, conversation.last_inbound_at, conversation.pending_data,
                conversation.pending_question, conversation.language, identity.last_inbound_at,
                identity.display_name)


def test_column_changes_are_stored_as_the_unit_of_work_stores_them(database: Database):
    ours, theirs = a_conversation(database), a_conversation(database, "t" * 32)
    seen = statements(database)
    with database.unit_of_work() as session:
        change(session, ours)
        seen.clear()
    # One UPDATE per changed row (identities before conversations: tables in dependency order), then the commit.
    assert [s for s in seen if s.startswith("UPDATE")] == ["UPDATE CHANNEL_IDENTITIES", "UPDATE CONVERSATIONS"]
    with Session(database.engine) as session, session.begin():  # SQLAlchemy's own unit of work
        change(session, theirs)
    assert stored(database, ours) == stored(database, theirs)
    assert stored(database, ours)[2] == {"step": "name", "tries": [1, 2]}


def test_a_value_set_to_what_it_was_writes_nothing(database: Database):
    conversation_id = a_conversation(database)
    seen = statements(database)
    with database.unit_of_work() as session:
        conversation = session.get_one(Conversation, conversation_id)
        conversation.language = "id"
        conversation.last_message_at = NOW
        seen.clear()
        session.flush()
        assert seen == []
        assert not session.dirty or not session.is_modified(conversation)


def test_a_query_sees_what_was_changed_before_it(database: Database):
    conversation_id = a_conversation(database)
    with database.unit_of_work() as session:
        conversation = session.get_one(Conversation, conversation_id)
        conversation.status = "waiting_agent"
        # Autoflush before the query: the database answers with the change.
        assert session.scalar(select(Conversation.status).where(Conversation.id == conversation_id)) == "waiting_agent"
        conversation.status = "agent"
        session.expire(conversation, ["status"])  # nothing pending survives an expire, as with the unit of work
        assert conversation.status == "waiting_agent"


def test_new_rows_and_relationships_go_through_the_unit_of_work(database: Database):
    conversation_id = a_conversation(database)
    with database.unit_of_work() as session:
        conversation = session.get_one(Conversation, conversation_id)
        conversation.status = "agent"
        ticket = Ticket(customer_id=conversation.customer_id, conversation_id=conversation.id, kind="complaint",
                        status="open", priority=1, category="delivery", subject="Paket belum sampai",
                        created_at=NOW, updated_at=NOW, resolution_due_at=NOW + timedelta(hours=24))
        session.add(ticket)
        session.flush()  # a new row: the unit of work writes it, and the change beside it
        assert ticket.id is not None
        customer = session.get_one(Customer, conversation.customer_id)
        moved = ChannelIdentity(channel="telegram", address="777", created_at=NOW)
        customer.identities.append(moved)  # a relationship: the unit of work sets the foreign key
    with database.unit_of_work(read_only=True) as session:
        assert session.get_one(Conversation, conversation_id).status == "agent"
        identity = session.scalars(select(ChannelIdentity).where(ChannelIdentity.address == "777")).one()
        assert identity.customer_id == session.get_one(Conversation, conversation_id).customer_id


def test_a_rolled_back_savepoint_takes_its_changes_back_in_memory_too(database: Database):
    conversation_id = a_conversation(database)
    with database.unit_of_work() as session:
        conversation = session.get_one(Conversation, conversation_id)
        with pytest.raises(RuntimeError), session.begin_nested():
            conversation.pending_question = "intake:name"
            session.flush()
            raise RuntimeError("the handler failed")
        # Expired by the rollback and read again: the object is what the database holds.
        assert conversation.pending_question is None
    with database.unit_of_work(read_only=True) as session:
        assert session.get_one(Conversation, conversation_id).pending_question is None


def test_a_row_gone_from_under_a_change_is_an_error_not_a_silent_nothing(database: Database):
    conversation_id = a_conversation(database)
    with pytest.raises(StaleDataError), database.unit_of_work() as session:
        conversation = session.get_one(Conversation, conversation_id)
        session.execute(delete(Conversation).where(Conversation.id == conversation_id)
                        .execution_options(synchronize_session=False))
        conversation.status = "closed"
        session.flush()
    with database.unit_of_work(read_only=True) as session:  # rolled back: the row is still there
        assert session.get_one(Conversation, conversation_id).status == "bot"
