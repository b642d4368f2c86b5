"""Greeting, thanks and goodbye: address a known customer by name, in their language."""

from __future__ import annotations

from handlers import vip
from handlers.turn import Reply, Route, Turn


def greet(turn: Turn) -> list[Reply]:
    if turn.customer.name and turn.customer.is_vip:  # VIP-2.1: their own greeting, open tickets mentioned
        return [turn.reply("greeting_vip", name=turn.customer.name, tickets=vip.open_ticket_refs(turn))]
    if turn.customer.name:
        return [turn.reply("greeting", name=turn.customer.name)]
    turn.ask("ask_name")
    return [turn.reply("greeting_new"), turn.reply("ask_name")]


def thanks(turn: Turn) -> list[Reply]:
    return [turn.reply("thanks", name=turn.customer.name or "")]


def goodbye(turn: Turn) -> list[Reply]:
    return [turn.reply("goodbye", name=turn.customer.name or "")]


ROUTES = [
    Route(greet, intent="greet"),
    Route(thanks, intent="thanks"),
    Route(goodbye, intent="goodbye"),
]
