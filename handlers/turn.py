"""What a handler receives (a Turn) and gives back (Replies), and how a handler declares its routes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from bot.clock import Clock
from bot.config import Settings
from bot.messages import Button, InboundMessage
from bot.templating import render
from nlu.interpretation import Interpretation
from store.conversations import HUMAN_STATUSES
from store.models import ChannelIdentity, Conversation, Customer


@dataclass(frozen=True)
class Reply:
    text: str
    buttons: tuple[Button, ...] = ()


@dataclass
class Turn:
    """One inbound message in context. Handlers read it and change state only through `session`."""

    customer: Customer
    identity: ChannelIdentity
    conversation: Conversation
    message: InboundMessage
    message_id: int
    interpretation: Interpretation
    session: Session
    settings: Settings
    clock: Clock
    is_new_customer: bool
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def language(self) -> str:
        """The customer's chosen language, else this message's language, else the conversation's."""
        for candidate in (self.customer.language, self.interpretation.language, self.conversation.language):
            if candidate in self.settings.languages:
                return candidate
        return self.settings.default_language

    def text(self, template: str, **variables: Any) -> str:
        texts = self.settings.templates[template]
        chosen = texts.get(self.language) or texts[self.settings.default_language]
        return render(chosen, {"company": self.settings.company.name, **variables})

    def reply(self, template: str, buttons: tuple[Button, ...] = (), **variables: Any) -> Reply:
        return Reply(self.text(template, **variables), buttons)

    def button(self, template: str, payload: str) -> Button:
        return Button(self.text(template), payload)

    def ask(self, question: str, data: dict[str, Any] | None = None) -> None:
        """Wait for the customer's answer to `question`; its route gets the next message first."""
        self.conversation.pending_question = question
        self.conversation.pending_data = {**self._kept(), **(data or {})}

    def clear_question(self) -> None:
        self.conversation.pending_question = None
        self.conversation.pending_data = self._kept()

    def _kept(self) -> dict[str, Any]:
        # Why the conversation waits for a person outlives any question the bot asks meanwhile (handlers/waiting.py).
        reason = (self.conversation.pending_data or {}).get("handoff_reason")
        return {"handoff_reason": reason} if reason is not None and self.conversation.status in HUMAN_STATUSES else {}

    @property
    def display_name(self) -> str | None:
        return self.customer.name or self.identity.display_name


# A handler returns its replies, or None for "not mine after all, keep routing".
Handler = Callable[[Turn], "list[Reply] | None"]


@dataclass(frozen=True)
class Route:
    """What a handler answers: a keyword, a pending question, a button payload prefix, or an intent."""

    handler: Handler
    intent: str | None = None
    pending: str | None = None
    payload_prefix: str | None = None
    keywords: frozenset[str] = frozenset()  # whole-message keywords, compared upper-case
    when: Callable[[Turn], bool] | None = None  # any other condition on the turn (attachments, forwards)
    # An answer to our own feedback question (CSAT, NPS): a low score has its own path (alerts, recovery
    # ticket), so its tone does not also hand the conversation off (handlers/handoff.after_route).
    feedback: bool = False

    def matches(self, turn: Turn) -> bool:
        if self.when is not None:
            return self.when(turn)
        if self.keywords:
            # A forwarded "STOP" is someone else's word: keywords are the customer's own, in any state.
            return (turn.message.forwarded_from is None
                    and turn.message.text.strip().strip(".!").upper() in self.keywords)
        if self.pending is not None:
            return turn.conversation.pending_question == self.pending
        if self.payload_prefix is not None:
            payload = turn.message.button_payload or ""
            return payload.startswith(self.payload_prefix)
        return self.intent is not None and turn.interpretation.intent == self.intent
