"""Service levels: due times when a ticket opens, and the escalation ladder when they pass unmet.

A ticket's tier (regular or VIP) picks its targets from `sla.tiers`; business-hour targets skip nights,
non-working days and `sla.holidays`. Opening a ticket schedules three durable checks (a reminder to the
queue, the first-response deadline, the resolution deadline); answering or resolving cancels them.
The checks themselves run in `handlers/sla_checks.py`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot.business_time import BusinessCalendar, add_wall_minutes
from bot.config import Settings, Tier
from store.conversations import HUMAN_STATUSES, continue_or_open
from store.models import ChannelIdentity, Conversation, Customer, Ticket
from store.tasks import cancel, schedule

CHECK = "sla.check"
CONFIRM = "ticket.confirm_resolution"  # handlers/resolution_check.py asks
CSAT = "survey.csat"  # handlers/surveys.py asks
STAGES = ("warn", "first_response", "resolution")
DONE_STATUSES = ("resolved", "closed")


def calendar(settings: Settings) -> BusinessCalendar:
    hours = settings.sla.business_hours
    return BusinessCalendar.of(settings.company.timezone, hours.days, hours.start, hours.end, settings.sla.holidays)


def tier_of(customer: Customer) -> Tier:
    return "vip" if customer.is_vip else "regular"


def due_times(settings: Settings, tier: Tier, opened_at: datetime) -> tuple[datetime, datetime]:
    """(first response due, resolution due) for a ticket of `tier` opened at `opened_at`."""
    target = settings.sla.tiers[tier]
    if target.business_hours_only:
        days = calendar(settings)
        return days.add(opened_at, target.first_response_minutes), days.add(opened_at, target.resolution_minutes)
    return (add_wall_minutes(opened_at, target.first_response_minutes),
            add_wall_minutes(opened_at, target.resolution_minutes))


def handoff_due(settings: Settings, status: str, vip: bool, since: datetime | None) -> datetime | None:
    """A conversation waiting for a person with no ticket (a plain "I want a person") still has the tier's
    first-response target (sla.tiers: VIPs 30 minutes by the clock, others in business hours), counted from the
    handoff, so a waiting VIP shows its countdown like a ticket would (the console's inbox and dashboard)."""
    if status != "waiting" or since is None:
        return None
    return due_times(settings, "vip" if vip else "regular", since)[0]


def _key(ticket: Ticket, stage: str) -> str:
    # A reopened ticket gets a fresh set of checks: the round (how often it was reopened) is in the key.
    round_ = f"r{ticket.reopened_count}:" if ticket.reopened_count else ""
    return f"sla:{ticket.id}:{round_}{stage}"


def start(session: Session, settings: Settings, ticket: Ticket, customer: Customer, *, now: datetime) -> None:
    """Set the ticket's due times from its customer's tier and schedule its checks."""
    tier = tier_of(customer)
    first_due, resolution_due = due_times(settings, tier, now)
    ticket.first_response_due_at, ticket.resolution_due_at = first_due, resolution_due
    warn_at = now + (first_due - now) * settings.sla.escalation.warn_agents_at
    for stage, due in (("warn", warn_at), ("first_response", first_due), ("resolution", resolution_due)):
        schedule(session, CHECK, due_at=due, now=now, payload={"ticket_id": ticket.id, "stage": stage, "tier": tier},
                 dedupe_key=_key(ticket, stage))


def answered(session: Session, ticket: Ticket, *, now: datetime) -> None:
    """An agent answered: the reminder and the first-response check are not needed any more."""
    cancel(session, [_key(ticket, "warn"), _key(ticket, "first_response")], now=now)


def resolved(session: Session, settings: Settings, ticket: Ticket, *, now: datetime) -> None:
    """Resolved: stop the clock; schedule the customer's confirmation (CRM-3.5) and CSAT survey for this round."""
    cancel(session, [_key(ticket, stage) for stage in STAGES], now=now)
    schedule(session, CONFIRM, now=now, due_at=now + timedelta(minutes=settings.sla.confirm_resolution_after_minutes),
             payload={"ticket_id": ticket.id, "round": ticket.reopened_count},
             dedupe_key=f"confirm:{ticket.id}:r{ticket.reopened_count}")
    schedule(session, CSAT, now=now, due_at=now + timedelta(minutes=settings.surveys.csat_delay_minutes),
             payload={"ticket_id": ticket.id, "round": ticket.reopened_count},
             dedupe_key=f"csat:{ticket.id}:r{ticket.reopened_count}")


_MONTHS = {"id": ("Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des"),
           "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")}


def promised(settings: Settings, moment: datetime, language: str) -> str:
    """A due time as the customer reads it: "23 Nov 14.30 WIB" (id) or "23 Nov 14:30 WIB" (en)."""
    local = moment.astimezone(ZoneInfo(settings.company.timezone))
    month = _MONTHS.get(language, _MONTHS["en"])[local.month - 1]
    clock = local.strftime("%H.%M" if language == "id" else "%H:%M")
    return f"{local.day} {month} {clock} {local.tzname()}"


def follow_up_conversation(
    session: Session, settings: Settings, ticket: Ticket, *, now: datetime
) -> tuple[Conversation, ChannelIdentity, Customer] | None:
    """Where to ask about a ticket after the fact: the complaint's channel, in a current bot conversation.

    None when an agent holds the conversation right now: the bot does not interrupt them.
    """
    assert ticket.conversation_id is not None
    earlier = session.get_one(Conversation, ticket.conversation_id)
    identity = session.get_one(ChannelIdentity, earlier.identity_id)
    customer = session.get_one(Customer, ticket.customer_id)
    found = follow_up_on(session, settings, identity, customer, language=earlier.language, now=now)
    return None if found is None else (found, identity, customer)


def follow_up_on(session: Session, settings: Settings, identity: ChannelIdentity, customer: Customer, *,
                 language: str | None, now: datetime) -> Conversation | None:
    """A current bot conversation on `identity` for a message the bot starts (a check, a survey).

    None when an agent holds the conversation right now: the bot does not interrupt them.
    """
    language = customer.language or language or settings.default_language
    conversation, _ = continue_or_open(session, identity, now=now, language=language,
                                       idle_close=timedelta(minutes=settings.conversation.idle_close_minutes))
    if conversation.status in HUMAN_STATUSES:
        return None
    conversation.last_message_at = now
    return conversation
