"""The result type of understanding, and the protocol every backend implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

INTENTS = (
    "greet", "goodbye", "thanks", "affirm", "deny", "ask_info", "request", "check_status", "complaint",
    "talk_to_agent", "loyalty_points", "opt_out", "opt_in", "update_profile", "delete_data", "out_of_scope",
)


@dataclass(frozen=True)
class Entity:
    entity: str
    value: str | int
    text: str = ""
    start: int | None = None
    end: int | None = None


@dataclass(frozen=True)
class Interpretation:
    intent: str
    confidence: float
    language: str | None = None
    entities: tuple[Entity, ...] = ()
    ranking: tuple[tuple[str, float], ...] = field(default=())
    # Which backend answered: "embedded", "rasa", or "embedded (rasa down)" when Rasa could not.
    backend: str = "embedded"

    def entity(self, name: str) -> Entity | None:
        return next((e for e in self.entities if e.entity == name), None)


class Interpreter(Protocol):
    """`interpret` is pure CPU (embedded) or one HTTP call (Rasa); it never touches the database.

    `now` is when the message arrived: relative dates ("besok") are read from it, in Asia/Jakarta.
    """

    def interpret(self, text: str, language_hint: str | None = None, now: datetime | None = None) -> Interpretation:
        ...
