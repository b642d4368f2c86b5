"""The SOP flows. Routes are joined here in one explicit priority order; the first match wins.

Order: consent keywords, pending questions (the customer is answering us), intents, the fallback.
"""

from __future__ import annotations

from handlers import (
    complaints,
    consent,
    fallback,
    greeting,
    handoff,
    inquiries,
    intake,
    privacy,
    requests,
    resolution_check,
    status,
    surveys,
    vip,
)
from handlers.turn import Reply, Route, Turn

ROUTES: list[Route] = [
    *consent.ROUTES,  # STOP / START keywords: before anything else the words might mean
    *intake.ROUTES,  # pending: ask_name
    *privacy.ROUTES,  # pending: erasure and profile-change confirmations (buttons or words)
    *resolution_check.ROUTES,  # CRM-3.5: "is it really solved?" (button or words)
    *surveys.ROUTES,  # CSAT answers (button, number or words)
    *complaints.ROUTES,  # complaint: ticket + handoff
    *requests.ROUTES,  # request: ticket to operations
    *inquiries.ROUTES,  # ask_info: FAQ answers
    *status.ROUTES,  # check_status: open tickets in plain words
    *privacy.INTENT_ROUTES,  # delete_data, update_profile: each asks for confirmation first
    *consent.INTENT_ROUTES,  # opt_out / opt_in said in words
    *handoff.ROUTES,  # talk_to_agent
    *greeting.ROUTES,  # greet, thanks, goodbye
    *fallback.ROUTES,  # anything else
]


def dispatch(turn: Turn, routes: list[Route] = ROUTES) -> list[Reply]:
    vip.alert_account_manager(turn)  # VIP-2.3: whatever a VIP's first message in a conversation is about
    for route in routes:
        if route.matches(turn):
            replies = route.handler(turn)
            if replies is not None:
                if route.handler is not fallback.fallback:
                    turn.conversation.misunderstood = 0  # understood: the count of misses starts again
                return replies
    return []


__all__ = ["ROUTES", "Reply", "Route", "Turn", "dispatch"]
