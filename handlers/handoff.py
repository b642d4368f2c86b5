"""Handing a conversation to a human: the conversation waits for an agent.

Besides an explicit request (`talk_to_agent`), a complaint and two misses in a row (handlers/fallback.py),
an upset VIP is handed over (VIP-2.3, VIP-4.1): after whatever route answered their message, if its tone
(nlu/sentiment.py) is angry or negative enough (`handoff.vip_negative_threshold`) and their tier is in
`handoff.upset_tiers`, the conversation goes to the agents with the reason "VIP upset".

When a person answers is said honestly: outside business hours the next opening (`next_opening`); inside them,
with nobody online who may answer (handlers/desk.someone_can_answer), "as soon as someone is available" (the
`<template>_unstaffed` texts) instead of "shortly".
"""

from __future__ import annotations

from datetime import datetime, timedelta

from handlers import sla
from handlers.desk import post_handoff, someone_can_answer
from handlers.turn import Reply, Route, Turn
from nlu.sentiment import Sentiment, analyse
from store.conversations import HUMAN_STATUSES

UPSET_REASON = "VIP upset"


def hand_off(turn: Turn, template: str = "handoff", *, reason: str | None = None) -> list[Reply]:
    """Put the conversation in the agents' queue; the bot stays quiet until an agent hands it back."""
    conversation = turn.conversation
    if conversation.status in HUMAN_STATUSES:
        # Already in the queue: a second card would split the agents' attention; say where they stand.
        return already_waiting(turn)
    reason = reason or turn.interpretation.intent
    conversation.status = "waiting"
    conversation.pending_question = None
    conversation.pending_data = {"handoff_reason": reason}
    # Flush so the card built from the log includes the customer's message that asked for a human.
    turn.session.flush()
    post_handoff(turn.session, turn.settings, conversation, reason=reason, now=turn.clock.now())
    wait = wait_variables(turn)
    return [turn.reply(honest(turn, template), name=turn.customer.name or "", opens=wait["opens"],
                       meanwhile=wait["meanwhile"])]


def already_waiting(turn: Turn) -> list[Reply]:
    """Asked for a person again while in the queue: where they stand, as honestly as the first time."""
    return [turn.reply(honest(turn, "handoff_already_waiting"), opens=wait_variables(turn)["opens"])]


def honest(turn: Turn, template: str) -> str:
    """`template`, or its `<template>_unstaffed` text when it is business hours and nobody who may answer is online:
    then the customer hears a person answers as soon as one is available, not "shortly". A configuration
    without the variant keeps `template`."""
    variant = f"{template}_unstaffed"
    if (variant in turn.settings.templates and next_opening(turn) is None
            and not someone_can_answer(turn.session, now=turn.clock.now())):
        return variant
    return template


def next_opening(turn: Turn) -> datetime | None:
    """When a person can next answer: None during business hours, else the next opening (sla.business_hours)."""
    now = turn.clock.now()
    opens = sla.calendar(turn.settings).add(now, 0)
    # A minute's grace: "from 08:00" at 07:59:30 would read as a promise already kept.
    return opens if opens - now > timedelta(minutes=1) else None


def wait_variables(turn: Turn) -> dict[str, str]:
    """What a handoff text needs to be honest: when a person answers, and what the bot still does meanwhile."""
    opens = next_opening(turn)
    return {"opens": sla.promised(turn.settings, opens, turn.language) if opens else "",
            "meanwhile": turn.text("handoff_meanwhile")}


def sentiment_of(turn: Turn) -> Sentiment:
    """The tone of this turn's message (computed once per text: the pipeline logged the same reading)."""
    return analyse(turn.message.text)


def is_upset(turn: Turn) -> bool:
    """This customer's tier is handed off for tone, and this message is angry or negative enough."""
    tier = "vip" if turn.customer.is_vip else "regular"
    if tier not in turn.settings.handoff.upset_tiers or turn.message.button_payload:
        return False  # a button press carries no tone
    sentiment = sentiment_of(turn)
    return sentiment.angry or sentiment.negativity >= turn.settings.handoff.vip_negative_threshold


def after_route(turn: Turn, route: Route, replies: list[Reply], *, understood: bool) -> list[Reply]:
    """Hand an upset VIP to a human after the route answered them; `replies` is what the route said.

    The answer stays (an angry status question still gets its status) and the handoff note follows it.
    A route that already handed off (a complaint, a second miss) is left alone: one card, not two.
    When the bot did not understand, its "please rephrase" is replaced by the handoff note.
    """
    if turn.conversation.status in HUMAN_STATUSES or not is_upset(turn):
        return replies
    if route.feedback:  # "kecewa" answering our survey: the low-score path alerts, not a second handoff
        return replies
    handed = hand_off(turn, "handoff_upset", reason=UPSET_REASON)
    if not understood:
        turn.conversation.misunderstood = 0
        return handed
    return [*replies, *handed]


ROUTES = [Route(hand_off, intent="talk_to_agent")]
