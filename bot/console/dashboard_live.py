"""The dashboard's "now": the live queue as the inbox shows it, who can answer, and today's volume.

The queue is store/inbox.py's (the same filters, the same deadline per row as the inbox's countdowns: an open
ticket's due time, else a waiting VIP's or regular customer's first-response target from the handoff, and the
same "breaching soon" threshold, views.countdown). Presence is the desk's rule (handlers/desk.py PRESENCE): online,
and seen by the console within ten minutes unless they work from Slack only. Today's numbers are `sapa report`'s
for today so far.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.console.views import countdown
from bot.reports import management
from bot.reports.dashboard import conversations_opened
from handlers import desk, sla
from store import inbox
from store.models import Conversation

PAGE = inbox.MAX_PAGE


@dataclass(frozen=True)
class Presence:
    agent_id: int
    name: str
    role: str
    availability: str  # online, away
    present: bool  # counts as able to answer now
    last_seen_at: datetime | None
    holding: int  # open conversations they hold


@dataclass(frozen=True)
class Live:
    waiting: int
    with_agent: int
    soon: list[int]  # open conversations whose deadline is within 30 minutes
    breached: list[int]  # open conversations past their deadline
    due: dict[int, datetime]  # conversation -> its deadline
    staff: list[Presence]
    today: management.Metrics
    conversations_today: int
    today_start: datetime

    @property
    def online(self) -> int:
        return sum(1 for p in self.staff if p.present)

    def ids(self, which: str) -> list[int]:
        return {"soon": self.soon, "breached": self.breached}.get(which, [])


def open_queue(session: Session, settings: Settings, *, viewer_id: int, now: datetime, status: str = "open"
               ) -> tuple[list[int], dict[int, datetime]]:
    """Every open conversation of the queue in the inbox's order, with its deadline where it has one."""
    filters = inbox.QueueFilters(status=status)  # type: ignore[arg-type]
    ids: list[int] = []
    due: dict[int, datetime] = {}
    cursor = None
    while True:
        page = inbox.queue(session, viewer_id=viewer_id, filters=filters, limit=PAGE, cursor=cursor)
        for row in page.rows:
            ids.append(row.conversation_id)
            deadline = row.sla_due or sla.handoff_due(settings, row.status, row.vip, row.waiting_since)
            if deadline is not None:
                due[row.conversation_id] = deadline
        if page.next_cursor is None:
            return ids, due
        cursor = page.next_cursor


def snapshot(session: Session, settings: Settings, *, viewer_id: int, now: datetime) -> Live:
    ids, due = open_queue(session, settings, viewer_id=viewer_id, now=now)
    states = {i: (countdown(due[i], now) or {}).get("state") for i in ids if i in due}
    holding = dict(session.execute(select(Conversation.owner_agent_id, func.count())
                                   .where(Conversation.status.in_(inbox.OPEN_STATUSES),
                                          Conversation.owner_agent_id.is_not(None))
                                   .group_by(Conversation.owner_agent_id)).all())
    staff = [Presence(a.id, a.name, a.role, a.availability, desk.present(a, now), a.last_seen_at,
                      int(holding.get(a.id, 0))) for a in desk.staff_for_transfer(session)]
    today_start = datetime.combine(now.astimezone(settings.tz).date(), time(), settings.tz)
    return Live(
        waiting=inbox.count(session, viewer_id=viewer_id, filters=inbox.QueueFilters(status="waiting")),
        with_agent=inbox.count(session, viewer_id=viewer_id, filters=inbox.QueueFilters(status="with_agent")),
        soon=[i for i in ids if states.get(i) == "soon"], breached=[i for i in ids if states.get(i) == "breached"],
        due=due, staff=sorted(staff, key=lambda p: (not p.present, p.name.lower())),
        today=management.measure(session, settings, today_start, now, now=now),
        conversations_today=int(session.execute(conversations_opened(
            select(func.count(Conversation.id)), today_start, now, False)).scalar_one()),
        today_start=today_start)


def live_ids(session: Session, settings: Settings, which: str, *, viewer_id: int, now: datetime
             ) -> tuple[list[int], dict[int, datetime]]:
    """The conversations behind a live number: waiting, with_agent, soon or breached."""
    if which in ("waiting", "with_agent"):
        return open_queue(session, settings, viewer_id=viewer_id, now=now, status=which)
    ids, due = open_queue(session, settings, viewer_id=viewer_id, now=now)
    wanted = [i for i in ids if i in due and (countdown(due[i], now) or {}).get("state") == which]
    return wanted, due
