"""Greeting, thanks and goodbye: address a known customer by name, in their language.

The name is asked at a new customer's first greeting and not repeated on that channel (handlers/intake.py
`name_asked`): a second "halo" or Telegram's `/start` (button payload `intent:greet`) is greeted without it.

"No thanks" (`deny`) and "yes please" (`affirm`) answer the offer of a person that came just before
(the "Talk to an agent" button of an FAQ the bot cannot answer, a status question, a miss): a decline is
acknowledged, an acceptance hands the conversation over as the button would. Said to nothing we offered,
they are left to the fallback.
"""

from __future__ import annotations

from sqlalchemy import func, select

from handlers import vip
from handlers.handoff import hand_off
from handlers.intake import NAME_QUESTION, name_asked
from handlers.turn import Reply, Route, Turn
from store.models import Message

AGENT_PAYLOAD = "intent:talk_to_agent"


def greet(turn: Turn) -> list[Reply]:
    if turn.customer.name and turn.customer.is_vip:  # VIP-2.1: their own greeting, open tickets mentioned
        return [turn.reply("greeting_vip", name=turn.customer.name, tickets=vip.open_ticket_refs(turn))]
    if turn.customer.name:
        return [turn.reply("greeting", name=turn.customer.name)]
    if name_asked(turn):
        return [turn.reply("greeting_new")]  # asked already: once is enough
    turn.ask(NAME_QUESTION)
    return [turn.reply("greeting_new"), turn.reply("ask_name")]


def thanks(turn: Turn) -> list[Reply]:
    return [turn.reply("thanks", name=turn.customer.name or "")]


def goodbye(turn: Turn) -> list[Reply]:
    return [turn.reply("goodbye", name=turn.customer.name or "")]


def offered_a_person(turn: Turn) -> bool:
    """Our answer to the customer's previous message offered a person (the agent button)."""
    previous = turn.session.execute(
        select(func.max(Message.id)).where(Message.conversation_id == turn.conversation.id,
                                           Message.direction == "in", Message.id < turn.message_id)
    ).scalar()
    if previous is None:
        return False
    answers = turn.session.execute(
        select(Message.buttons).where(Message.conversation_id == turn.conversation.id, Message.direction == "out",
                                      Message.id > previous, Message.id < turn.message_id)
    ).scalars()
    return any(button.get("payload") == AGENT_PAYLOAD for buttons in answers for button in buttons or ())


def declined(turn: Turn) -> list[Reply] | None:
    if not offered_a_person(turn):
        return None
    template = "offer_declined"
    return [turn.reply(template, name=turn.customer.name or "")]


def accepted(turn: Turn) -> list[Reply] | None:
    if not offered_a_person(turn):
        return None
    return hand_off(turn, reason="talk_to_agent")


ROUTES = [
    Route(greet, intent="greet"),
    Route(thanks, intent="thanks"),
    Route(goodbye, intent="goodbye"),
    Route(declined, intent="deny"),
    Route(accepted, intent="affirm"),
]
