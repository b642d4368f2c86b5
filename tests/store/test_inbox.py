"""The staff inbox's queries (store/inbox.py): the queue's order, filters, pages and totals; a customer's transcript
across channels; the marker a live page polls; and that each query finds its rows through an index."""

from __future__ import annotations

import base64
import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, insert

from store import inbox
from store.inbox import QueueFilters
from store.models import Agent, ChannelIdentity, Conversation, Customer, Message, Ticket
from tests.store.test_query_plans import distinct_explainable, full_scans, record

T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
_numbers = itertools.count(1)


@dataclass
class World:
    """A database with staff, customers and their conversations, built row by row for one test."""

    database: Any
    staff: dict[str, int] = field(default_factory=dict)

    def agent(self, name: str, role: str = "customer_service") -> int:
        with self.database.unit_of_work() as session:
            member = Agent(name=name, role=role, active=True, created_at=T0)
            session.add(member)
            session.flush()
            self.staff[name] = member.id
            return member.id

    def customer(self, name: str | None, *, vip: bool = False, tier: str | None = None) -> int:
        with self.database.unit_of_work() as session:
            person = Customer(name=name, is_vip=vip, vip_tier=tier, source="webchat", created_at=T0, updated_at=T0)
            session.add(person)
            session.flush()
            return person.id

    def conversation(self, customer_id: int, *, minutes: int, status: str = "waiting", channel: str = "webchat",
                     owner: str | None = None, display_name: str | None = None, language: str = "id") -> int:
        """A conversation handed to people `minutes` after T0 (None: never handed off)."""
        with self.database.unit_of_work() as session:
            identity = ChannelIdentity(customer_id=customer_id, channel=channel, address=f"a{next(_numbers)}",
                                       display_name=display_name, created_at=T0)
            session.add(identity)
            session.flush()
            at = T0 + timedelta(minutes=minutes)
            chat = Conversation(customer_id=customer_id, identity_id=identity.id, channel=channel, status=status,
                                owner_agent_id=self.staff[owner] if owner else None, language=language,
                                pending_data={}, opened_at=T0, last_message_at=at, handed_off_at=at)
            session.add(chat)
            session.flush()
            return chat.id

    def message(self, conversation_id: int, text: str, *, direction: str = "in", minutes: int = 0) -> int:
        with self.database.unit_of_work() as session:
            chat = session.get_one(Conversation, conversation_id)
            row = Message(conversation_id=chat.id, customer_id=chat.customer_id, channel=chat.channel,
                          direction=direction, sender={"in": "customer", "out": "agent", "note": "agent"}[direction],
                          text=text, buttons=[], media=[], meta={}, created_at=T0 + timedelta(minutes=minutes))
            session.add(row)
            chat.last_message_at = max(chat.last_message_at, row.created_at)
            session.flush()
            return row.id

    def ticket(self, customer_id: int, *, first_due: int | None, resolution_due: int | None,
               answered: bool = False, status: str = "open") -> None:
        def at(minutes: int | None) -> datetime | None:
            return None if minutes is None else T0 + timedelta(minutes=minutes)

        with self.database.unit_of_work() as session:
            session.add(Ticket(customer_id=customer_id, kind="complaint", status=status, subject="rusak",
                               first_response_due_at=at(first_due), resolution_due_at=at(resolution_due),
                               first_responded_at=T0 if answered else None, created_at=T0, updated_at=T0))

    def page(self, viewer: str = "Rina", limit: int = 50, cursor: str | None = None, **filters: Any) -> inbox.QueuePage:
        with self.database.unit_of_work(read_only=True) as session:
            return inbox.queue(session, viewer_id=self.staff[viewer], filters=QueueFilters(**filters), limit=limit,
                               cursor=cursor)

    def ids(self, **filters: Any) -> list[int]:
        return [row.conversation_id for row in self.page(**filters).rows]


@pytest.fixture
def world(database) -> World:
    built = World(database)
    built.agent("Rina")
    built.agent("Andi", "account_manager")
    return built


def test_vips_come_first_then_whoever_has_waited_longest(world):
    budi, sari = world.customer("Budi"), world.customer("Sari", vip=True, tier="gold")
    dewi, eko = world.customer("Dewi"), world.customer("Eko", vip=True)
    late_vip = world.conversation(sari, minutes=30)
    early = world.conversation(budi, minutes=5)
    early_vip = world.conversation(eko, minutes=20, status="with_agent", owner="Andi")
    latest = world.conversation(dewi, minutes=40)
    same_time = world.conversation(dewi, minutes=40, channel="telegram")
    world.conversation(budi, minutes=1, status="closed")
    world.conversation(budi, minutes=2, status="bot")
    page = world.page()
    assert [row.conversation_id for row in page.rows] == [early_vip, late_vip, early, latest, same_time]
    assert page.total == 5 and page.next_cursor is None
    first = page.rows[0]
    assert (first.customer_name, first.vip, first.owner_name, first.status) == ("Eko", True, "Andi", "with_agent")
    assert (page.rows[1].vip_tier, page.rows[1].waiting_since) == ("gold", T0 + timedelta(minutes=30))


def test_filters_narrow_the_queue_and_the_total(world):
    budi, sari = world.customer("Budi"), world.customer("Sari", vip=True)
    mine = world.conversation(budi, minutes=1, status="with_agent", owner="Rina", channel="telegram")
    theirs = world.conversation(sari, minutes=2, status="with_agent", owner="Andi")
    waiting = world.conversation(budi, minutes=3)
    done = world.conversation(sari, minutes=4, status="closed", owner="Rina")
    older_done = world.conversation(budi, minutes=0, status="closed")
    assert world.ids(mine=True) == [mine]
    assert world.ids(viewer="Andi", mine=True) == [theirs]
    assert world.ids(unassigned=True) == [waiting]
    assert world.ids(vip=True) == [theirs]
    assert world.ids(channel="telegram") == [mine]
    assert world.ids(status="waiting") == [waiting]
    assert world.ids(status="with_agent") == [theirs, mine]
    assert world.ids(status="closed") == [done, older_done]  # the desk's history, newest first
    assert world.page(status="closed", vip=True).total == 1
    assert world.page(mine=True, channel="webchat").total == 0


def test_pages_follow_each_other_with_no_gap_and_no_repeat(world):
    people = [world.customer(f"P{i}", vip=i % 4 == 0) for i in range(11)]
    for index, person in enumerate(people):
        world.conversation(person, minutes=index // 3)  # three at a time share a handoff minute
    everything = world.ids()
    seen, cursor, pages = [], None, 0
    while True:
        page = world.page(limit=3, cursor=cursor)
        assert page.total == 11
        seen += [row.conversation_id for row in page.rows]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == everything and pages == 4
    closed = [world.conversation(person, minutes=m, status="closed") for m, person in enumerate(people[:5])]
    first = world.page(status="closed", limit=2)
    second = world.page(status="closed", limit=2, cursor=first.next_cursor)
    assert [r.conversation_id for r in first.rows + second.rows] == closed[::-1][:4]


def encoded(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize("cursor", [
    "not a cursor", "", "%%%", encoded({"x": 1}), encoded(["o", 1, "2026-01-05T02:00:00", 1]),  # a naive time
    encoded(["o", 2, "2026-01-05T02:00:00+00:00", 1]), encoded(["o", 1, "2026-01-05T02:00:00+00:00", "1"]),
    encoded(["c", 0, "2026-01-05T02:00:00+00:00", 1]),  # the closed listing's cursor on the open queue
])
def test_a_malformed_or_foreign_cursor_is_a_clear_value_error(world, cursor):
    with pytest.raises(ValueError, match="cursor"):
        world.page(cursor=cursor)


def test_a_row_says_who_waits_what_they_said_last_and_the_first_due_time(world):
    nameless = world.customer(None)
    chat = world.conversation(nameless, minutes=1, display_name="budi_tg", channel="telegram", language="en")
    world.message(chat, "pesanan   saya\nbelum sampai " + "x" * 200, minutes=1)
    world.message(chat, "Baik, kami cek.", direction="out", minutes=2)
    world.message(chat, "catatan", direction="note", minutes=3)
    world.ticket(nameless, first_due=90, resolution_due=500)
    world.ticket(nameless, first_due=60, resolution_due=400, answered=True)
    world.ticket(nameless, first_due=10, resolution_due=20, status="resolved")
    quiet = world.conversation(world.customer("Eko"), minutes=2)
    world.ticket(session_customer(world, quiet), first_due=30, resolution_due=700, answered=True)
    [row, other] = world.page().rows
    assert (row.customer_name, row.channel, row.language) == ("budi_tg", "telegram", "en")
    assert row.last_text is not None and row.last_text.startswith("pesanan saya belum sampai xxx")
    assert len(row.last_text) == inbox.PREVIEW_CHARS and row.last_text.endswith("…")
    assert row.sla_due == T0 + timedelta(minutes=90)  # the unanswered first response beats any resolution
    assert row.last_message_at == T0 + timedelta(minutes=3)
    assert (other.sla_due, other.last_text) == (T0 + timedelta(minutes=700), None)


def session_customer(world: World, conversation_id: int) -> int:
    with world.database.unit_of_work(read_only=True) as session:
        return session.get_one(Conversation, conversation_id).customer_id


def test_a_transcript_pages_back_through_every_channel_of_the_customer(world):
    budi = world.customer("Budi")
    web = world.conversation(budi, minutes=0, status="closed")
    telegram = world.conversation(budi, minutes=10, channel="telegram")
    other = world.conversation(world.customer("Eko"), minutes=5)
    ids = [world.message(web, "halo dari web", minutes=0), world.message(web, "dijawab", direction="out", minutes=1),
           world.message(other, "bukan Budi", minutes=2), world.message(telegram, "halo dari telegram", minutes=10),
           world.message(telegram, "pelanggan lama", direction="note", minutes=11)]
    mine = [i for i in ids if i != ids[2]]
    with world.database.unit_of_work(read_only=True) as session:
        newest = inbox.transcript(session, budi, limit=3)
        older = inbox.transcript(session, budi, before_id=newest.older_cursor, limit=3)
        later = inbox.messages_after(session, budi, mine[1])
        everything = inbox.transcript(session, budi)
    assert [m.id for m in newest.messages] == mine[1:] and newest.older_cursor == mine[1]
    assert [m.id for m in older.messages] == mine[:1] and older.older_cursor is None
    assert [(m.channel, m.direction) for m in everything.messages] == [
        ("webchat", "in"), ("webchat", "out"), ("telegram", "in"), ("telegram", "note")]
    assert [m.id for m in later] == mine[2:]


def test_the_marker_changes_whenever_the_open_queue_does(world):
    budi = world.customer("Budi")
    chat = world.conversation(budi, minutes=1)

    def marker() -> str:
        with world.database.unit_of_work(read_only=True) as session:
            return inbox.queue_marker(session)

    seen = [marker()]
    assert marker() == seen[0]  # nothing happened, nothing changed

    def changed(step: Any) -> None:
        with world.database.unit_of_work() as session:
            step(session.get_one(Conversation, chat))
        seen.append(marker())
        assert seen[-1] != seen[-2]

    changed(lambda c: setattr(c, "owner_agent_id", world.staff["Rina"]) or setattr(c, "status", "with_agent"))
    changed(lambda c: setattr(c, "owner_agent_id", world.staff["Andi"]))  # a transfer
    world.message(chat, "halo?", minutes=30)
    seen.append(marker())
    assert seen[-1] != seen[-2]
    changed(lambda c: setattr(c, "status", "closed"))
    world.conversation(budi, minutes=40)
    assert marker() != seen[-1]


def settled_history(database: Any, customers: int = 2000) -> None:
    """What an installation holds besides the queue: customers whose conversations the bot closed long ago (or
    still has), each with a message and a resolved ticket. SQLite's planner reads the tables' statistics (ANALYZE,
    in full_scans) and, on tables of a few rows, rightly prefers to read them whole; so the plans are judged on a
    database shaped like a real one."""
    first = 100_000  # ids far from the test's own rows
    rows = range(first, first + customers)
    with database.unit_of_work() as session:
        session.execute(insert(Customer), [{"id": i, "name": f"H{i}", "is_vip": False, "source": "webchat",
                                            "created_at": T0, "updated_at": T0} for i in rows])
        session.execute(insert(ChannelIdentity), [{"id": i, "customer_id": i, "channel": "webchat",
                                                   "address": f"h{i}", "created_at": T0} for i in rows])
        session.execute(insert(Conversation), [{"id": i, "customer_id": i, "identity_id": i, "channel": "webchat",
                                                "status": "bot" if i % 4 == 0 else "closed", "language": "id",
                                                "pending_data": {}, "opened_at": T0, "last_message_at": T0,
                                                "closed_at": T0}
                                               for i in rows])
        session.execute(insert(Message), [{"id": i, "conversation_id": i, "customer_id": i, "channel": "webchat",
                                           "direction": "in", "sender": "customer", "text": "halo", "buttons": [],
                                           "media": [], "meta": {}, "created_at": T0} for i in rows])
        session.execute(insert(Ticket), [{"id": i, "customer_id": i, "conversation_id": i, "kind": "complaint",
                                          "status": "resolved", "subject": "s", "created_at": T0, "updated_at": T0}
                                         for i in rows])


def test_the_queue_and_transcript_queries_walk_indexes(world):
    """Issue 15's rule for hot paths: no full scan of a table that grows with history (tests/store/
    test_query_plans.py explains how plans are judged on each database)."""
    budi, sari = world.customer("Budi"), world.customer("Sari", vip=True)
    chat = world.conversation(budi, minutes=1)
    world.conversation(sari, minutes=2, status="with_agent", owner="Rina")
    world.conversation(budi, minutes=0, status="closed")
    world.message(chat, "halo")
    world.ticket(budi, first_due=30, resolution_due=60)
    settled_history(world.database)
    engine = world.database.engine
    seen, listener = record(engine)
    try:
        for filters in ({}, {"mine": True}, {"unassigned": True}, {"vip": True}, {"channel": "telegram"},
                        {"status": "waiting"}, {"status": "with_agent"}, {"status": "closed"}):
            first = world.page(limit=1, **filters)
            if first.next_cursor:
                world.page(limit=1, cursor=first.next_cursor, **filters)
        with world.database.unit_of_work(read_only=True) as session:
            page = inbox.transcript(session, budi, limit=1)
            inbox.transcript(session, budi, before_id=page.messages[0].id + 1, limit=1)
            inbox.messages_after(session, budi, 0)
            inbox.queue_marker(session)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    statements = distinct_explainable(seen)
    assert len(statements) > 15
    scans = full_scans(engine, statements)
    report = "\n\n".join(f"{item.statement}\n  " + "\n  ".join(plan) for item, plan, _ in scans)
    assert not scans, f"full scans:\n{report}"
