"""The conversation core: one inbound message, one transaction, replies into the outbox.

Record (a repeated provider id ends here), identify or create the customer, continue or open the
conversation, log the interaction, route, write replies to the outbox, commit. Sending happens
after the commit, in the outbox dispatcher, so a crash never loses a reply nor sends one twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from bot.clock import Clock
from bot.config import Settings
from bot.messages import InboundMessage
from handlers import ROUTES, Reply, Route, Turn, dispatch
from nlu.interpretation import INTENTS, Interpretation, Interpreter
from store import Database
from store.conversations import HUMAN_STATUSES, continue_or_open
from store.customers import get_customer, get_or_create_identity
from store.messages import add_outbound, find_by_provider_id, replies_to
from store.models import Message

log = logging.getLogger(__name__)
INTENT_PAYLOAD = "intent:"


@dataclass(frozen=True)
class InboundResult:
    """What happened to one inbound message: its row, whether it was a repeat, the replies queued."""

    message_id: int
    duplicate: bool
    conversation_id: int
    customer_id: int
    reply_ids: tuple[int, ...] = field(default=())


class Pipeline:
    def __init__(
        self,
        database: Database,
        interpreter: Interpreter,
        settings: Settings,
        clock: Clock,
        routes: list[Route] = ROUTES,
        on_outbox: Callable[[], None] | None = None,
    ) -> None:
        self.database = database
        self.interpreter = interpreter
        self.settings = settings
        self.clock = clock
        self.routes = routes
        self.on_outbox = on_outbox  # wakes the dispatcher after commit
        self._idle_close = timedelta(minutes=settings.conversation.idle_close_minutes)

    def understand(self, message: InboundMessage) -> Interpretation:
        """Button payloads say what they mean; free text goes to the interpreter."""
        payload = message.button_payload or ""
        if payload.startswith(INTENT_PAYLOAD) and payload[len(INTENT_PAYLOAD):] in INTENTS:
            return Interpretation(payload[len(INTENT_PAYLOAD):], 1.0, message.language_hint)
        return self.interpreter.interpret(message.text, message.language_hint)

    def handle(self, message: InboundMessage) -> InboundResult:
        # Understanding is pure CPU: done before the transaction so no lock is held meanwhile.
        interpretation = self.understand(message)
        now = self.clock.now()
        with self.database.unit_of_work() as session:
            identity, created = get_or_create_identity(
                session, message.channel, message.sender, now=now,
                display_name=message.display_name, language_hint=message.language_hint,
            )
            earlier = find_by_provider_id(session, message.channel, message.provider_message_id)
            if earlier is not None:
                log.info("duplicate delivery %s/%s ignored", message.channel, earlier.id)
                return InboundResult(
                    earlier.id, True, earlier.conversation_id, earlier.customer_id,
                    tuple(r.id for r in replies_to(session, earlier.id)),
                )
            customer = get_customer(session, identity.customer_id)
            assert customer is not None, "an identity always points at a customer"
            language = customer.language or interpretation.language or message.language_hint
            if language not in self.settings.languages:
                language = self.settings.default_language
            conversation, _ = continue_or_open(
                session, identity, now=now, language=language, idle_close=self._idle_close
            )
            if interpretation.language in self.settings.languages:
                conversation.language = interpretation.language
            identity.last_inbound_at = now
            if message.display_name:
                identity.display_name = message.display_name
            conversation.last_inbound_at = now
            conversation.last_message_at = now
            row = Message(
                conversation_id=conversation.id, customer_id=customer.id, channel=message.channel,
                direction="in", sender="customer", text=message.text, buttons=[],
                media=[{"url": m.url, "content_type": m.content_type} for m in message.media],
                button_payload=message.button_payload, intent=interpretation.intent,
                confidence=interpretation.confidence, language=interpretation.language,
                provider_message_id=message.provider_message_id, delivery_status="received",
                created_at=now,
            )
            session.add(row)
            session.flush()

            replies: list[Reply] = []
            if conversation.status not in HUMAN_STATUSES:
                turn = Turn(
                    customer=customer, identity=identity, conversation=conversation, message=message,
                    message_id=row.id, interpretation=interpretation, session=session,
                    settings=self.settings, clock=self.clock, is_new_customer=created,
                )
                replies = dispatch(turn, self.routes)
            reply_ids = tuple(
                add_outbound(
                    session, conversation, recipient=identity.address, text=reply.text, now=now,
                    buttons=[{"title": b.title, "payload": b.payload} for b in reply.buttons],
                    reply_to_id=row.id,
                ).id
                for reply in replies
            )
            result = InboundResult(row.id, False, conversation.id, customer.id, reply_ids)
        if reply_ids and self.on_outbox is not None:
            self.on_outbox()
        return result
