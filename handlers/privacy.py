"""The customer's own data (CRM-1.3, CRM-1.5): profile changes with confirmation, and erasure on request.

Both ask before acting: a change or an erasure happens only after an explicit yes (button, "1", or a
yes in words), and both are written to the audit log.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import func, select

from handlers import sla
from handlers.desk import ticket_reference
from handlers.turn import Button, Reply, Route, Turn
from store.audit import record
from store.consents import current as current_consent
from store.customers import find_customer_by_phone
from store.messages import add_desk_post
from store.models import ChannelIdentity, Message, Ticket, TicketEvent
from store.privacy import erase_customer

ERASE_QUESTION = "erasure_confirm"
ERASE_PAYLOAD = "erase:"
PROFILE_QUESTION = "profile_confirm"
PROFILE_PAYLOAD = "profile:"
# Entity -> the customer field it changes, in the order we look for them.
PROFILE_FIELDS = {"email": "email", "phone": "phone", "person_name": "name"}


def _yes_no(turn: Turn, prefix: str) -> tuple[Button, Button]:
    return (turn.button("button_yes", f"{prefix}yes"), turn.button("button_no", f"{prefix}no"))


# --- one way to confirm: a yes/no button while the question is open, or yes/no in words --------------

Act = Callable[[Turn, bool], list[Reply]]


def by_button(prefix: str, question: str, act: Act) -> Callable[[Turn], list[Reply] | None]:
    def handler(turn: Turn) -> list[Reply] | None:
        verdict = (turn.message.button_payload or "")[len(prefix):]
        if verdict not in ("yes", "no") or turn.conversation.pending_question != question:
            return None  # a button of an old question does not act
        return act(turn, verdict == "yes")
    return handler


def in_words(act: Act, *, yes: tuple[str, ...] = ("affirm",)) -> Callable[[Turn], list[Reply] | None]:
    def handler(turn: Turn) -> list[Reply] | None:
        if turn.interpretation.intent in yes:
            return act(turn, True)
        if turn.interpretation.intent == "deny":
            return act(turn, False)
        turn.clear_question()  # something else: the question lapses and the message is routed as usual
        return None
    return handler


# --- erasure ---------------------------------------------------------------------------------------

def ask_erasure(turn: Turn) -> list[Reply]:
    turn.ask(ERASE_QUESTION)
    return [turn.reply("erasure_confirm", name=turn.customer.name or "", buttons=_yes_no(turn, ERASE_PAYLOAD))]


def _erase(turn: Turn, confirmed: bool) -> list[Reply]:
    turn.clear_question()
    if not confirmed:
        return [turn.reply("erasure_cancelled")]
    now = turn.clock.now()
    erase_customer(turn.session, turn.customer.id, now=now, actor=f"customer:{turn.customer.id}",
                   reason=f"requested on {turn.message.channel}")
    return [turn.reply("erasure_done")]


# --- profile changes -------------------------------------------------------------------------------

def ask_profile_change(turn: Turn) -> list[Reply]:
    for entity_name, field in PROFILE_FIELDS.items():
        entity = turn.interpretation.entity(entity_name)
        if entity is not None:
            turn.ask(PROFILE_QUESTION, {"field": field, "value": str(entity.value)})
            return [turn.reply("profile_confirm", field=turn.text(f"field_{field}"), value=str(entity.value),
                               buttons=_yes_no(turn, PROFILE_PAYLOAD))]
    return [turn.reply("profile_how", name=turn.customer.name or "")]


def _change(turn: Turn, confirmed: bool) -> list[Reply]:
    data = dict(turn.conversation.pending_data)
    turn.clear_question()
    field, value = str(data.get("field") or ""), str(data.get("value") or "")
    if not confirmed or field not in PROFILE_FIELDS.values() or not value:
        return [turn.reply("profile_unchanged")]
    if field == "phone":
        owner = find_customer_by_phone(turn.session, value)
        if owner is not None and owner.id != turn.customer.id:
            # Another customer holds that number: an agent must decide whether they are the same person.
            return [turn.reply("profile_phone_taken", buttons=(turn.button("button_agent", "intent:talk_to_agent"),))]
    old = getattr(turn.customer, field)
    setattr(turn.customer, field, value)
    turn.customer.updated_at = turn.clock.now()
    record(turn.session, actor=f"customer:{turn.customer.id}", action="customer.update", subject_type="customer",
           subject_id=turn.customer.id, now=turn.clock.now(),
           detail={"field": field, "had_value": old is not None, "channel": turn.message.channel})
    return [turn.reply("profile_changed", field=turn.text(f"field_{field}"), value=value)]


# --- a copy of one's own data ------------------------------------------------------------------------
# No NLU intent covers it (the classifier would call it delete_data or ask_info, both wrong), so the
# request is recognised by its words; it changes nothing until the customer says yes.

EXPORT_QUESTION = "export_confirm"
EXPORT_PAYLOAD = "export:"
EXPORT_CATEGORY = "data_export"
_EXPORT_WORDS = re.compile(
    r"\b(salinan|copy|kopi|ekspor|export|unduh|download|akses|access)\b.{0,40}\bdata\b"
    r"|\bdata\b.{0,30}\b(saya|aku|gue|gw|my|me)\b.{0,30}"
    r"\b(apa saja|apa aja|salinan|ekspor|export|copy|unduh|download)\b"
    r"|\bwhat data\b.{0,30}\b(hold|have|keep|store)\b",
    re.IGNORECASE,
)


def asks_for_copy(turn: Turn) -> bool:
    text = turn.message.text
    return (not turn.message.button_payload and turn.message.forwarded_from is None
            and _EXPORT_WORDS.search(text) is not None and not re.search(r"\b(hapus|delete|erase)\b", text, re.I))


def ask_export(turn: Turn) -> list[Reply]:
    turn.ask(EXPORT_QUESTION)
    return [turn.reply("export_confirm", buttons=_yes_no(turn, EXPORT_PAYLOAD))]


def _summary(turn: Turn) -> str:
    customer, session = turn.customer, turn.session
    english = turn.language == "en"
    parts = [f"{'name' if english else 'nama'} {customer.name}" if customer.name else "",
             f"{'phone' if english else 'telepon'} {customer.phone}" if customer.phone else "",
             f"email {customer.email}" if customer.email else ""]
    channels = session.execute(select(ChannelIdentity.channel).where(
        ChannelIdentity.customer_id == customer.id)).scalars().all()
    messages = session.execute(select(func.count(Message.id)).where(Message.customer_id == customer.id)).scalar_one()
    tickets = session.execute(select(func.count(Ticket.id)).where(Ticket.customer_id == customer.id)).scalar_one()
    marketing = current_consent(session, customer.id, "marketing")
    consent = {True: ("promo: ya", "promotions: yes"), False: ("promo: tidak", "promotions: no"),
               None: ("promo: belum ditanyakan", "promotions: not asked")}[marketing][english]
    parts += [f"{'channels' if english else 'saluran'} {', '.join(sorted(set(channels)))}",
              f"{messages} {'messages' if english else 'pesan'}", f"{tickets} {'tickets' if english else 'tiket'}",
              consent]
    return "; ".join(p for p in parts if p)


def _export(turn: Turn, confirmed: bool) -> list[Reply]:
    turn.clear_question()
    if not confirmed:
        return [turn.reply("export_cancelled")]
    now, customer, settings = turn.clock.now(), turn.customer, turn.settings
    ticket = Ticket(customer_id=customer.id, conversation_id=turn.conversation.id, kind="request", status="open",
                    priority=1 if customer.is_vip else 0, category=EXPORT_CATEGORY,
                    subject="Data export requested by the customer (UU PDP)",
                    description=f"The customer asked on {turn.message.channel} for a copy of their personal data. "
                                f"Send it with `sapa customers export {customer.id}` through a verified channel.",
                    created_at=now, updated_at=now)
    turn.session.add(ticket)
    turn.session.flush()
    sla.start(turn.session, settings, ticket, customer, now=now)
    turn.session.add(TicketEvent(ticket_id=ticket.id, kind="opened", created_at=now,
                                 detail={"channel": turn.message.channel, "message_id": turn.message_id}))
    record(turn.session, actor=f"customer:{customer.id}", action="customer.export_requested", subject_type="customer",
           subject_id=customer.id, now=now, detail={"channel": turn.message.channel, "ticket": ticket.id})
    if settings.slack.enabled:
        add_desk_post(turn.session, recipient=settings.slack.operations_channel or settings.slack.queue_channel,
                      now=now, conversation_id=turn.conversation.id,
                      text=f"🔐 *Data export {ticket_reference(ticket.id)}* for customer #{customer.id}: "
                           f"run `sapa customers export {customer.id}` and send it through a verified channel.")
    assert ticket.resolution_due_at is not None
    return [turn.reply("export_started", summary=_summary(turn), ticket=ticket_reference(ticket.id),
                       due=sla.promised(settings, ticket.resolution_due_at, turn.language))]


ROUTES = [
    Route(by_button(EXPORT_PAYLOAD, EXPORT_QUESTION, _export), payload_prefix=EXPORT_PAYLOAD),
    Route(in_words(_export), pending=EXPORT_QUESTION),
    Route(ask_export, when=asks_for_copy),
    Route(by_button(ERASE_PAYLOAD, ERASE_QUESTION, _erase), payload_prefix=ERASE_PAYLOAD),
    Route(in_words(_erase, yes=("affirm", "delete_data")), pending=ERASE_QUESTION),
    Route(by_button(PROFILE_PAYLOAD, PROFILE_QUESTION, _change), payload_prefix=PROFILE_PAYLOAD),
    Route(in_words(_change), pending=PROFILE_QUESTION),
]
INTENT_ROUTES = [Route(ask_erasure, intent="delete_data"), Route(ask_profile_change, intent="update_profile")]
