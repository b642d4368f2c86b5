"""Handing a conversation to a human: the conversation waits for an agent."""

from __future__ import annotations

from handlers.desk import post_handoff
from handlers.turn import Reply, Route, Turn


def hand_off(turn: Turn, template: str = "handoff") -> list[Reply]:
    """Put the conversation in the agents' queue; the bot stays quiet until an agent hands it back."""
    conversation = turn.conversation
    conversation.status = "waiting"
    conversation.pending_question = None
    conversation.pending_data = {"handoff_reason": turn.interpretation.intent}
    # Flush so the card built from the log includes the customer's message that asked for a human.
    turn.session.flush()
    post_handoff(turn.session, turn.settings, conversation, reason=turn.interpretation.intent, now=turn.clock.now())
    return [turn.reply(template, name=turn.customer.name or "")]


ROUTES = [Route(hand_off, intent="talk_to_agent")]
