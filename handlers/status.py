"""check_status: the customer's open tickets and where each stands, in plain words (CRM-2.5, VIP-3.3).

Sapa holds tickets, not the order system: a question about an order with no ticket is passed to an
agent rather than answered with a guess.
"""

from __future__ import annotations

from sqlalchemy import select

from handlers import sla
from handlers.desk import ticket_reference
from handlers.turn import Reply, Route, Turn
from store.models import Ticket

# Resolved tickets stay in the answer for a while: "it was solved yesterday" is a status too.
SHOWN = ("open", "in_progress", "waiting", "resolved")


def ticket_lines(turn: Turn) -> list[dict[str, str]]:
    tickets = turn.session.execute(
        select(Ticket).where(Ticket.customer_id == turn.customer.id, Ticket.status.in_(SHOWN))
        .order_by(Ticket.id.desc()).limit(5)
    ).scalars()
    lines = []
    for ticket in tickets:
        escalated = ticket.escalation_level > 0 and ticket.status != "resolved"
        due = ticket.resolution_due_at if ticket.first_responded_at else ticket.first_response_due_at
        lines.append({
            "ref": ticket_reference(ticket.id), "kind": ticket.kind, "subject": ticket.subject[:60],
            "status": "escalated" if escalated else ticket.status,
            "due": sla.promised(turn.settings, due, turn.language) if due and ticket.status != "resolved" else "",
        })
    return lines


def check_status(turn: Turn) -> list[Reply]:
    lines = ticket_lines(turn)
    if not lines:
        return [turn.reply("status_none", name=turn.customer.name or "",
                           buttons=(turn.button("button_agent", "intent:talk_to_agent"),))]
    return [turn.reply("status_list", name=turn.customer.name or "", tickets=lines)]


ROUTES = [Route(check_status, intent="check_status")]
