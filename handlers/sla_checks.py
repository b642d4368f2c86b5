"""The `sla.check` task: remind the queue, or escalate along the ladder, when a ticket's deadline passes.

Each check is a task row with a dedupe key, so it exists once however many processes share the
database, and exactly one of them claims it; it runs in the same unit of work that marks it done, so
the escalation and the "done" commit together. It looks at the ticket as it is *when it runs*: an
answered or resolved ticket is never escalated, even if cancelling the check raced with it running.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot.config import Settings
from handlers.desk import escalate, ticket_reference
from handlers.sla import DONE_STATUSES
from store.messages import add_desk_post
from store.models import Conversation, Task, Ticket


def check_task(settings: Settings) -> Callable[[Session, Task, datetime], None]:
    """The `sla.check` task: remind, or escalate along the ladder, if the ticket still needs it."""

    def run(session: Session, task: Task, now: datetime) -> None:
        ticket = session.get(Ticket, int(task.payload["ticket_id"]))
        stage = str(task.payload["stage"])
        if ticket is None or ticket.status in DONE_STATUSES or ticket.conversation_id is None:
            return
        conversation = session.get_one(Conversation, ticket.conversation_id)
        if stage in ("warn", "first_response") and ticket.first_responded_at is not None:
            return
        if stage == "warn":
            due = ticket.first_response_due_at
            # In the card's thread when there is a card (its channel: queue or VIP); a request the bot kept
            # has none, so the reminder goes to the operations channel on its own.
            carded = conversation.handed_off_at is not None
            recipient = (conversation.desk_channel or settings.slack.queue_channel) if carded else (
                settings.slack.operations_channel or settings.slack.queue_channel)
            add_desk_post(
                session, recipient=recipient, now=now, conversation_id=conversation.id,
                text=f"⏰ {ticket_reference(ticket.id)} has no answer yet; first response due "
                     f"{_local(settings, due)}", options={"thread_of": conversation.id} if carded else {},
            )
            return
        ladder = settings.sla.escalation
        role = ladder.first_response_breach if stage == "first_response" else ladder.resolution_breach
        what = "first response" if stage == "first_response" else "resolution"
        due = ticket.first_response_due_at if stage == "first_response" else ticket.resolution_due_at
        reason = f"{what} SLA ({task.payload.get('tier', 'regular')}) missed, due {_local(settings, due)}"
        escalate(session, settings, conversation, [ticket], role=role, by="SLA", agent_id=None, reason=reason,
                 now=now)

    return run


def _local(settings: Settings, moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(ZoneInfo(settings.company.timezone)).strftime("%d %b %H:%M")
