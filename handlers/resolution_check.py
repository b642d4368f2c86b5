"""CRM-3.5: after a ticket is resolved, a scheduled check asks the customer whether it really is.

"Solved" (button, "1", or a yes in words) closes the ticket. "Not solved" reopens it with a higher
priority, a fresh SLA clock and a new handoff card. The question goes out on the channel the complaint
came from, as a WhatsApp template when the 24-hour window has closed (purpose `follow_up`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from bot.config import Settings
from bot.limits import is_ascii_number
from bot.templating import render
from handlers import sla
from handlers.desk import post_handoff, ticket_reference
from handlers.turn import Reply, Route, Turn
from store.messages import add_outbound
from store.models import Task, Ticket, TicketEvent

TASK = sla.CONFIRM
QUESTION = "resolution_check"
PAYLOAD = "resolution:"


def ask_task(settings: Settings) -> Callable[[Session, Task, datetime], None]:
    def run(session: Session, task: Task, now: datetime) -> None:
        ticket = session.get(Ticket, int(task.payload["ticket_id"]))
        if ticket is None or ticket.status != "resolved" or ticket.conversation_id is None:
            return  # reopened, closed or gone since: nothing to confirm
        if ticket.reopened_count != int(task.payload.get("round", 0)):
            return
        found = sla.follow_up_conversation(session, settings, ticket, now=now)
        if found is None:
            return
        conversation, identity, customer = found
        conversation.pending_question, conversation.pending_data = QUESTION, {"ticket_id": ticket.id}
        variables = {"company": settings.company.name, "name": customer.name or "",
                     "ticket": ticket_reference(ticket.id)}
        texts = settings.templates
        pick = conversation.language if conversation.language in settings.languages else settings.default_language
        add_outbound(
            session, conversation, recipient=identity.address, now=now, purpose="follow_up",
            text=render(texts["resolution_check"][pick], variables),
            buttons=[{"title": render(texts["button_solved"][pick], variables), "payload": f"{PAYLOAD}yes:{ticket.id}"},
                     {"title": render(texts["button_not_solved"][pick], variables),
                      "payload": f"{PAYLOAD}no:{ticket.id}"}],
            template_variables={k: str(v) for k, v in variables.items()},
        )
        session.add(TicketEvent(ticket_id=ticket.id, kind="confirmation_asked", detail={"channel": identity.channel},
                                created_at=now))

    return run


def _answer(turn: Turn, ticket_id: int, solved: bool) -> list[Reply]:
    turn.clear_question()
    ticket = turn.session.get(Ticket, ticket_id)
    if ticket is None or ticket.customer_id != turn.customer.id or ticket.status != "resolved":
        return [turn.reply("thanks", name=turn.customer.name or "")]
    now = turn.clock.now()
    reference = ticket_reference(ticket.id)
    if solved:
        ticket.status, ticket.updated_at = "closed", now
        turn.session.add(TicketEvent(ticket_id=ticket.id, kind="confirmed", detail={"by": "customer"},
                                     created_at=now))
        return [turn.reply("resolution_confirmed", name=turn.customer.name or "", ticket=reference)]
    ticket.status, ticket.resolved_at, ticket.updated_at = "open", None, now
    ticket.reopened_count += 1
    ticket.priority += 1
    ticket.first_responded_at = None
    ticket.conversation_id = turn.conversation.id
    turn.session.add(TicketEvent(ticket_id=ticket.id, kind="reopened",
                                 detail={"by": "customer", "message_id": turn.message_id,
                                         "round": ticket.reopened_count}, created_at=now))
    sla.start(turn.session, turn.settings, ticket, turn.customer, now=now)
    turn.conversation.status = "waiting"
    turn.conversation.pending_data = {"handoff_reason": "reopened"}
    turn.session.flush()
    post_handoff(turn.session, turn.settings, turn.conversation, reason="reopened", now=now)
    assert ticket.first_response_due_at is not None
    return [turn.reply("resolution_reopened", name=turn.customer.name or "", ticket=reference,
                       due=sla.promised(turn.settings, ticket.first_response_due_at, turn.language))]


def answered_by_button(turn: Turn) -> list[Reply] | None:
    _, verdict, ticket_id = (turn.message.button_payload or "").split(":", 2)
    if not is_ascii_number(ticket_id) or verdict not in ("yes", "no"):
        return None
    return _answer(turn, int(ticket_id), verdict == "yes")


def answered_in_words(turn: Turn) -> list[Reply] | None:
    intent = turn.interpretation.intent
    ticket_id = int(turn.conversation.pending_data.get("ticket_id", 0))
    if intent in ("affirm", "thanks"):
        return _answer(turn, ticket_id, True)
    if intent in ("deny", "complaint"):
        return _answer(turn, ticket_id, False)
    turn.clear_question()  # they moved on to something else: route it normally
    return None


ROUTES = [Route(answered_by_button, payload_prefix=PAYLOAD), Route(answered_in_words, pending=QUESTION)]
