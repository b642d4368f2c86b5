"""A complaint opens a ticket at once, is acknowledged with its number, and goes to a human."""

from __future__ import annotations

from handlers import sla
from handlers.desk import ticket_reference
from handlers.handoff import hand_off
from handlers.requests import category_of
from handlers.turn import Reply, Route, Turn
from store.models import Ticket, TicketEvent


def open_complaint(turn: Turn, category: str | None = None) -> list[Reply]:
    """`category` is the reading when the words name none (a late delivery told as a status question)."""
    now = turn.clock.now()
    text = turn.message.text.strip()
    # CRM-3.2: a first reading of what went wrong, from the words; agents confirm or correct it.
    category = category_of(text, turn.settings.complaints.categories) or category
    root_cause = turn.settings.complaints.root_causes.get(category or "")
    ticket = Ticket(
        customer_id=turn.customer.id, conversation_id=turn.conversation.id, kind="complaint", status="open",
        priority=1, subject=text[:300], description=text, category=category, root_cause=root_cause,
        created_at=now, updated_at=now,
    )
    turn.session.add(ticket)
    turn.session.flush()
    sla.start(turn.session, turn.settings, ticket, turn.customer, now=now)
    turn.session.add(TicketEvent(
        ticket_id=ticket.id, kind="opened",
        detail={"channel": turn.message.channel, "message_id": turn.message_id, "category": category,
                "root_cause": root_cause, "suggested": True,
                # the order or tracking number, amount, date… understood in it, for the agent who takes it
                "entities": [{"entity": e.entity, "value": e.value, "text": e.text}
                             for e in turn.interpretation.entities]},
        created_at=now,
    ))
    assert ticket.first_response_due_at is not None
    acknowledgement = turn.reply("complaint_received", name=turn.customer.name or "",
                                 ticket=ticket_reference(ticket.id),
                                 due=sla.promised(turn.settings, ticket.first_response_due_at, turn.language))
    hand_off(turn)
    return [acknowledgement]


ROUTES = [Route(open_complaint, intent="complaint")]
