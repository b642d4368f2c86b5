"""Profile questions (CRM-1.2, CRM-1.3): the name, then the email, each asked once, never in the way of a request.

The name is asked when a new customer greets us (handlers/greeting.py), once per channel address: a
greeting or Telegram's `/start` from a customer who was already asked there (or told us) does not repeat
it; while the question is open a greeting is not a name ("halo"), nor a refusal ("gak usah"), which drops
the question. The email is asked once ever
(`customers.email_asked_at`, so not again on another channel) when `intake.ask_email` is on, the name is
known, no email is on file (an imported one counts) and the moment is calm: in a later conversation than
the customer's first contact (which already had the name question and the privacy notice), after a
greeting, thanks or an FAQ answer, never after a complaint, a request or in a conversation a human took
part in, never while a ticket of theirs is open, and never while another question is open.
An answer that is neither an email nor a "skip" drops the question and is routed as usual.
"""

from __future__ import annotations

import re

from sqlalchemy import select

from bot.contacts import normalise_email
from bot.templating import render
from handlers.desk import open_tickets
from handlers.turn import Reply, Route, Turn
from nlu.normalise import words
from store.audit import record
from store.consents import current as current_consent
from store.models import Conversation, Message

_INTRODUCTION = re.compile(
    r"^(?:(?:halo|hai|hi|hello)[,!.\s]+)?(?:nama\s+(?:saya|aku|sy|gue|gw)(?:\s+adalah)?|saya|aku|sy|"
    r"panggil(?:\s+saja)?(?:\s+aku|\s+saya)?|my\s+name\s+is|my\s+name's|i\s+am|i'm|im|call\s+me|this\s+is)"
    r"[\s:,]+(.+)$",
    re.IGNORECASE,
)
# Said only by someone giving a name ("nama saya", "my name is", "panggil aku"); a bare "saya ..." / "I am ..."
# also starts requests ("saya mau bicara dengan petugas"), so it does not outweigh what the words ask for.
_NAMING = re.compile(r"^(?:(?:halo|hai|hi|hello)[,!.\s]+)?(?:nama\s+|my\s+name|panggil|call\s+me)", re.IGNORECASE)
# After "saya"/"aku"/"I am", these words begin a sentence about wanting or doing, never a name.
_NOT_A_NAME_START = frozenset({
    "mau", "mo", "mw", "ingin", "pengen", "pingin", "minta", "perlu", "butuh", "lagi", "sedang", "sudah", "udah",
    "belum", "blm", "tidak", "gak", "ga", "nggak", "enggak", "bisa", "punya", "mohon", "tolong", "komplain",
    "want", "need", "would", "have", "had", "not", "just", "trying", "looking", "waiting", "still",
})
_NAME = re.compile(r"^[^\W\d_]+(?:[ '.-][^\W\d_]+){0,4}\.?$")
# Intents that mean the customer wants something else now: answer that instead of insisting.
_WANTS_SOMETHING = {
    "complaint", "talk_to_agent", "request", "check_status", "ask_info", "loyalty_points",
    "opt_out", "opt_in", "update_profile", "delete_data", "goodbye", "thanks",
}


def extract_name(text: str) -> str | None:
    """'nama saya budi santoso' -> 'Budi Santoso'; 'Rina' -> 'Rina'; a sentence -> None."""
    candidate = text.strip().strip("!.,")
    match = _INTRODUCTION.match(candidate)
    if match:
        candidate = match.group(1).strip().strip("!.,")
    if not _NAME.match(candidate) or len(candidate) > 60 or len(candidate.split()) > 4:
        return None
    if candidate.split()[0].lower() in _NOT_A_NAME_START:
        return None
    if candidate.islower() or candidate.isupper():
        candidate = " ".join(part.capitalize() for part in candidate.split())
    return candidate


NAME_QUESTION = "ask_name"


def name_asked(turn: Turn) -> bool:
    """The name question is open, or was sent before on this channel address: it is asked once there.

    A customer who ignored it is not asked again on every greeting or Telegram `/start`; they can still
    give it (update_profile, "nama saya ..."). A new channel of theirs (WhatsApp after SMS) may ask once:
    the person there may not connect it with a question asked elsewhere."""
    if turn.conversation.pending_question == NAME_QUESTION:
        return True
    asked = {render(text, {"company": turn.settings.company.name})
             for text in turn.settings.templates[NAME_QUESTION].values()}
    return turn.session.execute(
        select(Message.id).join(Conversation, Message.conversation_id == Conversation.id)
        .where(Conversation.identity_id == turn.identity.id, Message.direction == "out", Message.text.in_(asked))
        .limit(1)
    ).first() is not None


def _is_greeting(turn: Turn) -> bool:
    """Telegram's /start (button payload intent:greet) or a plain "halo" is a greeting, not a name."""
    if turn.message.button_payload == "intent:greet":
        return True
    return turn.interpretation.intent == "greet" and not _INTRODUCTION.match(turn.message.text.strip())


def answer_name(turn: Turn) -> list[Reply] | None:
    interpretation = turn.interpretation
    if _is_greeting(turn):
        return None  # greeted (again): the greeting answers, and the question stays open without being repeated
    if interpretation.intent == "deny" and not _INTRODUCTION.match(turn.message.text.strip()):
        turn.clear_question()  # "gak usah", "no thanks": a refusal, not a name ("Gak Usah")
        return [turn.reply("name_declined")]
    name = extract_name(turn.message.text)
    looks_like_request = interpretation.intent in _WANTS_SOMETHING and not _NAMING.match(turn.message.text.strip())
    if name is None or looks_like_request:
        turn.clear_question()
        return None  # not a name: route the message normally, and do not ask again now
    turn.customer.name = name
    turn.customer.updated_at = turn.clock.now()
    turn.clear_question()
    return [turn.reply("name_saved", name=name)]


# --- email ---------------------------------------------------------------------------------------

EMAIL_QUESTION = "ask_email"
EMAIL_PAYLOAD = "intake:email:"
SKIP_PAYLOAD = EMAIL_PAYLOAD + "skip"
# Calm moments: the customer has what they came for and nothing urgent is going on.
_CALM = frozenset({"greet", "thanks", "ask_info"})
_SKIP_MAX_WORDS = 6  # "nanti saja ya kak" declines; a long sentence that starts with "tidak" is something else


def ask_email_if_calm(turn: Turn, route: Route) -> list[Reply]:
    """After `route` answered: the email question, if this is the one calm moment to ask it."""
    customer, conversation = turn.customer, turn.conversation
    if (not turn.settings.intake.ask_email or not customer.name or customer.email or customer.email_asked_at
            or conversation.status != "bot" or conversation.pending_question is not None
            or conversation.handed_off_at is not None  # a human was involved: not a calm conversation
            or conversation.opened_at <= customer.created_at  # first contact had the name and privacy questions
            or route.intent not in _CALM  # the route that answered, not the words: "ya, makasih" to a survey
            or current_consent(turn.session, customer.id, "data_processing") is False
            or open_tickets(turn.session, customer.id)):  # we still owe them something: not the moment to ask
        return []
    customer.email_asked_at = turn.clock.now()
    turn.ask(EMAIL_QUESTION)
    return [turn.reply("ask_email", name=customer.name, buttons=(turn.button("button_skip", SKIP_PAYLOAD),))]


def answer_email(turn: Turn) -> list[Reply] | None:
    turn.clear_question()  # asked once: whatever the answer, the question is gone
    if turn.message.button_payload == SKIP_PAYLOAD:
        return [turn.reply("email_skipped")]
    email = _email_in(turn)
    if email is not None:
        _save_email(turn, email)
        if turn.interpretation.intent in _WANTS_SOMETHING - {"update_profile"}:
            return None  # "email saya x@y.id, barang saya rusak": saved, and the complaint is answered
        return [turn.reply("email_saved", name=turn.customer.name or "", email=email)]
    if _declines(turn):
        return [turn.reply("email_skipped")]
    return None  # not an answer: route the message normally


def skip_by_button(turn: Turn) -> list[Reply] | None:
    """A "skip" pressed after the question was dropped: nothing to undo, just acknowledge it."""
    if turn.message.button_payload != SKIP_PAYLOAD:
        return None
    return [turn.reply("email_skipped")]


def _email_in(turn: Turn) -> str | None:
    entity = turn.interpretation.entity("email")
    if entity is not None:
        return normalise_email(str(entity.value))
    return normalise_email(turn.message.text.strip().strip(".,!"))


def _declines(turn: Turn) -> bool:
    if turn.interpretation.intent in _WANTS_SOMETHING:
        return False
    said = words(turn.message.text)
    if turn.interpretation.intent == "deny" and len(said) <= _SKIP_MAX_WORDS:
        return True
    if not said or len(said) > _SKIP_MAX_WORDS:
        return False
    return any(said[: len(phrase)] == phrase for phrase in _skip_phrases(turn.settings.intake.email_skip_words))


def _skip_phrases(configured: tuple[str, ...]) -> list[list[str]]:
    return [phrase for phrase in (words(p) for p in configured) if phrase]


def _save_email(turn: Turn, email: str) -> None:
    customer, now = turn.customer, turn.clock.now()
    had_value = customer.email is not None
    customer.email, customer.updated_at = email, now
    record(turn.session, actor=f"customer:{customer.id}", action="customer.update", subject_type="customer",
           subject_id=customer.id, now=now,
           detail={"field": "email", "had_value": had_value, "channel": turn.message.channel, "via": "ask_email"})


ROUTES = [
    Route(answer_name, pending=NAME_QUESTION),
    Route(answer_email, pending=EMAIL_QUESTION),
    Route(skip_by_button, payload_prefix=EMAIL_PAYLOAD),
]
