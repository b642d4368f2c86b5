"""Consent (CRM-1.5, UU PDP): the privacy notice's two questions, and marketing consent by keyword or words.

A new customer is shown a short privacy notice and asked, with buttons, for consent to process their
data and then, separately, for marketing messages; each answer is an append-only `consents` row with
time, channel and the words or button that gave it. STOP, BERHENTI, UNSUBSCRIBE withdraw marketing
consent and START gives it again, before anything else the message might mean; "jangan kirim promo
lagi" in words does the same. Each change is confirmed once: a repeated STOP changes nothing and sends
nothing, so the customer is not messaged again.
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


PAYLOAD = "consent:"


def privacy_notice(turn: Turn) -> Reply:
    """The notice with its first question; shown to a new customer after the greeting."""
    return turn.reply("privacy_notice", buttons=(turn.button("button_agree", f"{PAYLOAD}data:yes"),
                                                 turn.button("button_disagree", f"{PAYLOAD}data:no")))


def answered(turn: Turn) -> list[Reply] | None:
    parts = (turn.message.button_payload or "").split(":")
    if len(parts) != 3 or parts[1] not in ("data", "marketing") or parts[2] not in ("yes", "no"):
        return None
    purpose, granted = ("data_processing" if parts[1] == "data" else "marketing"), parts[2] == "yes"
    record(turn.session, turn.customer.id, purpose, granted, channel=turn.message.channel,
           evidence=f"button {turn.message.button_payload}: {turn.message.text.strip()}"[:500], now=turn.clock.now())
    if purpose == "data_processing":
        # The marketing question comes second and separately, so agreeing to one never implies the other.
        template = "consent_data_given" if granted else "consent_data_refused"
        return [turn.reply(template),
                turn.reply("consent_marketing_question", buttons=(
                    turn.button("button_agree", f"{PAYLOAD}marketing:yes"),
                    turn.button("button_disagree", f"{PAYLOAD}marketing:no")))]
    return [turn.reply("opt_in_confirmed" if granted else "consent_marketing_declined")]


def opt_out_in_words(turn: Turn) -> list[Reply]:
    return _set_marketing(turn, False, "opt_out_confirmed") or [turn.reply("opt_out_already")]


def opt_in_in_words(turn: Turn) -> list[Reply]:
    return _set_marketing(turn, True, "opt_in_confirmed") or [turn.reply("opt_in_already")]


ROUTES = [Route(stop, keywords=STOP_WORDS), Route(start, keywords=START_WORDS),
          Route(answered, payload_prefix=PAYLOAD)]
INTENT_ROUTES = [Route(opt_out_in_words, intent="opt_out"), Route(opt_in_in_words, intent="opt_in")]
