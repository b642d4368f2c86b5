"""CSAT after a resolution (CRM-5.1, CRM-5.2, VIP-5.1): asked on the customer's channel, answered in numbers,
words or buttons, stored per agent, channel, category and tier; a low score alerts the supervisors and
opens a service-recovery ticket.

The question is a durable task scheduled when the ticket is resolved (dedupe key per resolution round),
so it survives restarts and is sent once however many processes run; it is skipped if the ticket was
reopened in the meantime.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.limits import is_ascii_number
from bot.messages import Purpose
from bot.templating import render
from handlers import sla
from handlers.desk import ticket_reference
from handlers.slack_text import escape_slack
from handlers.turn import Reply, Route, Turn
from store.messages import add_desk_post, add_outbound
from store.models import Agent, ChannelIdentity, Conversation, Customer, Survey, Task, Ticket, TicketEvent

TASK = sla.CSAT
QUESTION = "csat"
PAYLOAD = "csat:"
_NUMBER = re.compile(r"(?<!\d)(\d{1,2})(?!\d)")


def ask_task(settings: Settings) -> Callable[[Session, Task, datetime], None]:
    def run(session: Session, task: Task, now: datetime) -> None:
        ticket = session.get(Ticket, int(task.payload["ticket_id"]))
        if (ticket is None or ticket.status not in sla.DONE_STATUSES or ticket.conversation_id is None
                or ticket.reopened_count != int(task.payload.get("round", 0))):
            return  # reopened since (or gone): no survey for a ticket that is not solved
        found = sla.follow_up_conversation(session, settings, ticket, now=now)
        if found is None:
            return  # an agent is talking with them now; a survey would interrupt
        conversation, identity, customer = found
        survey = Survey(kind="csat", customer_id=customer.id, ticket_id=ticket.id, conversation_id=conversation.id,
                        agent_id=ticket.assigned_agent_id, channel=identity.channel, category=ticket.category,
                        tier=sla.tier_of(customer), status="asked", asked_at=now)
        ask(session, settings, conversation, identity, customer, survey, question=QUESTION, template="csat_question",
            scores=range(1, 6), payload=PAYLOAD, now=now, ticket=ticket_reference(ticket.id))

    return run


def ask(session: Session, settings: Settings, conversation: Conversation, identity: ChannelIdentity,
        customer: Customer, survey: Survey, *, question: str, template: str, scores: range | None, payload: str,
        now: datetime, purpose: Purpose = "survey", **variables: str) -> None:
    """Store the survey row, wait for its answer (pending `question`) and queue the question on the channel.

    A button per score (`payload` + survey id + score) unless `scores` is None; outside WhatsApp's window the
    question goes as the approved template for `purpose` (CSAT: `survey`, NPS: `nps_survey`: a different
    question needs its own approved WhatsApp template), filled from the same variables.
    """
    session.add(survey)
    session.flush()
    conversation.pending_question, conversation.pending_data = question, {"survey_id": survey.id}
    pick = conversation.language if conversation.language in settings.languages else settings.default_language
    values = {"company": settings.company.name, "name": customer.name or "", **variables}
    add_outbound(
        session, conversation, recipient=identity.address, now=now, purpose=purpose,
        text=render(settings.templates[template][pick], values),
        buttons=[{"title": str(score), "payload": f"{payload}{survey.id}:{score}"} for score in scores or ()],
        template_variables={k: str(v) for k, v in values.items()},
    )


def parse_score(text: str, words: dict[str, int], scale: range = range(1, 6), *,
                words_within: int | None = None) -> int | None:
    """A score on `scale` from "4", "nilai 5 ya", "puas banget", "kurang puas"; None if there is none.

    The first number on the scale wins; otherwise the longest phrase of `words` found. With `words_within`,
    phrases count only in answers of at most that many words (so "no one answered" is not a 1).
    """
    for found in _NUMBER.finditer(text):
        if int(found.group(1)) in scale:
            return int(found.group(1))
    if words_within is not None and len(text.split()) > words_within:
        return None
    lowered = f" {text.lower()} "
    # Longest phrases first, so "kurang puas" is not read as "puas".
    for phrase in sorted(words, key=len, reverse=True):
        if re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", lowered):
            return words[phrase]
    return None


def _record(turn: Turn, survey_id: int, score: int) -> list[Reply]:
    turn.clear_question()
    survey = turn.session.get(Survey, survey_id)
    if survey is None or survey.customer_id != turn.customer.id or survey.status != "asked":
        return [turn.reply("thanks", name=turn.customer.name or "")]
    now = turn.clock.now()
    survey.status, survey.score, survey.answered_at = "answered", score, now
    survey.comment = turn.message.text[:1000] if not turn.message.button_payload else None
    if score <= turn.settings.surveys.low_score:
        _service_recovery(turn, survey, now)
        return [turn.reply("csat_low", name=turn.customer.name or "")]
    return [turn.reply("csat_thanks", name=turn.customer.name or "")]


def _service_recovery(turn: Turn, survey: Survey, now: datetime) -> None:
    """A low score: a recovery ticket for the supervisors, and an alert where they will see it."""
    rated = ticket_reference(survey.ticket_id or 0)
    recovery = Ticket(customer_id=turn.customer.id, conversation_id=turn.conversation.id, kind="recovery",
                      status="open", priority=2, subject=f"CSAT {survey.score}/5 for {rated}",
                      description=turn.message.text, category="service_recovery", created_at=now, updated_at=now)
    turn.session.add(recovery)
    turn.session.flush()
    turn.session.add(TicketEvent(ticket_id=recovery.id, kind="opened",
                                 detail={"survey_id": survey.id, "score": survey.score}, created_at=now))
    supervisors = turn.session.execute(
        select(Agent).where(Agent.role == "supervisor", Agent.active.is_(True))).scalars()
    mentions = " ".join(f"<@{a.slack_user_id}>" for a in supervisors if a.slack_user_id)
    if turn.settings.slack.enabled:
        channel = turn.settings.slack.escalation_channel or turn.settings.slack.queue_channel
        add_desk_post(turn.session, recipient=channel, now=now, conversation_id=turn.conversation.id,
                      text=f"📉 Low CSAT {survey.score}/5 from {escape_slack(turn.customer.name or 'a customer')} "
                           f"({survey.tier}, {survey.channel}) for {rated}: "
                           f"\"{escape_slack(turn.message.text[:200])}\". "
                           f"Service recovery {ticket_reference(recovery.id)} opened. "
                           f"{mentions}".strip())


def answered_by_button(turn: Turn) -> list[Reply] | None:
    parts = (turn.message.button_payload or "").split(":")
    if len(parts) != 3 or not is_ascii_number(parts[1]) or parts[2] not in {"1", "2", "3", "4", "5"}:
        return None
    return _record(turn, int(parts[1]), int(parts[2]))


def answered_in_words(turn: Turn) -> list[Reply] | None:
    score = parse_score(turn.message.text, turn.settings.surveys.words)
    if score is None:
        turn.clear_question()  # not an answer: route the message as usual
        return None
    return _record(turn, int(turn.conversation.pending_data.get("survey_id", 0)), score)


ROUTES = [Route(answered_by_button, payload_prefix=PAYLOAD, feedback=True),
          Route(answered_in_words, pending=QUESTION, feedback=True)]
