"""What is behind a number of the dashboard: the tickets, surveys or conversations it counts.

Each drill selects with the very query or predicate the number came from (management.ticket_rows and the
verdicts of TicketRow, management.resolved_tickets, escalation_events, surveys_answered, counted_messages;
dashboard.conversations_opened, agent_replies), so a list is as long as its number says. The per-conversation
lines (customer, channel, agents, times, CSAT, categories, tier) are also the dashboard's per-conversation export.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.reports import management
from bot.reports.dashboard import agent_replies, conversations_opened
from bot.reports.management import NONE_LABEL, UNASSIGNED, SurveyFacts, TicketFacts, TicketRow
from handlers.desk import ticket_reference
from store.models import Agent, Conversation, Customer, Message, Survey, Ticket, TicketEvent

Shape = Literal["tickets", "surveys", "conversations"]
CHUNK = 500  # ids per IN (...) list: well under SQLite's variable limit

# Ticket cohort (opened in the period): which tickets a number counts.
COHORT: dict[str, Callable[[TicketRow, datetime], bool]] = {
    "opened": lambda r, now: True,
    "answered": lambda r, now: r.answered_at is not None,  # first-response times
    "resolved_cohort": lambda r, now: r.ticket.resolved_at is not None,  # resolution times
    "fr_met": lambda r, now: r.first_response_verdict(now) == "met",
    "fr_breached": lambda r, now: r.first_response_verdict(now) == "breached",
    "fr_pending": lambda r, now: r.first_response_verdict(now) == "pending",
    "res_met": lambda r, now: r.resolution_verdict(now) == "met",
    "res_breached": lambda r, now: r.resolution_verdict(now) == "breached",
    "res_pending": lambda r, now: r.resolution_verdict(now) == "pending",
    "unanswered_past_due": lambda r, now: r.unanswered_past_due(now),
}
# How the report groups the cohort (management.measure's _group keys).
TICKET_GROUPS: dict[str, Callable[[TicketRow], str]] = {
    "category": lambda r: r.ticket.category or NONE_LABEL,
    "channel": lambda r: r.channel,
    "agent": lambda r: r.agent,
    "tier": lambda r: r.tier,
    "kind": lambda r: r.ticket.kind,
    "root_cause": lambda r: r.ticket.root_cause or NONE_LABEL,
}
SURVEY_METRICS = ("csat", "csat_low", "nps", "nps_detractors")
OTHER_METRICS = ("resolved", "escalations", "conversations", "messages", "agent_replies")
METRICS = (*COHORT, *SURVEY_METRICS, *OTHER_METRICS)
GROUPS = (*TICKET_GROUPS, "level", "day")


@dataclass(frozen=True)
class TicketLine:
    ticket_id: int
    reference: str
    conversation_id: int | None
    customer_id: int
    customer: str
    tier: str
    channel: str
    agent: str
    kind: str
    category: str
    root_cause: str
    status: str
    escalation_level: int
    opened_at: datetime
    due_at: datetime | None  # the due time the number judged (first response or resolution)
    done_at: datetime | None  # answered or resolved
    minutes: float | None  # done_at - opened (or reopened)


@dataclass(frozen=True)
class SurveyLine:
    survey_id: int
    kind: str
    ticket_id: int | None
    reference: str | None
    conversation_id: int | None
    customer_id: int
    customer: str
    tier: str
    channel: str
    agent: str
    category: str
    score: int
    comment: str | None
    answered_at: datetime | None


@dataclass(frozen=True)
class ConversationLine:
    conversation_id: int
    customer_id: int
    customer: str
    tier: str  # the customer's VIP tier, "regular" for others
    channel: str
    status: str
    agents: str  # who held it and who wrote in it, comma-separated
    opened_at: datetime
    handed_off_at: datetime | None
    first_reply_at: datetime | None  # an agent's first reply after the handoff
    first_reply_minutes: float | None
    closed_at: datetime | None
    messages_in: int
    messages_out: int
    tickets: str
    categories: str
    csat: str  # the CSAT score(s) answered for it
    counted: int | None = None  # the messages of the drilled number (messages per channel)
    due_at: datetime | None = None  # live queue: the deadline it is measured against


@dataclass(frozen=True)
class Drill:
    shape: Shape
    total: int
    lines: Sequence[TicketLine | SurveyLine | ConversationLine]


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i:i + CHUNK]


def _customers(session: Session, ids: Iterable[int]) -> dict[int, Customer]:
    found: dict[int, Customer] = {}
    for part in _chunks(sorted(set(ids))):
        found.update({c.id: c for c in session.execute(select(Customer).where(Customer.id.in_(part))).scalars()})
    return found


def _name(customer: Customer | None, customer_id: int) -> str:
    return (customer.name if customer is not None else None) or f"#{customer_id}"


def _tier(customer: Customer | None) -> str:
    if customer is None or not customer.is_vip:
        return "regular"
    return customer.vip_tier or "vip"


# --- tickets ----------------------------------------------------------------------------------------------------


def _ticket_line(row: TicketRow, customers: dict[int, Customer], metric: str) -> TicketLine:
    ticket = row.ticket
    resolution = metric.startswith("res") or metric == "resolved"
    due = ticket.resolution_due_at if resolution else ticket.first_response_due_at
    done = ticket.resolved_at if resolution else row.answered_at
    return TicketLine(
        ticket_id=ticket.id, reference=ticket_reference(ticket.id), conversation_id=ticket.conversation_id,
        customer_id=ticket.customer_id, customer=_name(customers.get(ticket.customer_id), ticket.customer_id),
        tier=row.tier, channel=row.channel, agent=row.agent, kind=ticket.kind, category=ticket.category or NONE_LABEL,
        root_cause=ticket.root_cause or NONE_LABEL, status=ticket.status, escalation_level=ticket.escalation_level,
        opened_at=row.started_at, due_at=due, done_at=done,
        minutes=round((done - row.started_at).total_seconds() / 60, 1) if done else None)


def _rows_for(session: Session, tickets: list[Ticket], names: dict[int, str]) -> list[TicketRow]:
    """Tickets outside the cohort (resolved or escalated in the period) described as the cohort's rows are."""
    if not tickets:
        return []
    by_id = {t.id: t for t in tickets}
    cohort: list[TicketRow] = []
    for part in _chunks(sorted(by_id)):
        channels = dict(session.execute(select(Ticket.id, Conversation.channel)
                                        .outerjoin(Conversation, Conversation.id == Ticket.conversation_id)
                                        .where(Ticket.id.in_(part))).all())
        vip = dict(session.execute(select(Ticket.id, Customer.is_vip).join(Customer, Customer.id == Ticket.customer_id)
                                   .where(Ticket.id.in_(part))).all())
        reopened = dict(session.execute(
            select(TicketEvent.ticket_id, func.max(TicketEvent.created_at))
            .where(TicketEvent.kind == "reopened", TicketEvent.ticket_id.in_(part))
            .group_by(TicketEvent.ticket_id)).all())
        for ticket_id in part:
            ticket = by_id[ticket_id]
            cohort.append(TicketRow(TicketFacts.of(ticket), channels.get(ticket_id) or NONE_LABEL,
                                    "vip" if vip.get(ticket_id) else "regular",
                                    names.get(ticket.assigned_agent_id or 0, UNASSIGNED),
                                    reopened.get(ticket_id, ticket.created_at)))
    return cohort


def _tickets_drill(session: Session, rows: list[TicketRow], metric: str, limit: int) -> Drill:
    customers = _customers(session, (r.ticket.customer_id for r in rows[:limit]))
    return Drill("tickets", len(rows), [_ticket_line(r, customers, metric) for r in rows[:limit]])


# --- surveys ----------------------------------------------------------------------------------------------------


def _survey_drill(session: Session, settings: Settings, answers: list[SurveyFacts], names: dict[int, str],
                  limit: int) -> Drill:
    customers = _customers(session, (s.customer_id for s in answers[:limit]))
    lines = [SurveyLine(
        survey_id=s.id, kind=s.kind, ticket_id=s.ticket_id, reference=ticket_reference(s.ticket_id) if s.ticket_id
        else None, conversation_id=s.conversation_id, customer_id=s.customer_id,
        customer=_name(customers.get(s.customer_id), s.customer_id), tier=s.tier, channel=s.channel,
        agent=names.get(s.agent_id or 0, UNASSIGNED), category=s.category or NONE_LABEL, score=s.score or 0,
        comment=s.comment, answered_at=s.answered_at) for s in answers[:limit]]
    return Drill("surveys", len(answers), lines)


SURVEY_GROUPS: dict[str, Callable[[SurveyFacts, dict[int, str]], str]] = {
    "category": lambda s, names: s.category or NONE_LABEL,
    "channel": lambda s, names: s.channel,
    "agent": lambda s, names: names.get(s.agent_id or 0, UNASSIGNED),
    "tier": lambda s, names: s.tier,
}


# --- conversations ----------------------------------------------------------------------------------------------


def conversation_lines(session: Session, ids: Sequence[int], *, counted: dict[int, int] | None = None,
                       due: dict[int, datetime] | None = None) -> list[ConversationLine]:
    """One line per conversation, in the order of `ids`: who, where, who handled it, when, CSAT, categories, tier."""
    names = management.agent_names(session)
    lines: dict[int, ConversationLine] = {}
    for part in _chunks(list(ids)):
        found = list(session.execute(select(Conversation, Customer).join(Customer, Customer.id ==
                                                                         Conversation.customer_id)
                                     .where(Conversation.id.in_(part))))
        counts: dict[int, dict[str, int]] = defaultdict(lambda: {"in": 0, "out": 0})
        writers: dict[int, set[int]] = defaultdict(set)
        for conversation_id, direction, agent_id, n in session.execute(
                select(Message.conversation_id, Message.direction, Message.agent_id, func.count())
                .where(Message.conversation_id.in_(part), Message.direction.in_(("in", "out")))
                .group_by(Message.conversation_id, Message.direction, Message.agent_id)):
            counts[conversation_id][direction] += int(n)
            if agent_id is not None:
                writers[conversation_id].add(agent_id)
        replies: dict[int, list[datetime]] = defaultdict(list)
        # The sender is checked here, not in SQL: SQLite (no statistics) would otherwise walk every agent's message
        # on ix_messages_sender_created_at for each chunk instead of the chunk's conversations (bench/dashboard.py).
        for conversation_id, at, sender in session.execute(
                select(Message.conversation_id, Message.created_at, Message.sender)
                .where(Message.conversation_id.in_(part), Message.direction == "out")):
            if sender == "agent":
                replies[conversation_id].append(at)
        tickets: dict[int, list[Ticket]] = defaultdict(list)
        for ticket in session.execute(select(Ticket).where(Ticket.conversation_id.in_(part))
                                      .order_by(Ticket.id)).scalars():
            tickets[ticket.conversation_id or 0].append(ticket)
        scores: dict[int, list[str]] = defaultdict(list)
        for surveyed, score in session.execute(
                select(Survey.conversation_id, Survey.score)
                .where(Survey.conversation_id.in_(part), Survey.kind == "csat", Survey.status == "answered")
                .order_by(Survey.id)):
            scores[surveyed or 0].append(str(score))
        for conversation, customer in found:
            start = conversation.handed_off_at or conversation.opened_at
            first = min((at for at in replies[conversation.id] if at >= start), default=None)
            people = ([conversation.owner_agent_id] if conversation.owner_agent_id else []) + sorted(
                writers[conversation.id] - {conversation.owner_agent_id})
            categories = sorted({t.category for t in tickets[conversation.id] if t.category})
            lines[conversation.id] = ConversationLine(
                conversation_id=conversation.id, customer_id=customer.id, customer=_name(customer, customer.id),
                tier=_tier(customer), channel=conversation.channel, status=conversation.status,
                agents=", ".join(names.get(a, f"#{a}") for a in people), opened_at=conversation.opened_at,
                handed_off_at=conversation.handed_off_at, first_reply_at=first,
                first_reply_minutes=round((first - start).total_seconds() / 60, 1) if first else None,
                closed_at=conversation.closed_at, messages_in=counts[conversation.id]["in"],
                messages_out=counts[conversation.id]["out"],
                tickets=", ".join(ticket_reference(t.id) for t in tickets[conversation.id]),
                categories=", ".join(categories), csat=", ".join(scores[conversation.id]),
                counted=(counted or {}).get(conversation.id), due_at=(due or {}).get(conversation.id))
    return [lines[i] for i in ids if i in lines]


def _conversations_drill(session: Session, ids: list[int], limit: int, counted: dict[int, int] | None = None
                         ) -> Drill:
    total = sum(counted.values()) if counted is not None else len(ids)
    return Drill("conversations", total, conversation_lines(session, ids[:limit], counted=counted))


# --- the one entry point ----------------------------------------------------------------------------------------


def drill(session: Session, settings: Settings, metric: str, start: datetime, end: datetime, *, now: datetime,
          vip_only: bool = False, group: str | None = None, key: str | None = None, limit: int = 500) -> Drill:
    """The lines behind `metric` for [start, end), narrowed to one group (`group` = `key`) when given.

    `total` is the number the dashboard shows (for messages: the messages, listed by conversation). Raises
    ValueError for an unknown metric or group.
    """
    if metric not in METRICS:
        raise ValueError(f"metric: use one of {', '.join(METRICS)}")
    if group is not None and group not in GROUPS:
        raise ValueError(f"group: use one of {', '.join(GROUPS)}")
    if group is not None and key is None:
        raise ValueError("key: which group to show")
    names = management.agent_names(session)
    if metric in COHORT:
        rows = management.ticket_rows(session, start, end, vip_only, names)
        wanted = COHORT[metric]
        rows = [r for r in rows if wanted(r, now)]
        if group is not None:
            if group not in TICKET_GROUPS:
                raise ValueError(f"group {group} does not apply to {metric}")
            rows = [r for r in rows if TICKET_GROUPS[group](r) == key]
        return _tickets_drill(session, rows, metric, limit)
    if metric == "resolved":
        tickets = list(session.execute(management.resolved_tickets(select(Ticket), start, end, vip_only)
                                       .order_by(Ticket.id)).scalars())
        if group == "kind":
            tickets = [t for t in tickets if t.kind == key]
        return _tickets_drill(session, _rows_for(session, tickets, names), metric, limit)
    if metric == "escalations":
        events = session.execute(management.escalation_events(select(TicketEvent.ticket_id, TicketEvent.detail),
                                                               start, end, vip_only).order_by(TicketEvent.id)).all()
        if group == "level":
            events = [e for e in events if str(int(e.detail.get("level", 0))) == key]
        ids = sorted({e.ticket_id for e in events})
        tickets = [t for part in _chunks(ids)
                   for t in session.execute(select(Ticket).where(Ticket.id.in_(part))).scalars()]
        drilled = _tickets_drill(session, _rows_for(session, sorted(tickets, key=lambda t: t.id), names), metric,
                                 limit)
        return Drill(drilled.shape, len(events), drilled.lines)  # the number counts escalations, not tickets
    if metric in SURVEY_METRICS:
        kind = "nps" if metric.startswith("nps") else "csat"
        answers, _ = management.surveys_answered(session, start, end, vip_only, kind=kind)
        if metric == "csat_low":
            answers = [s for s in answers if (s.score or 0) <= settings.surveys.low_score]
        if metric == "nps_detractors":
            answers = [s for s in answers if (s.score or 0) <= settings.surveys.nps.detractor_max]
        if group is not None:
            if group not in SURVEY_GROUPS:
                raise ValueError(f"group {group} does not apply to {metric}")
            answers = [s for s in answers if SURVEY_GROUPS[group](s, names) == key]
        return _survey_drill(session, settings, answers, names, limit)
    if group not in (None, "channel", "agent"):
        raise ValueError(f"group {group} does not apply to {metric}")
    if metric == "conversations":
        query = conversations_opened(select(Conversation.id), start, end, vip_only)
        if group == "channel":
            query = query.where(Conversation.channel == key)
        return _conversations_drill(session, list(session.execute(query.order_by(Conversation.id)).scalars()),
                                    limit)
    if metric == "messages":
        query = management.counted_messages(select(Message.conversation_id, func.count()), start, end, vip_only)
    else:  # agent_replies
        query = agent_replies(select(Message.conversation_id, func.count()), start, end, vip_only)
        if group == "agent":
            agent = next((i for i, n in names.items() if n == key), None)
            query = query.where(Message.agent_id == agent)
    if group == "channel":
        query = query.where(Message.channel == key)
    counted = {int(c): int(n) for c, n in session.execute(query.group_by(Message.conversation_id)
                                                          .order_by(Message.conversation_id))}
    return _conversations_drill(session, list(counted), limit, counted)


def live_drill(session: Session, ids: list[int], due: dict[int, datetime], limit: int = 500) -> Drill:
    """Conversations of the live queue (the console's inbox decides which), with their deadlines."""
    return Drill("conversations", len(ids), conversation_lines(session, ids[:limit], due=due))


def staff_name(session: Session, agent_id: int) -> str | None:
    agent = session.get(Agent, agent_id)
    return agent.name if agent is not None else None


# --- export shapes ----------------------------------------------------------------------------------------------

TICKET_HEADER = ("ticket", "ticket_id", "conversation_id", "customer_id", "customer", "tier", "channel", "agent",
                 "kind", "category", "root_cause", "status", "escalation_level", "opened_at", "due_at", "done_at",
                 "minutes")
SURVEY_HEADER = ("survey_id", "kind", "ticket", "conversation_id", "customer_id", "customer", "tier", "channel",
                 "agent", "category", "score", "comment", "answered_at")
CONVERSATION_HEADER = ("conversation_id", "customer_id", "customer", "tier", "channel", "status", "agents",
                       "opened_at", "handed_off_at", "first_reply_at", "first_reply_minutes", "closed_at",
                       "messages_in", "messages_out", "tickets", "categories", "csat", "counted", "due_at")


def export_rows(result: Drill) -> tuple[tuple[str, ...], list[list[Any]]]:
    """The drill as a header and rows for bot/console/exports.py."""
    if result.shape == "tickets":
        return TICKET_HEADER, [[ln.reference, ln.ticket_id, ln.conversation_id, ln.customer_id, ln.customer, ln.tier,
                                ln.channel, ln.agent, ln.kind, ln.category, ln.root_cause, ln.status,
                                ln.escalation_level, ln.opened_at, ln.due_at, ln.done_at, ln.minutes]
                               for ln in result.lines if isinstance(ln, TicketLine)]
    if result.shape == "surveys":
        return SURVEY_HEADER, [[ln.survey_id, ln.kind, ln.reference, ln.conversation_id, ln.customer_id, ln.customer,
                                ln.tier, ln.channel, ln.agent, ln.category, ln.score, ln.comment, ln.answered_at]
                               for ln in result.lines if isinstance(ln, SurveyLine)]
    return CONVERSATION_HEADER, [conversation_row(ln) for ln in result.lines if isinstance(ln, ConversationLine)]


def conversation_row(ln: ConversationLine) -> list[Any]:
    return [ln.conversation_id, ln.customer_id, ln.customer, ln.tier, ln.channel, ln.status, ln.agents, ln.opened_at,
            ln.handed_off_at, ln.first_reply_at, ln.first_reply_minutes, ln.closed_at, ln.messages_in,
            ln.messages_out, ln.tickets, ln.categories, ln.csat, ln.counted, ln.due_at]
