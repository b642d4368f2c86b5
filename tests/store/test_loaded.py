"""store.loaded: objects made from values read with Core are the session's, as a query's load makes them."""

from __future__ import annotations

from sqlalchemy import select

from store import Database, loaded
from store.models import ChannelIdentity, Conversation, Customer
from tests.store.test_direct_insert import a_conversation


def test_a_row_read_with_core_becomes_a_loaded_object_of_the_session(database: Database):
    conversation_id = a_conversation(database)
    with database.unit_of_work() as session:
        columns = [column for _, column in loaded.columns(Conversation)]
        row = session.execute(select(*columns).where(Conversation.id == conversation_id)).one()
        conversation = loaded.attach_row(session, Conversation, row)
        assert conversation is not None and conversation.id == conversation_id
        assert session.get(Conversation, conversation_id) is conversation  # no second object, no SELECT
        assert not session.is_modified(conversation)
        # A relationship-free row, but its foreign keys work as on any loaded object; a change is an UPDATE.
        identity = session.get_one(ChannelIdentity, conversation.identity_id)
        assert identity.customer.name == "Sari"  # loaded on first use
        conversation.status = "closed"
    with database.unit_of_work(read_only=True) as session:
        assert session.get_one(Conversation, conversation_id).status == "closed"


def test_the_object_the_session_already_holds_wins_with_its_pending_changes(database: Database):
    conversation_id = a_conversation(database)
    with database.unit_of_work() as session:
        held = session.get_one(Conversation, conversation_id)
        held.status = "agent"  # not flushed: a query without populate_existing leaves it so
        columns = [column for _, column in loaded.columns(Conversation)]
        row = session.connection().execute(select(*columns).where(Conversation.id == conversation_id)).one()
        assert loaded.attach_row(session, Conversation, row) is held
        assert held.status == "agent"


def test_an_outer_join_that_found_nothing_is_none(database: Database):
    with database.unit_of_work() as session:
        assert loaded.attach_row(session, Customer, (None,) * len(loaded.columns(Customer))) is None
