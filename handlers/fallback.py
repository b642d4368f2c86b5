"""When Sapa cannot help: say so plainly and offer a human."""

from __future__ import annotations

from handlers.handoff import hand_off
from handlers.turn import Reply, Route, Turn

# Intents Sapa recognises but whose SOP flow is not built yet: saying "we did not understand" would
# be false, so the customer is told a person will help and offered the handoff. (None today:
# loyalty_points is answered by handlers/loyalty.py, which also uses needs_agent when the programme is off.)
NEEDS_AGENT: tuple[str, ...] = ()


def needs_agent(turn: Turn) -> list[Reply]:
    return [turn.reply("needs_agent", buttons=(turn.button("button_agent", "intent:talk_to_agent"),))]


def fallback(turn: Turn) -> list[Reply]:
    turn.conversation.misunderstood = (turn.conversation.misunderstood or 0) + 1
    if turn.conversation.misunderstood >= 2:
        # Twice in a row the bot could not help: asking a third time would only frustrate.
        turn.conversation.misunderstood = 0
        return hand_off(turn, "fallback_handoff")
    return [turn.reply("fallback", buttons=(turn.button("button_agent", "intent:talk_to_agent"),))]


ROUTES = [
    *(Route(needs_agent, intent=intent) for intent in NEEDS_AGENT),
    # Matches everything: it is always last in the priority order.
    Route(fallback, payload_prefix=""),
]
