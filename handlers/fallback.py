"""When Sapa cannot help: say so plainly and offer a human."""

from __future__ import annotations

from handlers.turn import Reply, Route, Turn


def fallback(turn: Turn) -> list[Reply]:
    return [turn.reply("fallback", buttons=(turn.button("button_agent", "intent:talk_to_agent"),))]


# Matches everything: it is always last in the priority order.
ROUTES = [Route(fallback, payload_prefix="")]
