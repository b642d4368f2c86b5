"""Greeting, thanks and goodbye: address a known customer by name, in their language."""

from __future__ import annotations

from handlers.turn import Reply, Route, Turn


def greet(turn: Turn) -> list[Reply]:
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
