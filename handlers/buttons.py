"""Only Sapa's own buttons act, and only while their question is open.

A button press arrives as data (Telegram callback_data, a WhatsApp ButtonPayload, the web chat's payload).
Anyone can send data: another bot's keyboard, a WhatsApp call-permission reply, a hand-made request. So a
press is checked against what Sapa actually offered this customer before anything reads it:

- `foreign`: no message Sapa sent this customer carried that payload. It is logged and answered neutrally;
  it is never read as text by the NLU (today "some_data" would have become delete_data).
- `stale`: the message that carried it was already answered (one of its buttons was pressed, or typed as
  its number, later). Web chat and Telegram keep old buttons clickable; an old "Tidak setuju" must not
  reverse a consent given since. Answered with "no longer open", nothing changes.
- `current`: routed as before.

Which message carried the button: the channel says when it can (`InboundMessage.button_of`); otherwise the
newest message to this customer that offered the payload.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from handlers.turn import Reply, Turn
from store.models import Message

Verdict = Literal["current", "stale", "foreign"]
LOOKBACK = 50  # outbound messages searched for the payload when the channel does not name the message
# Presses whose handler answers a repeat itself, better than "no longer open" could: a second "Ya" to a
# redemption returns the voucher already issued (the payload carries the request's key).
ANSWERS_REPEATS = ("loyalty:yes:",)


@dataclass(frozen=True)
class ButtonCheck:
    verdict: Verdict
    offered_by: int | None  # the messages.id that carried the button


def _payloads(message: Message) -> list[str]:
    return [str(b.get("payload")) for b in (message.buttons or []) if isinstance(b, dict)]


def _named(session: Session, customer_id: int, channel: str, button_of: str) -> Message | None:
    if button_of.startswith("#"):
        try:
            found = session.get(Message, int(button_of[1:]))
        except (ValueError, OverflowError):
            return None
    else:
        found = session.execute(select(Message).where(
            Message.channel == channel, Message.provider_message_id == button_of, Message.direction == "out",
        ).limit(1)).scalar_one_or_none()
    return found if found is not None and found.customer_id == customer_id and found.direction == "out" else None


def check(session: Session, *, customer_id: int, channel: str, payload: str, button_of: str | None) -> ButtonCheck:
    offered: Message | None = None
    if button_of:
        named = _named(session, customer_id, channel, button_of)
        # Telegram puts the keyboard on the last part of a long reply, whose id we did not record: a name
        # that does not resolve falls back to the payload search, which still requires that we offered it.
        if named is not None and payload in _payloads(named):
            offered = named
    if offered is None:
        recent = session.execute(
            select(Message).where(Message.customer_id == customer_id, Message.direction == "out")
            .order_by(Message.id.desc()).limit(LOOKBACK)
        ).scalars()
        offered = next((m for m in recent if payload in _payloads(m)), None)
    if offered is None:
        return ButtonCheck("foreign", None)
    answered = session.execute(
        select(Message.id).where(
            Message.customer_id == customer_id, Message.direction == "in", Message.id > offered.id,
            Message.button_payload.in_(_payloads(offered)),
        ).limit(1)
    ).scalar_one_or_none()
    if answered is not None and not payload.startswith(ANSWERS_REPEATS):
        return ButtonCheck("stale", offered.id)
    return ButtonCheck("current", offered.id)


def refusal(turn: Turn, refused: ButtonCheck) -> Reply:
    """The neutral answer to a refused press."""
    return turn.reply("button_stale" if refused.verdict == "stale" else "button_unknown")
