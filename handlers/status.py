"""check_status: the customer's open tickets and where each stands, in plain words (CRM-2.5, VIP-3.3).

Sapa holds tickets, not the order system. A status question about an order or parcel whose number
(order id, invoice or courier tracking number: `nlu.entities` `order_id`) is on none of the customer's
open tickets is not answered "you have no open tickets": the number is recorded and someone who can
look it up is asked to.

- Said calmly ("cek resi JP1234567890 dong", "pesanan INV-2026-00123 udah sampai mana?"): a request
  ticket for operations, category `delivery` (handlers/requests.py: card, reminders, SLA), with the
  number among its details; the customer is told the number is being checked and by when.
- Said with impatience (time gone by: "udah seminggu", "sudah 5 hari", "berhari-hari", "already 10
  days"; "kok belum", "masih belum", "belum juga", "lama banget", "still not"; "!!" or "??"; or a
  negative or angry tone from `nlu.sentiment`): a late delivery is a complaint (handlers/complaints.py:
  ticket, acknowledgement, handoff), category `late_delivery`, the number in its details.

A number already on an open ticket gets that ticket's status. Without a number, the open tickets are
listed, or the customer hears there are none and is offered an agent, who can look the order up. While a
person holds the conversation (handlers/waiting.py) an unknown number is left to them: no second ticket.
"""

from __future__ import annotations

from sqlalchemy import bindparam, func, or_, select

from handlers import sla
from handlers.complaints import open_complaint
from handlers.desk import ticket_reference
from handlers.requests import open_request
from handlers.turn import Reply, Route, Turn
from nlu.normalise import words
from nlu.sentiment import analyse
from store.conversations import HUMAN_STATUSES
from store.models import Ticket

# Resolved tickets stay in the answer for a while: "it was solved yesterday" is a status too.
SHOWN = ("open", "in_progress", "waiting", "resolved")
OPEN = ("open", "in_progress", "waiting")
DELIVERY = "delivery"  # the request category of an order to check
LATE_DELIVERY = "late_delivery"  # the complaint category (config complaints.categories has its root cause)

# Impatience, in normalised words ("udh" is "sudah", "blm" "belum", "nyampe2" "sampai sampai").
_WAITED = frozenset("seminggu sebulan berhari berhari-hari berminggu berminggu-minggu berbulan".split())
_UNITS = frozenset("hari minggu bulan jam day days week weeks month months hours".split())
_COUNTS = frozenset("dua tiga empat lima enam tujuh delapan sembilan sepuluh beberapa a two three four five six "
                    "seven eight nine ten several".split())
_SINCE = frozenset("sudah lebih selama hampir already for after over".split())
_IMPATIENT_PAIRS = frozenset({
    ("kok", "belum"), ("kok", "tidak"), ("masih", "belum"), ("belum", "juga"), ("lama", "banget"),
    ("lama", "sekali"), ("lama", "amat"), ("sampai", "sampai"), ("still", "not"), ("still", "no"),
    ("still", "hasn't"), ("still", "haven't"), ("still", "waiting"), ("so", "long"), ("too", "long"),
})
_IMPATIENT_WORDS = frozenset("kelamaan lambat ages".split())


def impatient(text: str) -> bool:
    """The customer has waited too long and says so: time gone by, "kok belum", "!!", or an upset tone."""
    if "!!" in text or "??" in text or "?!" in text or "!?" in text:
        return True
    said = words(text)
    if _WAITED.intersection(said) or _IMPATIENT_WORDS.intersection(said):
        return True
    if any(pair in _IMPATIENT_PAIRS for pair in zip(said, said[1:], strict=False)):
        return True
    # "sudah 5 hari", "already 10 days", "for two weeks" (not "2 hari lalu": when it was ordered)
    if any(since in _SINCE and (count.isdigit() or count in _COUNTS) and unit in _UNITS
           for since, count, unit in zip(said, said[1:], said[2:], strict=False)):
        return True
    tone = analyse(text)
    return tone.angry or tone.label == "negative"


# The columns a status line shows, not whole tickets (no ORM objects to build for a reply), built once.
_SHOWN_TICKETS = (
    select(Ticket.id, Ticket.kind, Ticket.subject, Ticket.status, Ticket.escalation_level, Ticket.first_responded_at,
           Ticket.first_response_due_at, Ticket.resolution_due_at)
    .where(Ticket.customer_id == bindparam("customer_id"), Ticket.status.in_(SHOWN))
    .order_by(Ticket.id.desc()).limit(5)
)


def ticket_lines(turn: Turn) -> list[dict[str, str]]:
    tickets = turn.session.execute(_SHOWN_TICKETS, {"customer_id": turn.customer.id})
    lines = []
    for ticket in tickets:
        escalated = ticket.escalation_level > 0 and ticket.status != "resolved"
        due = ticket.resolution_due_at if ticket.first_responded_at else ticket.first_response_due_at
        lines.append({
            "ref": ticket_reference(ticket.id), "kind": ticket.kind, "subject": ticket.subject[:60],
            "status": "escalated" if escalated else ticket.status,
            "due": sla.promised(turn.settings, due, turn.language) if due and ticket.status != "resolved" else "",
        })
    return lines


def numbers_asked_about(turn: Turn) -> list[str]:
    """The order, invoice and tracking numbers in the message, as written."""
    return [str(entity.value) for entity in turn.interpretation.entities if entity.entity == "order_id"]


def _on_an_open_ticket(turn: Turn, numbers: list[str]) -> bool:
    found = turn.session.execute(
        select(Ticket.id).where(
            Ticket.customer_id == turn.customer.id, Ticket.status.in_(OPEN),
            or_(*(func.lower(Ticket.description).contains(number.lower(), autoescape=True) for number in numbers)),
        ).limit(1)
    ).first()
    return found is not None


def check_status(turn: Turn) -> list[Reply] | None:
    numbers = numbers_asked_about(turn)
    if numbers and not _on_an_open_ticket(turn, numbers):
        if turn.conversation.status in HUMAN_STATUSES:
            return None  # a person is taking the conversation (handlers/waiting.py): theirs to look up
        if impatient(turn.message.text):
            return open_complaint(turn, category=LATE_DELIVERY)
        template = "status_order_check"
        return open_request(turn, category=DELIVERY, template=template, number=", ".join(numbers))
    lines = ticket_lines(turn)
    if not lines:
        return [turn.reply("status_none", name=turn.customer.name or "",
                           buttons=(turn.button("button_agent", "intent:talk_to_agent"),))]
    return [turn.reply("status_list", name=turn.customer.name or "", tickets=lines)]


ROUTES = [Route(check_status, intent="check_status")]
