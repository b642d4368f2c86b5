"""Requests (CRM-2.1, CRM-2.5, VIP-3.1, VIP-3.2, VIP-3.3): a customer's request becomes work the operations
team can track to the end.

`request` opens a request ticket with the customer's words and the details understood in them (order
number, date, amount…), linked to the customer and the conversation, on the customer's SLA tier. A card
goes to `slack.operations_channel` with a checklist, the owner (a VIP's account manager, else unassigned)
and the due time. The conversation stays with the bot: a request is back-office work, not a chat with a
person, so the customer can keep using the bot (status, FAQ, more requests) while it is done.

Follow-ups are durable tasks, one at a time, each scheduling the next with a sequence number in its
dedupe key: `request.reminder` reminds the operations channel every `requests.reminder_hours`, and for
VIPs `request.status_update` tells the customer where the request stands every
`requests.vip_status_update_hours`. Each re-reads the ticket when it runs and stops once it is resolved
or closed. Agents take and finish a request with `/sapa ticket TKT-000123 take|done NOTE`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.templating import render
from handlers import sla
from handlers.desk import may_act, ticket_reference
from handlers.slack_text import escape_slack
from handlers.turn import Reply, Route, Turn
from nlu.normalise import normalise
from store.audit import record
from store.conversations import HUMAN_STATUSES, continue_or_open
from store.messages import add_desk_post, add_outbound
from store.models import Agent, ChannelIdentity, Conversation, Customer, Task, Ticket, TicketEvent
from store.tasks import schedule

REMINDER = "request.reminder"
STATUS_UPDATE = "request.status_update"


def category_of(text: str, categories: Mapping[str, tuple[str, ...]]) -> str | None:
    """The first configured category with one of its words (whole words) in the request, as written or
    in its normalised spelling ("blm nyampe" is "belum sampai")."""
    readings = (text.lower(), normalise(text))
    for category, words in categories.items():
        patterns = [re.compile(rf"(?<!\w){re.escape(word.lower())}(?!\w)") for word in words]
        if any(pattern.search(reading) for pattern in patterns for reading in readings):
            return category
    return None


def owner_of(session: Session, customer: Customer) -> Agent | None:
    """A VIP's request belongs to their account manager from the start; anyone else's waits for a taker."""
    if not customer.is_vip or customer.account_manager_id is None:
        return None
    manager = session.get(Agent, customer.account_manager_id)
    return manager if manager is not None and manager.active else None


def open_request(turn: Turn, category: str | None = None, template: str = "request_received",
                 **variables: Any) -> list[Reply]:
    """`category`, when given, is what the request is (an order to check: handlers/status.py), else the
    words say it; the reply is `template` with the ticket, the due time and `variables`."""
    now, settings, customer = turn.clock.now(), turn.settings, turn.customer
    text = turn.message.text.strip() or "(no text)"
    entities = [{"entity": e.entity, "value": e.value, "text": e.text} for e in turn.interpretation.entities]
    owner = owner_of(turn.session, customer)
    ticket = Ticket(
        customer_id=customer.id, conversation_id=turn.conversation.id, kind="request", status="open",
        priority=1 if customer.is_vip else 0, category=category or category_of(text, settings.requests.categories),
        subject=text[:300], description=text, assigned_agent_id=owner.id if owner else None,
        created_at=now, updated_at=now,
    )
    turn.session.add(ticket)
    turn.session.flush()
    sla.start(turn.session, settings, ticket, customer, now=now)
    turn.session.add(TicketEvent(
        ticket_id=ticket.id, kind="opened", created_at=now,
        detail={"channel": turn.message.channel, "message_id": turn.message_id, "entities": entities},
    ))
    if owner is not None:
        turn.session.add(TicketEvent(ticket_id=ticket.id, kind="assigned", agent_id=owner.id,
                                     detail={"by": "account_manager"}, created_at=now))
    if settings.slack.enabled:
        add_desk_post(turn.session, recipient=operations_channel(settings), now=now,
                      conversation_id=turn.conversation.id,
                      text=request_card(settings, ticket, customer, turn.display_name, entities, owner))
        _schedule(turn.session, settings, REMINDER, ticket, 1, now=now, after_hours=settings.requests.reminder_hours)
    if customer.is_vip:
        _schedule(turn.session, settings, STATUS_UPDATE, ticket, 1, now=now,
                  after_hours=settings.requests.vip_status_update_hours)
    assert ticket.first_response_due_at is not None
    return [turn.reply(template, name=customer.name or "", ticket=ticket_reference(ticket.id),
                       due=sla.promised(settings, ticket.first_response_due_at, turn.language), **variables)]


# -- the operations channel ---------------------------------------------------------------------


def operations_channel(settings: Settings) -> str:
    return settings.slack.operations_channel or settings.slack.queue_channel


def _owner_label(owner: Agent | None) -> str:
    if owner is None:
        return "unassigned"
    name = escape_slack(owner.name)
    return f"<@{owner.slack_user_id}> ({name})" if owner.slack_user_id else name


def request_card(settings: Settings, ticket: Ticket, customer: Customer, name: str | None,
                 entities: list[dict[str, Any]], owner: Agent | None) -> str:
    """The card as Slack markup: who, what they asked, the details, what to do, who owns it, by when."""
    reference = ticket_reference(ticket.id)
    vip = f"⭐ VIP {customer.vip_tier or ''}".rstrip() if customer.is_vip else "regular"
    assert ticket.first_response_due_at is not None and ticket.resolution_due_at is not None
    details = " · ".join(f"{e['entity']} {escape_slack(str(e['value']))}" for e in entities) or "—"
    lines = [
        f"📋 *Request {reference}* from *{escape_slack(name or '(name not known)')}* ({vip}, customer #{customer.id})",
        *(f"> {escape_slack(line)}" for line in ticket.description.splitlines() if line.strip()),
        f"*Category:* {escape_slack(ticket.category or '—')}",
        f"*Details:* {details}",
        f"*Owner:* {_owner_label(owner)}",
        f"*Due:* {sla.promised(settings, ticket.resolution_due_at, 'en')} "
        f"(take it by {sla.promised(settings, ticket.first_response_due_at, 'en')})",
        "*Checklist:*",
        *(f"☐ {step}" for step in settings.requests.checklist),
        f"Take it: `/sapa ticket {reference} take` · finish it: `/sapa ticket {reference} done NOTE`",
    ]
    return "\n".join(lines)


# -- follow-ups ---------------------------------------------------------------------------------


def _key(kind: str, ticket_id: int, seq: int) -> str:
    return f"{kind}:{ticket_id}:{seq}"


def _schedule(session: Session, settings: Settings, kind: str, ticket: Ticket, seq: int, *, now: datetime,
              after_hours: float) -> None:
    # Follow-ups wait for business hours (sla.business_hours): no status update at 3 a.m., no pile of
    # reminders in an empty channel overnight.
    due = sla.calendar(settings).add(now + timedelta(hours=after_hours), 0)
    schedule(session, kind, due_at=due, now=now, payload={"ticket_id": ticket.id, "seq": seq},
             dedupe_key=_key(kind, ticket.id, seq))


def stop_follow_ups(session: Session, ticket: Ticket, *, now: datetime) -> int:
    """Cancel the pending reminder and status update of a finished request; returns how many."""
    pending = session.execute(select(Task).where(
        Task.status == "pending",
        or_(*(Task.dedupe_key.like(f"{kind}:{ticket.id}:%") for kind in (REMINDER, STATUS_UPDATE))),
    )).scalars().all()
    for task in pending:
        task.status, task.finished_at = "cancelled", now
    return len(pending)


def _still_open(session: Session, task: Task) -> Ticket | None:
    ticket = session.get(Ticket, int(task.payload["ticket_id"]))
    if ticket is None or ticket.kind != "request" or ticket.status in sla.DONE_STATUSES:
        return None  # done (or gone) since it was scheduled: the chain ends here
    return ticket


def reminder_task(settings: Settings) -> Callable[[Session, Task, datetime], None]:
    """CRM-2.5: while a request is open, the operations channel hears about it every `reminder_hours`."""

    def run(session: Session, task: Task, now: datetime) -> None:
        ticket = _still_open(session, task)
        if ticket is None or not settings.slack.enabled:
            return
        owner = session.get(Agent, ticket.assigned_agent_id) if ticket.assigned_agent_id else None
        due = ticket.resolution_due_at
        when = "—" if due is None else sla.promised(settings, due, "en")
        late = f"*overdue* since {when}" if due is not None and due <= now else f"due {when}"
        add_desk_post(session, recipient=operations_channel(settings), now=now,
                      conversation_id=ticket.conversation_id,
                      text=f"⏰ Request {ticket_reference(ticket.id)} is still {ticket.status.replace('_', ' ')} · "
                           f"owner {_owner_label(owner)} · {late}: {escape_slack(ticket.subject[:120])}")
        _schedule(session, settings, REMINDER, ticket, int(task.payload["seq"]) + 1, now=now,
                  after_hours=settings.requests.reminder_hours)

    return run


def status_update_task(settings: Settings) -> Callable[[Session, Task, datetime], None]:
    """VIP-3.3: a VIP hears where their request stands every `vip_status_update_hours` until it is done."""

    def run(session: Session, task: Task, now: datetime) -> None:
        ticket = _still_open(session, task)
        if ticket is None:
            return
        customer = session.get_one(Customer, ticket.customer_id)
        if not customer.is_vip:
            return  # no longer a VIP: regular customers ask for status themselves
        due = ticket.resolution_due_at
        tell_customer(session, settings, ticket, "request_status_update", now=now, purpose="status_update",
                      skip_if_agent_talking=True, status=ticket.status,
                      due=sla.promised(settings, due, _language(settings, session, ticket))
                      if due is not None and due > now else "")
        _schedule(session, settings, STATUS_UPDATE, ticket, int(task.payload["seq"]) + 1, now=now,
                  after_hours=settings.requests.vip_status_update_hours)

    return run


def _language(settings: Settings, session: Session, ticket: Ticket) -> str:
    customer = session.get_one(Customer, ticket.customer_id)
    earlier = session.get(Conversation, ticket.conversation_id) if ticket.conversation_id else None
    for candidate in (customer.language, earlier.language if earlier else None):
        if candidate in settings.languages:
            return candidate
    return settings.default_language


def tell_customer(session: Session, settings: Settings, ticket: Ticket, template: str, *, now: datetime,
                  purpose: str, agent: Agent | None = None, skip_if_agent_talking: bool = False,
                  **variables: Any) -> bool:
    """Message the ticket's customer on the channel the request came from; False if nothing was sent."""
    if ticket.conversation_id is None:
        return False
    earlier = session.get_one(Conversation, ticket.conversation_id)
    identity = session.get_one(ChannelIdentity, earlier.identity_id)
    customer = session.get_one(Customer, ticket.customer_id)
    conversation, _ = continue_or_open(session, identity, now=now, language=_language(settings, session, ticket),
                                       idle_close=timedelta(minutes=settings.conversation.idle_close_minutes))
    if skip_if_agent_talking and conversation.status in HUMAN_STATUSES:
        return False  # an agent is talking with them now; they can say where it stands
    pick = conversation.language if conversation.language in settings.languages else settings.default_language
    values = {"company": settings.company.name, "name": customer.name or "", "ticket": ticket_reference(ticket.id),
              **variables}
    add_outbound(session, conversation, recipient=identity.address, now=now, purpose=purpose,
                 text=render(settings.templates[template][pick], values),
                 sender="agent" if agent else "bot", agent_id=agent.id if agent else None,
                 template_variables={k: str(v) for k, v in values.items()})
    return True


# -- agents: /sapa ticket TKT-000123 take | done NOTE ---------------------------------------------


def request_command(session: Session, settings: Settings, agent: Agent, key: str, step: str, note: str,
                    now: datetime) -> str:
    """`take`: the agent owns it and the customer is told (the first response). `done`: resolved, told."""
    if not may_act(agent):
        return "Only customer service, account managers, supervisors and management can work on requests."
    digits = key.upper().removeprefix("TKT-").lstrip("#")
    # ASCII digits that fit a BIGINT: isdigit() alone also takes "²", which int() refuses (issue 15).
    ticket = session.get(Ticket, int(digits)) if digits.isascii() and digits.isdigit() and len(digits) <= 18 else None
    if ticket is None:
        return f"No ticket `{key}`."
    reference = ticket_reference(ticket.id)
    if ticket.kind != "request":
        return f"{reference} is a {ticket.kind}: resolve it from its card in the queue."
    if ticket.status in sla.DONE_STATUSES:
        return f"{reference} is already {ticket.status}."
    language = _language(settings, session, ticket)
    if ticket.first_responded_at is None:
        ticket.first_responded_at = now
        sla.answered(session, ticket, now=now)
    ticket.assigned_agent_id, ticket.updated_at = agent.id, now
    if step == "take":
        ticket.status = "in_progress"
        session.add(TicketEvent(ticket_id=ticket.id, kind="assigned", agent_id=agent.id, detail={"by": "command"},
                                created_at=now))
        due = ticket.resolution_due_at
        tell_customer(session, settings, ticket, "request_taken", now=now, purpose="status_update", agent=agent,
                      agent_name=agent.name, due=sla.promised(settings, due, language) if due and due > now else "")
        said = f"✋ {reference} taken by {escape_slack(agent.name)}"
    else:
        ticket.status, ticket.resolved_at = "resolved", now
        ticket.resolution = note or f"Done in Slack by {agent.name}"
        session.add(TicketEvent(ticket_id=ticket.id, kind="resolved", agent_id=agent.id,
                                detail={"by": "command", "note": note}, created_at=now))
        sla.resolved(session, settings, ticket, now=now)
        stop_follow_ups(session, ticket, now=now)
        # The note is for the record; the customer gets the reviewed wording, not an agent's shorthand.
        tell_customer(session, settings, ticket, "request_done", now=now, purpose="status_update", agent=agent)
        said = f"✅ {reference} done by {escape_slack(agent.name)}" + (f": {escape_slack(note)}" if note else "")
    record(session, actor=f"agent:{agent.id}", action=f"ticket.{step}", subject_type="ticket",
           subject_id=ticket.id, now=now, detail={"note": note} if note else None)
    if settings.slack.enabled:
        add_desk_post(session, recipient=operations_channel(settings), text=said, now=now,
                      conversation_id=ticket.conversation_id)
    return f"{said}. The customer has been told."


ROUTES = [Route(open_request, intent="request")]
