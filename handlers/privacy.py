"""The customer's own data (CRM-1.3, CRM-1.5): profile changes with confirmation, and erasure on request.

Both ask before acting: a change or an erasure happens only after an explicit yes (button, "1", or a
yes in words), and both are written to the audit log.
"""

from __future__ import annotations

from handlers.turn import Button, Reply, Route, Turn
from store.audit import record
from store.customers import find_customer_by_phone
from store.privacy import erase_customer

ERASE_QUESTION = "erasure_confirm"
ERASE_PAYLOAD = "erase:"
PROFILE_QUESTION = "profile_confirm"
PROFILE_PAYLOAD = "profile:"
# Entity -> the customer field it changes, in the order we look for them.
PROFILE_FIELDS = {"email": "email", "phone": "phone", "person_name": "name"}


def _yes_no(turn: Turn, prefix: str) -> tuple[Button, Button]:
    return (turn.button("button_yes", f"{prefix}yes"), turn.button("button_no", f"{prefix}no"))


# --- erasure ---------------------------------------------------------------------------------------

def ask_erasure(turn: Turn) -> list[Reply]:
    turn.ask(ERASE_QUESTION)
    return [turn.reply("erasure_confirm", name=turn.customer.name or "", buttons=_yes_no(turn, ERASE_PAYLOAD))]


def _erase(turn: Turn, confirmed: bool) -> list[Reply]:
    turn.clear_question()
    if not confirmed:
        return [turn.reply("erasure_cancelled")]
    now = turn.clock.now()
    erase_customer(turn.session, turn.customer.id, now=now, actor=f"customer:{turn.customer.id}",
                   reason=f"requested on {turn.message.channel}")
    return [turn.reply("erasure_done")]


def erasure_by_button(turn: Turn) -> list[Reply] | None:
    verdict = (turn.message.button_payload or "")[len(ERASE_PAYLOAD):]
    if verdict not in ("yes", "no") or turn.conversation.pending_question != ERASE_QUESTION:
        return None  # a stale button from an old question does not erase anyone
    return _erase(turn, verdict == "yes")


def erasure_in_words(turn: Turn) -> list[Reply] | None:
    if turn.interpretation.intent in ("affirm", "delete_data"):
        return _erase(turn, True)
    if turn.interpretation.intent == "deny":
        return _erase(turn, False)
    turn.clear_question()
    return None


# --- profile changes -------------------------------------------------------------------------------

def ask_profile_change(turn: Turn) -> list[Reply]:
    for entity_name, field in PROFILE_FIELDS.items():
        entity = turn.interpretation.entity(entity_name)
        if entity is not None:
            turn.ask(PROFILE_QUESTION, {"field": field, "value": str(entity.value)})
            return [turn.reply("profile_confirm", field=turn.text(f"field_{field}"), value=str(entity.value),
                               buttons=_yes_no(turn, PROFILE_PAYLOAD))]
    return [turn.reply("profile_how", name=turn.customer.name or "")]


def _change(turn: Turn, confirmed: bool) -> list[Reply]:
    data = dict(turn.conversation.pending_data)
    turn.clear_question()
    field, value = str(data.get("field") or ""), str(data.get("value") or "")
    if not confirmed or field not in PROFILE_FIELDS.values() or not value:
        return [turn.reply("profile_unchanged")]
    if field == "phone":
        owner = find_customer_by_phone(turn.session, value)
        if owner is not None and owner.id != turn.customer.id:
            # Another customer holds that number: an agent must decide whether they are the same person.
            return [turn.reply("profile_phone_taken", buttons=(turn.button("button_agent", "intent:talk_to_agent"),))]
    old = getattr(turn.customer, field)
    setattr(turn.customer, field, value)
    turn.customer.updated_at = turn.clock.now()
    record(turn.session, actor=f"customer:{turn.customer.id}", action="customer.update", subject_type="customer",
           subject_id=turn.customer.id, now=turn.clock.now(),
           detail={"field": field, "had_value": old is not None, "channel": turn.message.channel})
    return [turn.reply("profile_changed", field=turn.text(f"field_{field}"), value=value)]


def profile_by_button(turn: Turn) -> list[Reply] | None:
    verdict = (turn.message.button_payload or "")[len(PROFILE_PAYLOAD):]
    if verdict not in ("yes", "no") or turn.conversation.pending_question != PROFILE_QUESTION:
        return None
    return _change(turn, verdict == "yes")


def profile_in_words(turn: Turn) -> list[Reply] | None:
    if turn.interpretation.intent == "affirm":
        return _change(turn, True)
    if turn.interpretation.intent == "deny":
        return _change(turn, False)
    turn.clear_question()
    return None


ROUTES = [
    Route(erasure_by_button, payload_prefix=ERASE_PAYLOAD),
    Route(erasure_in_words, pending=ERASE_QUESTION),
    Route(profile_by_button, payload_prefix=PROFILE_PAYLOAD),
    Route(profile_in_words, pending=PROFILE_QUESTION),
]
INTENT_ROUTES = [Route(ask_erasure, intent="delete_data"), Route(ask_profile_change, intent="update_profile")]
