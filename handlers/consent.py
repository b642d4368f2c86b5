"""Consent (CRM-1.5, UU PDP): the privacy notice's two questions, and marketing consent by keyword or words.

A new customer is shown a short privacy notice and asked, with buttons, for consent to process their
data and then, separately, for marketing messages; each answer is an append-only `consents` row with
time, channel and the words or button that gave it. STOP, BERHENTI, UNSUBSCRIBE withdraw marketing
consent and START gives it again, before anything else the message might mean; "jangan kirim promo
lagi" in words is only a guess of the classifier, so it asks a yes/no question first and changes nothing
until the customer says yes; a one-word message that is not a keyword ("Msg") is never taken for one.
Each change is confirmed once: a repeated STOP changes nothing and sends nothing, so the customer is not
messaged again. The first opt-in ever is thanked without "again".
"""

from __future__ import annotations

from sqlalchemy import exists, select

from handlers.turn import Reply, Route, Turn
from store.consents import current, record
from store.models import Consent

STOP_WORDS = frozenset({"STOP", "BERHENTI", "UNSUBSCRIBE", "STOPALL", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "MULAI", "SUBSCRIBE", "UNSTOP"})


def _ever_granted(turn: Turn) -> bool:
    return bool(turn.session.execute(select(exists().where(
        Consent.customer_id == turn.customer.id, Consent.purpose == "marketing", Consent.granted.is_(True)))).scalar())


def _opt_in_template(turn: Turn) -> str:
    return "opt_in_confirmed" if _ever_granted(turn) else "opt_in_first"


def _set_marketing(turn: Turn, granted: bool, template: str, evidence: str | None = None) -> list[Reply]:
    already = current(turn.session, turn.customer.id, "marketing")
    if turn.conversation.pending_question == CONFIRM_QUESTION:
        turn.clear_question()  # STOP typed while we asked "do you want to stop?": the keyword answers it
    if already is granted:
        return []
    if granted:
        template = _opt_in_template(turn) if template == "opt_in_confirmed" else template
    record(turn.session, turn.customer.id, "marketing", granted, channel=turn.message.channel,
           evidence=evidence or turn.message.text.strip(), now=turn.clock.now())
    return [turn.reply(template)]


def stop(turn: Turn) -> list[Reply]:
    return _set_marketing(turn, False, "opt_out_confirmed")


def start(turn: Turn) -> list[Reply]:
    return _set_marketing(turn, True, "opt_in_confirmed")


PAYLOAD = "consent:"
CONFIRM_QUESTION = "consent_confirm"


def privacy_notice(turn: Turn) -> Reply:
    """The notice with its first question; shown to a new customer after the greeting."""
    return turn.reply("privacy_notice", buttons=(turn.button("button_agree", f"{PAYLOAD}data:yes"),
                                                 turn.button("button_disagree", f"{PAYLOAD}data:no")))


def answered(turn: Turn) -> list[Reply] | None:
    parts = (turn.message.button_payload or "").split(":")
    if len(parts) == 4 and parts[1] == "confirm":
        return _confirmed(turn, parts[2], parts[3] == "yes") if parts[3] in ("yes", "no") else None
    if len(parts) != 3 or parts[1] not in ("data", "marketing") or parts[2] not in ("yes", "no"):
        return None
    purpose, granted = ("data_processing" if parts[1] == "data" else "marketing"), parts[2] == "yes"
    resumed = purpose == "marketing" and granted and _ever_granted(turn)
    record(turn.session, turn.customer.id, purpose, granted, channel=turn.message.channel,
           evidence=f"button {turn.message.button_payload}: {turn.message.text.strip()}"[:500], now=turn.clock.now())
    if purpose == "data_processing":
        # The marketing question comes second and separately, so agreeing to one never implies the other.
        template = "consent_data_given" if granted else "consent_data_refused"
        return [turn.reply(template),
                turn.reply("consent_marketing_question", buttons=(
                    turn.button("button_agree", f"{PAYLOAD}marketing:yes"),
                    turn.button("button_disagree", f"{PAYLOAD}marketing:no")))]
    if not granted:
        return [turn.reply("consent_marketing_declined")]
    return [turn.reply("opt_in_confirmed" if resumed else "opt_in_first")]


# --- consent said in words: ask first --------------------------------------------------------------

def _ask(turn: Turn, direction: str) -> list[Reply] | None:
    """The classifier thinks this is an opt-out/in: ask before changing anything. None: not a consent message."""
    text = turn.message.text.strip()
    if len(text.split()) < 2:
        return None  # "Msg", "ok", a stray word: too little to even ask about (keywords are matched before)
    granted = direction == "in"
    if current(turn.session, turn.customer.id, "marketing") is granted:
        return [turn.reply("opt_in_already" if granted else "opt_out_already")]
    turn.ask(CONFIRM_QUESTION, {"direction": direction, "words": text[:300]})
    return [turn.reply(f"consent_confirm_{direction}",
                       buttons=(turn.button("button_yes", f"{PAYLOAD}confirm:{direction}:yes"),
                                turn.button("button_no", f"{PAYLOAD}confirm:{direction}:no")))]


def _confirmed(turn: Turn, direction: str, yes: bool) -> list[Reply] | None:
    data = dict(turn.conversation.pending_data or {})
    if turn.conversation.pending_question != CONFIRM_QUESTION or data.get("direction") != direction:
        return [turn.reply("button_stale")]  # the question lapsed (the customer moved on): nothing changes
    turn.clear_question()
    if not yes:
        return [turn.reply("consent_unchanged")]
    granted = direction == "in"
    evidence = f"said \"{data.get('words', '')}\", confirmed: {turn.message.text.strip()}"[:500]
    replies = _set_marketing(turn, granted, "opt_in_confirmed" if granted else "opt_out_confirmed", evidence)
    return replies or [turn.reply("opt_in_already" if granted else "opt_out_already")]


def confirmed_in_words(turn: Turn) -> list[Reply] | None:
    direction = str((turn.conversation.pending_data or {}).get("direction", ""))
    if turn.interpretation.intent == "affirm":
        return _confirmed(turn, direction, True)
    if turn.interpretation.intent == "deny":
        return _confirmed(turn, direction, False)
    turn.clear_question()  # something else entirely: nothing changes, the message is routed as usual
    return None


def opt_out_in_words(turn: Turn) -> list[Reply] | None:
    return _ask(turn, "out")


def opt_in_in_words(turn: Turn) -> list[Reply] | None:
    return _ask(turn, "in")


ROUTES = [Route(stop, keywords=STOP_WORDS), Route(start, keywords=START_WORDS),
          Route(answered, payload_prefix=PAYLOAD), Route(confirmed_in_words, pending=CONFIRM_QUESTION)]
INTENT_ROUTES = [Route(opt_out_in_words, intent="opt_out"), Route(opt_in_in_words, intent="opt_in")]
