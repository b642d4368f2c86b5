"""What the bot still does while a human holds the conversation (status waiting or with_agent).

A customer handed to a person keeps their rights and keeps getting what the bot can give at once:
- in every human state: STOP/START and the other consent keywords, answers to our consent and data
  questions, erasure, profile changes and data-copy requests (each still asks before acting);
- while waiting for an agent, also: FAQ answers, ticket status, loyalty points and redemptions,
  attachments acknowledged, and an honest "you are already in the queue" to a repeated request for a person.
Everything else is for the agent. The customer's message is always relayed to the desk first (the pipeline
does that); when the bot answered, the agent sees a note in the card's thread saying what it said, so
nobody answers twice or misses that a consent changed.
"""

from __future__ import annotations

from handlers import attachments, consent, handoff, inquiries, loyalty, privacy, status
from handlers.slack_text import escape_slack
from handlers.turn import Reply, Route, Turn
from store.conversations import HUMAN_STATUSES
from store.messages import add_desk_post


def faq_if_answered(turn: Turn) -> list[Reply] | None:
    """An FAQ answer, but not the FAQ's "shall we get a person?": the customer is already waiting for one."""
    replies = inquiries.answer_question(turn)
    return replies if "faq_id" in turn.extra else None  # set only when an entry answered


WITH_AGENT_ROUTES: list[Route] = [
    *consent.ROUTES,
    *privacy.ROUTES,
    *privacy.INTENT_ROUTES,
    *consent.INTENT_ROUTES,
]
WAITING_ROUTES: list[Route] = [
    *attachments.ROUTES,
    *consent.ROUTES,
    *privacy.ROUTES,
    *loyalty.ROUTES,
    *privacy.INTENT_ROUTES,
    *consent.INTENT_ROUTES,
    Route(faq_if_answered, intent="ask_info"),
    *status.ROUTES,
    *loyalty.INTENT_ROUTES,
    Route(handoff.already_waiting, intent="talk_to_agent"),
]


def dispatch_while_human(turn: Turn) -> list[Reply]:
    """The bot's answer to a message in a human-held conversation, or [] when it is the agent's to answer."""
    if turn.conversation.status not in HUMAN_STATUSES:
        return []
    routes = WAITING_ROUTES if turn.conversation.status == "waiting" else WITH_AGENT_ROUTES
    for route in routes:
        if route.matches(turn):
            replies = route.handler(turn)
            if replies is not None:
                note_for_agent(turn, replies)
                return replies
    return []


def note_for_agent(turn: Turn, replies: list[Reply]) -> None:
    conversation, settings = turn.conversation, turn.settings
    if not settings.slack.enabled or conversation.handed_off_at is None or not replies:
        return
    said = "\n".join(f"> {escape_slack(line)}" for reply in replies for line in reply.text.splitlines() if line.strip())
    add_desk_post(turn.session, recipient=conversation.desk_channel or settings.slack.queue_channel,
                  text=f"🤖 Sapa answered the customer itself (they may not need you for this):\n{said}",
                  now=turn.clock.now(), conversation_id=conversation.id, options={"thread_of": conversation.id})
