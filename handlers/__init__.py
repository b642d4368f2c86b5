"""The SOP flows. Routes are joined here in one explicit priority order; the first match wins.

Order: pending questions first (the customer is answering us), then intents, then the fallback.
"""

from __future__ import annotations

from handlers import fallback, greeting, handoff, intake
from handlers.turn import Reply, Route, Turn

ROUTES: list[Route] = [
    *intake.ROUTES,  # pending: ask_name
    *handoff.ROUTES,  # talk_to_agent, complaint
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
