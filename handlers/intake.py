"""Name capture for a new customer: asked once, never in the way of a real request."""

from __future__ import annotations

import re

from handlers.turn import Reply, Route, Turn

_INTRODUCTION = re.compile(
    r"^(?:(?:halo|hai|hi|hello)[,!.\s]+)?(?:nama\s+(?:saya|aku|sy|gue|gw)(?:\s+adalah)?|saya|aku|sy|"
    r"panggil(?:\s+saja)?(?:\s+aku|\s+saya)?|my\s+name\s+is|my\s+name's|i\s+am|i'm|im|call\s+me|this\s+is)"
    r"[\s:,]+(.+)$",
    re.IGNORECASE,
)
_NAME = re.compile(r"^[^\W\d_]+(?:[ '.-][^\W\d_]+){0,4}\.?$")
# Intents that mean the customer wants something else now: answer that instead of insisting.
_WANTS_SOMETHING = {
    "complaint", "talk_to_agent", "request", "check_status", "ask_info", "loyalty_points",
    "opt_out", "opt_in", "update_profile", "delete_data", "goodbye",
}


def extract_name(text: str) -> str | None:
    """'nama saya budi santoso' -> 'Budi Santoso'; 'Rina' -> 'Rina'; a sentence -> None."""
    candidate = text.strip().strip("!.,")
    match = _INTRODUCTION.match(candidate)
    if match:
        candidate = match.group(1).strip().strip("!.,")
    if not _NAME.match(candidate) or len(candidate) > 60 or len(candidate.split()) > 4:
        return None
    if candidate.islower() or candidate.isupper():
        candidate = " ".join(part.capitalize() for part in candidate.split())
    return candidate


def answer_name(turn: Turn) -> list[Reply] | None:
    interpretation = turn.interpretation
    name = extract_name(turn.message.text)
    looks_like_request = interpretation.intent in _WANTS_SOMETHING and not _INTRODUCTION.match(
        turn.message.text.strip()
    )
    if name is None or looks_like_request:
        turn.clear_question()
        return None  # not a name: route the message normally, and do not ask again now
    turn.customer.name = name
    turn.customer.updated_at = turn.clock.now()
    turn.clear_question()
    return [turn.reply("name_saved", name=name)]


ROUTES = [Route(answer_name, pending="ask_name")]
