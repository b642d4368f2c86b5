"""Marketing consent by keyword: STOP, BERHENTI, UNSUBSCRIBE withdraw it, START gives it again.

Takes effect at once, before anything else the message might mean, and is confirmed once: a
repeated STOP changes nothing and sends nothing, so the customer is not messaged again.
"""

from __future__ import annotations

from handlers.turn import Reply, Route, Turn
from store.consents import current, record

STOP_WORDS = frozenset({"STOP", "BERHENTI", "UNSUBSCRIBE", "STOPALL", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "MULAI", "SUBSCRIBE", "UNSTOP"})


def _set_marketing(turn: Turn, granted: bool, template: str) -> list[Reply]:
    already = current(turn.session, turn.customer.id, "marketing")
    turn.clear_question()
    if already is granted:
        return []
    record(turn.session, turn.customer.id, "marketing", granted, channel=turn.message.channel,
           evidence=turn.message.text.strip(), now=turn.clock.now())
    return [turn.reply(template)]


def stop(turn: Turn) -> list[Reply]:
    return _set_marketing(turn, False, "opt_out_confirmed")


def start(turn: Turn) -> list[Reply]:
    return _set_marketing(turn, True, "opt_in_confirmed")


ROUTES = [Route(stop, keywords=STOP_WORDS), Route(start, keywords=START_WORDS)]
