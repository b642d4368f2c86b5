"""store.direct_insert: rows written by one INSERT are, to the rest of the transaction, like flushed objects."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import object_session

from store import Database
from store.direct_insert import insert_attached
from store.messages import Outbound, write_outbound
from store.models import ChannelIdentity, Conversation, Customer, Message, OutboxItem

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def a_conversation(database: Database, address: str = "s" * 32) -> int:
    with database.unit_of_work() as session:
        customer = Customer(name="Sari", created_at=NOW, updated_at=NOW, source="webchat")
        session.add(customer)
        session.flush()
        identity = ChannelIdentity(customer_id=customer.id, channel="webchat", address=address, created_at=NOW)
        session.add(identity)
        session.flush()
        conversation = Conversation(customer_id=customer.id, identity_id=identity.id, channel="webchat",
                                    status="bot", language="id", opened_at=NOW, last_message_at=NOW)
        session.add(conversation)
        session.flush()
        return conversation.id


def statements(database: Database) -> list[str]:
    seen: list[str] = []
    event.listen(database.engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_: seen.append(statement.split()[0].upper()))
    return seen


def test_rows_are_written_in_order_and_attached_without_reading_them_back(database: Database):
    conversation_id = a_conversation(database)
    seen = statements(database)
    with database.unit_of_work() as session:
        conversation = session.get_one(Conversation, conversation_id)
        drafts = [Outbound(recipient="s" * 32, text=f"balasan {n}", buttons=[{"title": "Ya", "payload": "yes"}])
                  for n in range(3)]
        seen.clear()
        written = write_outbound(session, conversation, drafts, now=NOW)
        assert seen == ["INSERT", "INSERT"]  # one for the messages, one for their outbox rows
        # Attached and loaded: reading every column asks the database nothing.
        assert [m.text for m in written] == ["balasan 0", "balasan 1", "balasan 2"]
        assert [m.id for m in written] == sorted(m.id for m in written)
        assert all(m.meta == {} and m.media == [] and m.delivery_status == "queued" for m in written)
        assert all(session.get(Message, m.id) is m for m in written)
        assert seen == ["INSERT", "INSERT"]
        # A change to an attached row is an UPDATE at the next flush, like any loaded object's.
        written[0].delivery_status = "sent"
        session.flush()
        assert seen[-1] == "UPDATE"
    with database.unit_of_work(read_only=True) as session:
        rows = session.execute(select(Message.text, Message.delivery_status, OutboxItem.payload, OutboxItem.status)
                               .join(OutboxItem, OutboxItem.message_id == Message.id).order_by(Message.id)).all()
    # Each outbox row belongs to its own message: the texts pair up in order.
    assert [(r[0], r[1], r[2]["text"], r[3]) for r in rows] == [
        ("balasan 0", "sent", "balasan 0", "pending"),
        ("balasan 1", "queued", "balasan 1", "pending"),
        ("balasan 2", "queued", "balasan 2", "pending"),
    ]


def test_a_failed_insert_rolls_back_with_the_transaction(database: Database):
    conversation_id = a_conversation(database)
    with pytest.raises(Exception, match="(?i)foreign key|violates"):
        with database.unit_of_work() as session:
            insert_attached(session, Message, [dict(
                conversation_id=conversation_id, customer_id=10**9, channel="webchat", direction="in",
                sender="customer", text="halo", created_at=NOW)])
    with database.unit_of_work(read_only=True) as session:
        assert session.execute(select(Message)).first() is None


def test_python_defaults_are_applied_as_a_flush_would(database: Database):
    conversation_id = a_conversation(database)
    with database.unit_of_work() as session:
        customer_id = session.get_one(Conversation, conversation_id).customer_id
        (message,) = insert_attached(session, Message, [dict(
            conversation_id=conversation_id, customer_id=customer_id, channel="webchat", direction="in",
            sender="customer", text="halo", created_at=NOW)])
        assert (message.buttons, message.media, message.meta, message.intent) == ([], [], {}, None)
        # Loaded and unchanged: nothing is pending for the next flush, and the session holds this very object.
        assert not session.is_modified(message) and session.get(Message, message.id) is message
        assert object_session(message) is session and message in session
    with database.unit_of_work(read_only=True) as session:
        stored = session.get_one(Message, message.id)
        assert (stored.buttons, stored.media, stored.meta, stored.intent) == ([], [], {}, None)


def test_a_column_that_does_not_exist_is_refused_before_anything_is_written(database: Database):
    conversation_id = a_conversation(database)
    with pytest.raises(TypeError, match="no such columns"), database.unit_of_work() as session:
        insert_attached(session, Message, [dict(conversation_id=conversation_id, text="halo", colour="red")])


def test_a_row_rolled_back_with_a_savepoint_leaves_no_stale_object_for_its_id(database: Database):
    conversation_id = a_conversation(database)
    with database.unit_of_work() as session:
        customer_id = session.get_one(Conversation, conversation_id).customer_id
        row = dict(conversation_id=conversation_id, customer_id=customer_id, channel="webchat", direction="in",
                   sender="customer", created_at=NOW)
        with pytest.raises(RuntimeError), session.begin_nested():
            (first,) = insert_attached(session, Message, [{**row, "text": "dibatalkan"}])
            raise RuntimeError("the handler failed")
        (second,) = insert_attached(session, Message, [{**row, "text": "halo"}])  # SQLite: the same id again
        assert second is not first and second.text == "halo"
        assert session.get(Message, second.id) is second
    with database.unit_of_work(read_only=True) as session:
        assert [m.text for m in session.scalars(select(Message))] == ["halo"]


def test_skip_existing_writes_a_new_value_and_skips_a_stored_one_in_one_statement(database: Database):
    from store.models import Task

    seen = statements(database)
    row = dict(kind="survey", due_at=NOW, payload={"ticket_id": 7}, status="pending", attempts=0,
               dedupe_key="survey:ticket:7", created_at=NOW)
    with database.unit_of_work() as session:
        session.connection()  # the transaction's BEGIN
        seen.clear()
        (first,) = insert_attached(session, Task, [row], skip_existing="dedupe_key")
        assert seen == ["INSERT"] and first.payload == {"ticket_id": 7} and session.get(Task, first.id) is first
        assert insert_attached(session, Task, [{**row, "payload": {"ticket_id": 8}}], skip_existing="dedupe_key") == []
        assert seen == ["INSERT", "INSERT"]  # no look first, no savepoint
    with database.unit_of_work() as session:  # a later transaction: the stored row counts too
        assert insert_attached(session, Task, [row], skip_existing="dedupe_key") == []
        assert insert_attached(session, Task, [{**row, "dedupe_key": None}], skip_existing="dedupe_key")  # NULLs differ
        assert insert_attached(session, Task, [{**row, "dedupe_key": None}], skip_existing="dedupe_key")
    with database.unit_of_work(read_only=True) as session:
        stored = session.execute(select(Task.dedupe_key, Task.payload).order_by(Task.id)).all()
    assert [tuple(r) for r in stored] == [("survey:ticket:7", {"ticket_id": 7}), (None, {"ticket_id": 7}),
                                          (None, {"ticket_id": 7})]


def test_skip_existing_takes_one_row(database: Database):
    from store.models import Task

    row = dict(kind="survey", due_at=NOW, status="pending", attempts=0, created_at=NOW)
    with database.unit_of_work() as session, pytest.raises(ValueError, match="one row"):
        insert_attached(session, Task, [row, row], skip_existing="dedupe_key")


def stored_reply_rows(database: Database) -> list[tuple[object, ...]]:
    """Every column of the replies and their outbox rows but the ids (which differ between writes)."""
    message_columns = [c for c in Message.__table__.columns if c.key != "id"]
    outbox_columns = [c for c in OutboxItem.__table__.columns if c.key not in ("id", "message_id")]
    with database.unit_of_work(read_only=True) as session:
        rows = session.execute(select(*message_columns, *outbox_columns)
                               .join(OutboxItem, OutboxItem.message_id == Message.id).order_by(Message.id)).all()
    return [tuple(row) for row in rows]


def test_one_reply_and_its_outbox_row_are_one_statement_on_postgresql_and_store_the_same(database: Database):
    conversation_id = a_conversation(database)
    seen = statements(database)
    draft = Outbound(recipient="s" * 32, text="Halo Sari 👋 \"kutip\" 100%", buttons=[{"title": "Ya", "payload": "y"}],
                     template_variables={"name": "Sari"}, reply_to_id=None)
    with database.unit_of_work() as session:
        conversation = session.get_one(Conversation, conversation_id)
        seen.clear()
        (written,) = write_outbound(session, conversation, [draft], now=NOW)
        # PostgreSQL: WITH parent_row AS (INSERT INTO messages … RETURNING id) INSERT INTO outbox … SELECT.
        expected = ["WITH"] if database.dialect == "postgresql" else ["INSERT", "INSERT"]
        assert seen == expected
        # The reply is attached and loaded: reading it asks the database nothing.
        assert session.get(Message, written.id) is written and written.text == draft.text
        assert written.delivery_status == "queued" and seen == expected
    with database.unit_of_work(read_only=True) as session:  # the outbox row points at this reply, not another row
        assert list(session.scalars(select(OutboxItem.message_id))) == [written.id]
    one_statement = stored_reply_rows(database)
    # The same reply written by the two-statement path (two drafts) stores the same columns.
    with database.unit_of_work() as session:
        conversation = session.get_one(Conversation, conversation_id)
        write_outbound(session, conversation, [draft, draft], now=NOW)
    assert len(one_statement) == 1 and stored_reply_rows(database) == one_statement * 3
