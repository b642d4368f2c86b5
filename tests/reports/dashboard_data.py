"""A small, fully known fortnight of service for the dashboard's tests, written straight into the database.

Relative to `now` (days are the company's, Asia/Jakarta): the last 7 completed days are the dashboard's default
period, the 7 before them the comparison. Every SLA due time is hours away from `now`, so the verdicts are the same
for the test's clock and for `sapa report` run a few seconds later with the system clock.

Current period (tickets opened in it):
- TKT Budi (web chat, Rina): complaint damaged_item / courier, answered in 60 min (met), resolved in 300 min (met).
  CSAT 5.
- TKT Wati, VIP gold (WhatsApp, Sari): complaint damaged_item / packaging, answered after 120 min, due 30 (breached),
  resolved after 360 min, due 240 (breached); escalated to level 1. CSAT 2 (a low score). NPS 3 (a VIP detractor).
- TKT Joko (SMS, nobody): request, never answered, due long past (breached both); escalated to level 2.
- TKT Ani (Telegram, Rina), opened yesterday evening: first response due in 5 hours (pending).
Previous period: TKT Dodi (web chat, Rina) answered in 30 min, resolved in 120 (met). CSAT 4. NPS 10.
Now: Sri waits in the queue with an open complaint whose first response was due an hour ago (breached).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from store.models import Agent, ChannelIdentity, Conversation, Customer, Message, Survey, Ticket, TicketEvent

WIB = ZoneInfo("Asia/Jakarta")


@dataclass
class Seeded:
    now: datetime
    first: datetime  # the default period's first local day, 00:00
    tickets: dict[str, int]  # customer name -> their ticket id
    conversations: dict[str, int]  # customer name -> conversation id
    agents: dict[str, int]


def _day(now: datetime, days_ago: int, hour: int) -> datetime:
    today = now.astimezone(WIB).date()
    return datetime.combine(today - timedelta(days=days_ago), time(hour), WIB)


def seed(session: Session, now: datetime) -> Seeded:
    agents = {}
    for name, role in (("Rina", "customer_service"), ("Sari", "customer_service")):
        agent = Agent(name=name, role=role, created_at=now - timedelta(days=30), availability="online",
                      availability_changed_at=now - timedelta(hours=1), last_seen_at=now - timedelta(minutes=2),
                      password_hash="x", email=f"{name.lower()}@contoh.example")
        session.add(agent)
        session.flush()
        agents[name] = agent.id
    tickets: dict[str, int] = {}
    conversations: dict[str, int] = {}

    def person(name: str, channel: str, *, vip: bool = False) -> tuple[Customer, ChannelIdentity]:
        customer = Customer(name=name, is_vip=vip, vip_tier="gold" if vip else None, source=channel,
                            created_at=now - timedelta(days=60), updated_at=now - timedelta(days=60))
        session.add(customer)
        session.flush()
        identity = ChannelIdentity(customer_id=customer.id, channel=channel, address=f"{channel}-{name}",
                                   created_at=customer.created_at)
        session.add(identity)
        session.flush()
        return customer, identity

    def chat(name: str, channel: str, opened: datetime, *, vip: bool = False, agent: str | None = None,
             replies: list[int] | None = None, status: str = "closed", handed_off: bool = True) -> Conversation:
        customer, identity = person(name, channel, vip=vip)
        conversation = Conversation(customer_id=customer.id, identity_id=identity.id, channel=channel, status=status,
                                    owner_agent_id=agents[agent] if agent else None, language="id",
                                    opened_at=opened, last_message_at=opened, handed_off_at=opened if handed_off
                                    else None, closed_at=opened + timedelta(hours=8) if status == "closed" else None)
        session.add(conversation)
        session.flush()
        conversations[name] = conversation.id
        session.add(Message(conversation_id=conversation.id, customer_id=customer.id, channel=channel, direction="in",
                            sender="customer", text="halo, saya mau komplain", created_at=opened))
        session.add(Message(conversation_id=conversation.id, customer_id=customer.id, channel=channel,
                            direction="out", sender="bot", text="Baik, kami bantu.", created_at=opened))
        for minutes in replies or []:
            session.add(Message(conversation_id=conversation.id, customer_id=customer.id, channel=channel,
                                direction="out", sender="agent", agent_id=agents[agent] if agent else None,
                                text="Maaf, kami cek.", created_at=opened + timedelta(minutes=minutes)))
        session.add(Message(conversation_id=conversation.id, customer_id=customer.id, channel=channel, direction="note",
                            sender="agent", text="catatan", created_at=opened))  # a note: never counted
        return conversation

    def ticket(name: str, conversation: Conversation, opened: datetime, *, kind: str = "complaint",
               category: str | None = "damaged_item", root_cause: str | None = None, agent: str | None = None,
               fr_due: float, res_due: float, answered: float | None, resolved: float | None) -> Ticket:
        item = Ticket(customer_id=conversation.customer_id, conversation_id=conversation.id, kind=kind,
                      status="resolved" if resolved is not None else "open", category=category,
                      root_cause=root_cause, subject=f"{name}'s {kind}",
                      assigned_agent_id=agents[agent] if agent else None,
                      first_response_due_at=opened + timedelta(minutes=fr_due),
                      resolution_due_at=opened + timedelta(minutes=res_due),
                      first_responded_at=opened + timedelta(minutes=answered) if answered is not None else None,
                      resolved_at=opened + timedelta(minutes=resolved) if resolved is not None else None,
                      created_at=opened, updated_at=opened)
        session.add(item)
        session.flush()
        tickets[name] = item.id
        return item

    def survey(kind: str, item: Ticket, conversation: Conversation, score: int, at: datetime, tier: str,
               agent: str | None, comment: str | None = None) -> None:
        session.add(Survey(kind=kind, customer_id=conversation.customer_id,
                           ticket_id=item.id if kind == "csat" else None,
                           conversation_id=conversation.id, agent_id=agents[agent] if agent else None,
                           channel=conversation.channel, category=item.category if kind == "csat" else None,
                           tier=tier, status="answered", score=score, comment=comment, asked_at=at, answered_at=at))

    def escalate(item: Ticket, at: datetime, level: int) -> None:
        item.escalation_level = level
        session.add(TicketEvent(ticket_id=item.id, kind="escalated", detail={"level": level}, created_at=at))

    budi_at = _day(now, 5, 9)
    budi = chat("Budi", "webchat", budi_at, agent="Rina", replies=[60, 200])
    budi_ticket = ticket("Budi", budi, budi_at, root_cause="courier", agent="Rina", fr_due=240, res_due=1440,
                         answered=60, resolved=300)
    survey("csat", budi_ticket, budi, 5, budi_at + timedelta(hours=6), "regular", "Rina")

    wati_at = _day(now, 4, 10)
    wati = chat("Wati", "whatsapp", wati_at, vip=True, agent="Sari", replies=[120])
    wati_ticket = ticket("Wati", wati, wati_at, root_cause="packaging", agent="Sari", fr_due=30, res_due=240,
                         answered=120, resolved=360)
    escalate(wati_ticket, wati_at + timedelta(minutes=31), 1)
    survey("csat", wati_ticket, wati, 2, wati_at + timedelta(hours=7), "vip", "Sari", "lama sekali")
    survey("nps", wati_ticket, wati, 3, wati_at + timedelta(hours=8), "vip", "Sari")

    joko_at = _day(now, 3, 11)
    joko = chat("Joko", "sms", joko_at, status="waiting")
    joko_ticket = ticket("Joko", joko, joko_at, kind="request", category="invoice", fr_due=240, res_due=1440,
                         answered=None, resolved=None)
    escalate(joko_ticket, joko_at + timedelta(hours=5), 2)

    ani_at = _day(now, 1, 20)
    ani = chat("Ani", "telegram", ani_at, agent="Rina", status="with_agent")
    ticket("Ani", ani, ani_at, agent="Rina",
           fr_due=(now - ani_at).total_seconds() / 60 + 300, res_due=(now - ani_at).total_seconds() / 60 + 1440,
           answered=None, resolved=None)

    dodi_at = _day(now, 10, 9)
    dodi = chat("Dodi", "webchat", dodi_at, agent="Rina", replies=[30])
    dodi_ticket = ticket("Dodi", dodi, dodi_at, root_cause="courier", agent="Rina", fr_due=240, res_due=1440,
                         answered=30, resolved=120)
    survey("csat", dodi_ticket, dodi, 4, dodi_at + timedelta(hours=3), "regular", "Rina")
    survey("nps", dodi_ticket, dodi, 10, dodi_at + timedelta(hours=4), "regular", "Rina")

    sri_at = now - timedelta(hours=3)
    sri = chat("Sri", "whatsapp", sri_at, status="waiting")
    ticket("Sri", sri, sri_at, fr_due=120, res_due=1440, answered=None, resolved=None)

    session.flush()
    return Seeded(now=now, first=_day(now, 7, 0), tickets=tickets, conversations=conversations, agents=agents)


def expected_counts() -> dict[str, Any]:
    """What the default period holds, worked out from the timeline above."""
    return {"tickets_opened": 4, "fr_breached": 2, "res_breached": 2, "escalations": 2}
