"""The conversation core: one inbound message, one transaction, replies into the outbox.

Record (a repeated provider id ends here), identify or create the customer, continue or open the
conversation, log the interaction, route, write replies to the outbox, commit. Sending happens
after the commit, in the outbox dispatcher, so a crash never loses a reply nor sends one twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.clock import Clock
from bot.config import Settings
from bot.messages import DeliveryUpdate, InboundMessage, ReachabilityUpdate
from handlers import ROUTES, Route, Turn, dispatch
from handlers import buttons as button_check
from handlers.desk import relay_to_desk
from handlers.waiting import dispatch_while_human
from nlu.interpretation import INTENTS, Interpretation, Interpreter
from nlu.sentiment import analyse as analyse_sentiment
from store import Database
from store.conversations import HUMAN_STATUSES, continue_or_open
from store.customers import find_customer_by_phone, get_customer, get_or_create_identity
from store.direct_insert import insert_attached
from store.inbound_context import InboundContext, read_inbound_context
from store.merge import merge_customers
from store.messages import Outbound, apply_delivery, find_by_provider_id, replies_to, write_outbound
from store.models import ChannelIdentity, Conversation, Customer, Message
from store.reachability import record_reachable, record_refusal

log = logging.getLogger(__name__)
INTENT_PAYLOAD = "intent:"
# Payloads a channel makes up itself rather than carrying a pressed button (Telegram's /start): nothing to check.
SYNTHETIC_PAYLOADS = frozenset({"intent:greet"})


@dataclass(frozen=True)
class InboundResult:
    """What happened to one inbound message: its row, whether it was a repeat, the replies queued."""

    message_id: int
    duplicate: bool
    conversation_id: int
    customer_id: int
    reply_ids: tuple[int, ...] = field(default=())
    # The reply rows themselves, as written (loaded, usable after the commit): a caller that shows them (the web
    # chat API) needs no second transaction to read back what was just written.
    replies: tuple[Message, ...] = field(default=(), compare=False)


# Checks a channel makes in the message's own transaction before anything is recorded (the web chat: the session
# exists; its language). It gets what was read for the message (None: a new address) and returns the message to
# handle, or raises to refuse it with nothing stored.
Prepare = Callable[[Session, InboundMessage, InboundContext | None], InboundMessage]


class Pipeline:
    def __init__(
        self,
        database: Database,
        interpreter: Interpreter,
        settings: Settings,
        clock: Clock,
        routes: list[Route] = ROUTES,
        on_outbox: Callable[[], None] | None = None,
        current_settings: Callable[[], Settings] | None = None,
    ) -> None:
        self.database = database
        self.interpreter = interpreter
        self.settings = settings
        # The settings handlers answer with: config's, with the FAQ and reply texts edited in the console laid over
        # (handlers/knowledge_live.Knowledge.settings, current within a second across replicas).
        self.current_settings = current_settings or (lambda: settings)
        self.clock = clock
        self.routes = routes
        self.on_outbox = on_outbox  # wakes the dispatcher after commit
        self._idle_close = timedelta(minutes=settings.conversation.idle_close_minutes)

    def understand(self, message: InboundMessage) -> Interpretation:
        """Button payloads say what they mean; free text goes to the interpreter.

        Nothing that is not the customer's own words reaches the interpreter: button data (checked against
        what we offered, in the transaction), forwarded texts, and attachments without a caption.
        """
        payload = message.button_payload or ""
        if payload.startswith(INTENT_PAYLOAD) and payload[len(INTENT_PAYLOAD):] in INTENTS:
            return Interpretation(payload[len(INTENT_PAYLOAD):], 1.0, message.language_hint, backend="button")
        if payload:
            return Interpretation("out_of_scope", 0.0, message.language_hint, backend="button")
        if message.forwarded_from is not None:
            return Interpretation("out_of_scope", 0.0, message.language_hint, backend="none (forwarded)")
        if message.has_attachment and not message.text.strip():
            return Interpretation("out_of_scope", 0.0, message.language_hint, backend="none (attachment)")
        # Relative dates ("besok") count from when the customer wrote, not from when we got to it.
        return self.interpreter.interpret(message.text, message.language_hint, message.received_at)

    def handle(self, message: InboundMessage, prepare: Prepare | None = None) -> InboundResult:
        # Understanding is pure CPU: done before the transaction so no lock is held meanwhile.
        interpretation = self.understand(message)
        settings = self.current_settings()  # before the transaction: it may read the database on its own
        now = self.clock.now()
        with self.database.unit_of_work() as session:
            context = read_inbound_context(session, message.channel, message.sender, message.provider_message_id,
                                           now=now)
            if prepare is not None:
                prepared = prepare(session, message, context)
                if prepared.language_hint != message.language_hint:
                    # The hint the message was understood with was not the one that holds (rare: the web chat page
                    # sent no language, or one Sapa does not speak): understood again, as if it had been known.
                    interpretation = self.understand(prepared)
                message = prepared
            if context is not None:
                identity, created = context.identity, False
                earlier = session.get(Message, context.duplicate_of) if context.duplicate_of is not None else None
            else:
                identity, created = get_or_create_identity(
                    session, message.channel, message.sender, now=now,
                    display_name=message.display_name, language_hint=message.language_hint, phone=message.phone,
                )
                earlier = find_by_provider_id(session, message.channel, message.provider_message_id)
            if earlier is not None:
                log.info("duplicate delivery %s/%s ignored", message.channel, earlier.id)
                earlier_replies = tuple(replies_to(session, earlier.id))
                return InboundResult(
                    earlier.id, True, earlier.conversation_id, earlier.customer_id,
                    tuple(r.id for r in earlier_replies), earlier_replies,
                )
            if message.shared_phone:
                link_shared_phone(session, identity, message.shared_phone, now=now)
            customer = get_customer(session, identity.customer_id)
            assert customer is not None, "an identity always points at a customer"
            language = customer.language or interpretation.language or message.language_hint
            if language not in self.settings.languages:
                language = self.settings.default_language
            # The open conversation read with the identity, unless a shared phone just merged customers (and moved
            # conversations).
            known = (context.conversation,) if context is not None and not message.shared_phone else None
            conversation, _ = continue_or_open(
                session, identity, now=now, language=language, idle_close=self._idle_close, current=known
            )
            if message.edit_of is not None:
                # An edit is logged against the message it changes; it is not a new question.
                self._note_arrival(identity, conversation, message, interpretation, now)
                original = find_by_provider_id(session, message.channel, message.edit_of)
                row = Message(**inbound_row(message, conversation.id, customer.id, None, now),
                              edit_of_id=original.id if original else None)
                session.add(row)
                session.flush()
                return InboundResult(row.id, False, conversation.id, customer.id)
            chosen = numbered_choice(session, conversation.id, message.text)
            refused: button_check.ButtonCheck | None = None
            if chosen is not None:
                # The number answers the last message that offered options: current by construction.
                message = replace(message, button_payload=chosen)
                interpretation = self.understand(message)
            elif message.button_payload and message.button_payload not in SYNTHETIC_PAYLOADS:
                checked = button_check.check(session, customer_id=customer.id, channel=message.channel,
                                             payload=message.button_payload, button_of=message.button_of)
                if checked.verdict != "current":
                    # Not a press at all: whatever the data says ("intent:delete_data"), nothing is understood.
                    refused = checked
                    interpretation = Interpretation("out_of_scope", 0.0, message.language_hint, backend="button")
            # The row's id is the Turn's: written at once, without a flush of everything else.
            (row,) = insert_attached(session, Message, [
                inbound_row(message, conversation.id, customer.id, interpretation, now, refused=refused)])
            # The identity's and conversation's changes go with the handlers' in the flush at the commit (or a
            # handler's query's autoflush): one UPDATE per row (issue 18).
            self._note_arrival(identity, conversation, message, interpretation, now)
            replies = self._reply(session, message, customer, identity, conversation, row, interpretation, created,
                                  refused, settings=settings)
            reply_ids = tuple(r.id for r in replies)
            result = InboundResult(row.id, False, conversation.id, customer.id, reply_ids, replies)
        if reply_ids and self.on_outbox is not None:
            self.on_outbox()
        return result

    def record_delivery(self, update: DeliveryUpdate) -> bool:
        """Apply a provider's status report; False if no outbound message has that provider id.

        A failure whose code says the address is dead or the person unsubscribed at the provider is
        recorded on the customer exactly as the same refusal at send time is (store.reachability).
        """
        with self.database.unit_of_work() as session:
            message = apply_delivery(session, update.provider_message_id, update.status, update.error)
            if message is None:
                log.info("status %s for unknown provider message on %s ignored", update.status, update.channel)
                return False
            if message.delivery_status != update.status:
                # Provider callbacks arrive out of order; a status never moves backwards.
                log.info("status %s for message %s on %s ignored: it is already %s", update.status, message.id,
                         update.channel, message.delivery_status)
            if update.status == "failed" and (update.address_dead or update.unsubscribed):
                conversation = session.get_one(Conversation, message.conversation_id)
                identity = session.get_one(ChannelIdentity, conversation.identity_id)
                reason = update.error or "refused by the provider"
                record_refusal(session, identity.channel, identity.address, reason=reason,
                               unsubscribed=update.unsubscribed, now=self.clock.now(),
                               evidence=f"status callback for {update.provider_message_id}: {reason}")
            return True

    def record_reachability(self, update: ReachabilityUpdate) -> bool:
        """A provider says an address stopped or started accepting messages; False if no customer has it."""
        with self.database.unit_of_work() as session:
            if update.reachable:
                identity = record_reachable(session, update.channel, update.address)
            else:
                identity = record_refusal(session, update.channel, update.address, reason=update.reason,
                                          unsubscribed=False, evidence=update.provider_event_id, now=self.clock.now())
            if identity is None:
                log.info("%s reachability update %s for an unknown address ignored", update.channel,
                         update.provider_event_id)
                return False
            log.info("%s address of customer %s marked %s: %s", update.channel, identity.customer_id,
                     "reachable" if update.reachable else "unreachable", update.reason)
            return True

    def _note_arrival(self, identity: ChannelIdentity, conversation: Conversation, message: InboundMessage,
                      interpretation: Interpretation, now: datetime) -> None:
        if interpretation.language in self.settings.languages:
            conversation.language = interpretation.language
        identity.last_inbound_at = now  # on PostgreSQL already written by the lock (store/inbound_context.py)
        if identity.undeliverable_reason is not None:
            identity.undeliverable_reason = None  # they wrote: the address works again
        if message.display_name:
            identity.display_name = message.display_name
        conversation.last_inbound_at = now
        conversation.last_message_at = now

    def _reply(self, session: Session, message: InboundMessage, customer: Customer, identity: ChannelIdentity,
               conversation: Conversation, row: Message, interpretation: Interpretation, created: bool,
               refused: button_check.ButtonCheck | None = None, *, settings: Settings | None = None
               ) -> tuple[Message, ...]:
        # Replies go where the message came from, even if the handler changed the identity (an erasure
        # replaces the address; its confirmation must still reach the person who asked).
        address = identity.address
        turn = Turn(
            customer=customer, identity=identity, conversation=conversation, message=message,
            message_id=row.id, interpretation=interpretation, session=session,
            settings=settings or self.settings, clock=self.clock, is_new_customer=created,
        )
        if refused is not None:
            # A button we never offered, or of an answered question: stored, answered, nothing changed.
            log.info("%s button data on %s ignored: not acted on", refused.verdict, message.channel)
            replies = [button_check.refusal(turn, refused)]
        elif conversation.status in HUMAN_STATUSES:
            # The agent sees every message; the bot still answers what is the customer's right or its job
            # while they wait (STOP, erasure, FAQ...), and notes that answer in the thread.
            relay_to_desk(session, self.settings, conversation, row, now=row.created_at)
            replies = dispatch_while_human(turn)
        else:
            replies = dispatch(turn, self.routes)
        # Variables an approved template may need if the reply has to wait past a session window.
        variables = {"name": customer.name or identity.display_name or "", "company": self.settings.company.name}
        drafts = [Outbound(recipient=address, text=reply.text, reply_to_id=row.id, template_variables=variables,
                           buttons=[{"title": b.title, "payload": b.payload} for b in reply.buttons])
                  for reply in replies]
        # Every reply and its outbox row written directly; what the handlers changed is flushed at the commit.
        written = write_outbound(session, conversation, drafts, now=row.created_at)
        return written


# Interpretations made without the classifier (see Pipeline.understand).
NOT_CLASSIFIED = ("button", "none")


def inbound_row(message: InboundMessage, conversation_id: int, customer_id: int,
                interpretation: Interpretation | None, now: datetime, *,
                refused: button_check.ButtonCheck | None = None) -> dict[str, Any]:
    """The customer's message's column values (store.direct_insert writes them)."""
    meta: dict[str, Any] = {}
    payload = message.button_payload
    if refused is not None:
        # Kept for the log and the agent, but not as a press: it answers no question (handlers/buttons.py).
        meta["button"] = refused.verdict
        meta["button_data"] = (payload or "")[:200]
        payload = None
    # No classifier ran (button data, a forward, a bare attachment): no intent is recorded, not even out_of_scope.
    classified = interpretation is not None and not (
        interpretation.intent == "out_of_scope" and interpretation.backend.startswith(NOT_CLASSIFIED))
    if interpretation is not None:
        # What was understood stays with the message: agents and audits see why the bot answered as it did.
        meta["nlu"] = {"backend": interpretation.backend,
                       "entities": [{"entity": e.entity, "value": e.value, "text": e.text}
                                    for e in interpretation.entities]}
        # Next to it, the tone (score, label, angry, cues): the handoff rules read it, agents and reports can.
        meta["sentiment"] = analyse_sentiment(message.text).as_meta()
    if message.deep_link:
        meta["deep_link"] = message.deep_link
    if message.shared_phone:
        meta["shared_phone"] = message.shared_phone
    if message.location is not None:
        meta["location"] = {"latitude": message.location.latitude, "longitude": message.location.longitude,
                            "name": message.location.name, "address": message.location.address}
    if message.contact is not None:
        meta["contact"] = {"name": message.contact.name, "phone": message.contact.phone, "own": message.contact.own}
    if message.forwarded_from is not None:
        meta["forwarded_from"] = message.forwarded_from
    if message.unsupported is not None:
        meta["unsupported"] = message.unsupported
    return dict(
        conversation_id=conversation_id, customer_id=customer_id, channel=message.channel,
        direction="in", sender="customer", text=message.text, buttons=[],
        media=[{"url": m.url, "content_type": m.content_type, "kind": m.kind, "file_name": m.file_name}
               for m in message.media],
        button_payload=payload,
        intent=interpretation.intent if interpretation and classified else None,
        confidence=interpretation.confidence if interpretation and classified else None,
        language=interpretation.language if interpretation else None,
        provider_message_id=message.provider_message_id, delivery_status="received", meta=meta,
        created_at=now,
    )


def numbered_choice(session: Session, conversation_id: int, text: str) -> str | None:
    """"2" answers the second option of the last message that offered options (SMS, WhatsApp)."""
    stripped = text.strip().rstrip(".")
    if not (stripped.isascii() and stripped.isdigit() and len(stripped) <= 3):  # "²" is a digit to isdigit()
        return None
    last = session.execute(
        select(Message).where(Message.conversation_id == conversation_id, Message.direction == "out")
        .order_by(Message.id.desc()).limit(1)
    ).scalar_one_or_none()
    number = int(stripped)
    if last is None or not last.buttons or not 1 <= number <= len(last.buttons):
        return None
    return str(last.buttons[number - 1]["payload"])


def link_shared_phone(session: Session, identity: ChannelIdentity, phone: str, *, now: datetime) -> None:
    """A customer shared their own phone: join the customer who has it, or take it on."""
    owner = find_customer_by_phone(session, phone)
    if owner is None:
        customer = session.get_one(Customer, identity.customer_id)
        if customer.phone is None:
            customer.phone = phone
    elif owner.id != identity.customer_id:
        merge_customers(session, identity.customer_id, owner.id, now=now, actor="system",
                        reason=f"{identity.channel} contact shared")
        identity.customer_id = owner.id
