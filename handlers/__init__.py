"""The SOP flows. Routes are joined here in one explicit priority order; the first match wins.

Order: consent keywords, pending questions (the customer is answering us), intents, the fallback.
"""

from __future__ import annotations

from handlers import complaints, consent, fallback, greeting, handoff, intake
from handlers.turn import Reply, Route, Turn

ROUTES: list[Route] = [
    *consent.ROUTES,  # STOP / START keywords: before anything else the words might mean
    *intake.ROUTES,  # pending: ask_name
    *complaints.ROUTES,  # complaint: ticket + handoff
    *handoff.ROUTES,  # talk_to_agent
    *greeting.ROUTES,  # greet, thanks, goodbye
    *fallback.ROUTES,  # anything else
]


def dispatch(turn: Turn, routes: list[Route] = ROUTES) -> list[Reply]:
    for route in routes:
        if route.matches(turn):
            replies = route.handler(turn)
            if replies is not None:
                return replies
    return []


__all__ = ["ROUTES", "Reply", "Route", "Turn", "dispatch"]
