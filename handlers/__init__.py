"""The SOP flows. Routes are joined here in one explicit priority order; the first match wins.

Order: messages without words of the customer's own (attachments, forwards), consent keywords, pending
questions (the customer is answering us), intents, the fallback. A conversation held by a human uses the
shorter lists in handlers/waiting.py instead.
"""

from __future__ import annotations

from handlers import (
    attachments,
    complaints,
    consent,
    fallback,
    greeting,
    handoff,
    inquiries,
    intake,
    loyalty,
    nps,
    privacy,
    requests,
    resolution_check,
    status,
    surveys,
    vip,
)
from handlers.turn import Reply, Route, Turn
from store.consents import current as current_consent

ROUTES: list[Route] = [
    *attachments.ROUTES,  # media, stickers, locations, contacts, forwards: acknowledged, never read as words
    *consent.ROUTES,  # STOP / START keywords: before anything else the words might mean
    *intake.ROUTES,  # pending: ask_name, ask_email (and a late "skip" press)
    *privacy.ROUTES,  # pending: erasure and profile-change confirmations (buttons or words)
    *resolution_check.ROUTES,  # CRM-3.5: "is it really solved?" (button or words)
    *surveys.ROUTES,  # CSAT answers (button, number or words)
    *nps.ROUTES,  # CRM-5.2 / VIP-5.1: periodic NPS answers (0..10) and the reason that follows
    *loyalty.ROUTES,  # CRM-4.2: choosing a reward and confirming its redemption (buttons, numbers or words)
    *complaints.ROUTES,  # complaint: ticket + handoff
    *requests.ROUTES,  # request: ticket to operations
    *inquiries.ROUTES,  # ask_info: FAQ answers
    *status.ROUTES,  # check_status: open tickets in plain words
    *loyalty.INTENT_ROUTES,  # CRM-4.2 loyalty_points: balance, tier, rewards to redeem
    *privacy.INTENT_ROUTES,  # delete_data, update_profile: each asks for confirmation first
    *consent.INTENT_ROUTES,  # opt_out / opt_in said in words
    *handoff.ROUTES,  # talk_to_agent
    *greeting.ROUTES,  # greet, thanks, goodbye
    *inquiries.LAST_CHANCE_ROUTES,  # an FAQ entry covers words read as nothing else (a topic added in the console)
    *fallback.ROUTES,  # anything else
]


def dispatch(turn: Turn, routes: list[Route] = ROUTES) -> list[Reply]:
    vip.alert_account_manager(turn)  # VIP-2.3: whatever a VIP's first message in a conversation is about
    for route in routes:
        if route.matches(turn):
            replies = route.handler(turn)
            if replies is not None:
                if route.handler not in (fallback.fallback, attachments.acknowledge):
                    turn.conversation.misunderstood = 0  # understood: the count of misses starts again
                if route.handler not in (consent.stop, consent.start):
                    # VIP-2.3 / VIP-4.1: an upset VIP goes to a human after the answer (not twice after a complaint).
                    replies = handoff.after_route(turn, route, replies,
                                                  understood=route.handler is not fallback.fallback)
                if _needs_privacy_notice(turn, route):
                    # CRM-1.5: last, so an SMS/WhatsApp customer can answer its numbered options "1"/"2".
                    replies = [*replies, consent.privacy_notice(turn)]
                else:
                    replies = [*replies, *intake.ask_email_if_calm(turn, route)]  # CRM-1.2: once ever, at a calm moment
                return replies
    return []


def _needs_privacy_notice(turn: Turn, route: Route) -> bool:
    """CRM-1.1/1.5: a new customer's first answer is followed by the privacy notice, unless already answered."""
    return (turn.is_new_customer and route.handler not in (consent.stop, consent.start)
            and current_consent(turn.session, turn.customer.id, "data_processing") is None)


__all__ = ["ROUTES", "Reply", "Route", "Turn", "dispatch"]
