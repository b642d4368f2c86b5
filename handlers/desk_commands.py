"""`/sapa` in Slack: look customers and tickets up, flag VIPs, see the queue."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.config import Settings
from handlers import broadcasts, loyalty, vip
from handlers.customer_lookup import find_customers_by_key, number
from handlers.desk import OPEN_TICKET, agent_for, set_availability, ticket_reference
from handlers.desk_slack import take_over
from handlers.permissions import can
from handlers.requests import request_command
from handlers.slack_text import escape_slack
from store.consents import current
from store.duplicates import CustomerBrief, DuplicatePair, dismiss, duplicates_of, find_duplicates
from store.inbox import QueueFilters, queue
from store.merge import merge_customers
from store.models import Agent, ChannelIdentity, Conversation, Customer, Message, Ticket, TicketEvent
from store.transactions import history

HELP = (
    "*/sapa* commands:\n"
    "• `customer PHONE_OR_NAME` profile, VIP status, last interactions, open tickets\n"
    "• `vip add CUSTOMER REASON` / `vip remove CUSTOMER REASON` (account managers, supervisors)\n"
    "• `merge DUPLICATE KEEP [reason]` — fold a duplicate customer into the one to keep\n"
    "• `duplicates` records that look like one person · `duplicates dismiss A B` — they are two people\n"
    "• `ticket TKT-000123 category NAME` / `ticket TKT-000123 rootcause TEXT` — confirm or correct a ticket\n"
    "• `ticket TKT-000123` a ticket and its history\n"
    "• `ticket TKT-000123 take` / `ticket TKT-000123 done NOTE` take or finish a request (the customer is told)\n"
    "• `queue` conversations waiting for an agent, VIPs first, then oldest\n"
    "• `takeover CONVERSATION` take over a conversation another agent holds (supervisors, management; "
    "both agents are told)\n"
    "• `online` / `away` whether you are there to answer (the web console shows it; customers are told honestly "
    "when nobody is)"
)
ECHO = 200  # characters of a command quoted back to the agent


def _quoted(text: str) -> str:
    """What the agent typed, for an answer: shortened and made inert (no ping, no broken code span)."""
    short = text if len(text) <= ECHO else text[: ECHO - 1] + "…"
    return escape_slack(short.replace("`", "'"))


def run_command(session: Session, settings: Settings, *, slack_user: str, text: str, now: datetime) -> str:
    agent = agent_for(session, slack_user)
    if agent is None:
        return "You are not a registered Sapa agent. Ask a supervisor to add you to slack.agents in config.yml."
    words = text.split()
    if not words or words[0] == "help":
        return HELP
    verb, rest = words[0].lower(), words[1:]
    if verb == "customer" and rest:
        return _customer(session, settings, " ".join(rest))
    if verb == "vip" and len(rest) >= 3 and rest[0] in ("add", "remove"):
        return _vip(session, agent, rest[0] == "add", rest[1], " ".join(rest[2:]), now)
    if verb == "ticket" and len(rest) == 1:
        return _ticket(session, settings, rest[0])
    if verb == "ticket" and len(rest) >= 2 and rest[1].lower() in ("take", "done"):
        return request_command(session, settings, agent, rest[0], rest[1].lower(), " ".join(rest[2:]), now)
    if verb == "ticket" and len(rest) >= 3 and rest[1].lower() in ("category", "rootcause"):
        return _classify(session, settings, agent, rest[0], rest[1].lower(), "_".join(rest[2:]).lower(), now)
    if verb == "queue":
        return _queue(session, agent, now)
    if verb in ("online", "away") and not rest:
        set_availability(session, agent, verb, now=now)
        return f"You are {verb}." + (" Customers are told a person answers as soon as one is available while "
                                     "nobody is online." if verb == "away" else "")
    if verb == "takeover" and len(rest) == 1:
        return _takeover(session, settings, agent, rest[0], now)
    if verb == "merge" and len(rest) >= 2:
        return _merge(session, agent, rest[0], rest[1], " ".join(rest[2:]) or "duplicate", now)
    if verb == "duplicates" and not rest:
        return _duplicates(session, agent)
    if verb == "duplicates" and len(rest) == 3 and rest[0].lower() == "dismiss":
        return _dismiss(session, agent, rest[1], rest[2], now)
    if verb in ("points", "redeem", "rewards"):  # CRM-4.2 (handlers/loyalty.py)
        return loyalty.slack_command(session, settings, agent, verb, rest, now)
    if verb in ("broadcast", "segment"):  # CRM-4.1 / CRM-4.3 (handlers/broadcasts.py)
        return broadcasts.slack_command(session, settings, agent, verb, rest, now)
    return f"I did not understand `{_quoted(text)}`.\n{HELP}"


def _classify(session: Session, settings: Settings, agent: Agent, key: str, field: str, value: str,
              now: datetime) -> str:
    """CRM-3.2: an agent confirms or corrects a ticket's category or root cause; the change is logged."""
    ticket_id = number(key)
    ticket = session.get(Ticket, ticket_id) if ticket_id is not None else None
    if ticket is None:
        return f"No ticket `{_quoted(key)}`."
    if not re.fullmatch(r"[a-z0-9_]{1,60}", value):
        return "Use a short name of a-z, 0-9 and _ (e.g. courier_delay)."
    if field == "category" and value not in settings.complaints.categories and value != "other":
        return f"Unknown category `{value}`; known: {', '.join(settings.complaints.categories)}, other."
    column = "category" if field == "category" else "root_cause"
    before = getattr(ticket, column)
    setattr(ticket, column, value)
    ticket.updated_at = now
    session.add(TicketEvent(ticket_id=ticket.id, kind=f"{column}_set", agent_id=agent.id,
                            detail={"from": before, "to": value, "by": agent.name}, created_at=now))
    return f"{ticket_reference(ticket.id)}: {column.replace('_', ' ')} {before or '-'} → {value} (by {agent.name})"


def _merge(session: Session, agent: Agent, source_key: str, target_key: str, reason: str, now: datetime) -> str:
    """CRM-1.4: `/sapa merge #A #B` folds duplicate A into B; every message, ticket and survey moves along."""
    if not can(agent.role, "customer.merge"):
        return "Only customer service, account managers, supervisors and management can merge customers."
    sources, targets = find_customers_by_key(session, source_key), find_customers_by_key(session, target_key)
    if len(sources) != 1 or len(targets) != 1:
        return f"`{source_key}` and `{target_key}` must each match exactly one customer; use a phone number or #id."
    source, target = sources[0], targets[0]
    if source.id == target.id:
        return "Those are the same customer."
    merged = merge_customers(session, source.id, target.id, now=now, actor=f"agent:{agent.id}",
                             reason=f"{reason} (by {agent.name})")
    return (f"Merged #{source.id} into #{merged.id} {escape_slack(merged.name or '-')}: their channels, conversations, "
            f"tickets and surveys are now on #{merged.id}.")


DUPLICATES_SHOWN = 20


def _duplicates(session: Session, agent: Agent) -> str:
    """CRM-1.4: records that look like one person, each with the exact merge and dismiss commands."""
    if not can(agent.role, "customer.merge"):
        return "Only customer service, account managers, supervisors and management can see duplicate customers."
    pairs = find_duplicates(session)
    if not pairs:
        return "No possible duplicate customers. 🎉"
    lines = [f"*{len(pairs)} possible duplicate pair{'s' if len(pairs) != 1 else ''}* (strong first):"]
    for pair in pairs[:DUPLICATES_SHOWN]:
        lines.append(f"• {_brief(pair.keep)} ↔ {_brief(pair.duplicate)} — {duplicate_reason(pair)} · "
                     f"{pair.confidence}")
        lines.append(f"    same person: `{pair.merge_command}` · two people: `{pair.dismiss_command}`")
    if len(pairs) > DUPLICATES_SHOWN:
        lines.append(f"…and {len(pairs) - DUPLICATES_SHOWN} more; `sapa customers duplicates` lists them all.")
    return "\n".join(lines)


def _brief(customer: CustomerBrief) -> str:
    return f"#{customer.id} {escape_slack(customer.name or '(name not known)')} ({escape_slack(customer.source)})"


def duplicate_reason(pair: DuplicatePair) -> str:
    """'same phone +6281234567890': the rule and what the two records share."""
    return escape_slack(", ".join(f"{m.label} {m.key}" for m in pair.matches))


def _dismiss(session: Session, agent: Agent, first_key: str, second_key: str, now: datetime) -> str:
    """CRM-1.4: an agent says two flagged records are different people; they are never flagged again."""
    if not can(agent.role, "customer.merge"):
        return "Only customer service, account managers, supervisors and management can dismiss duplicates."
    firsts, seconds = find_customers_by_key(session, first_key), find_customers_by_key(session, second_key)
    if len(firsts) != 1 or len(seconds) != 1:
        return f"`{first_key}` and `{second_key}` must each match exactly one customer; use a phone number or #id."
    first, second = sorted((firsts[0].id, seconds[0].id))
    if first == second:
        return "Those are the same customer."
    if not dismiss(session, first, second, by=agent.name, actor=f"agent:{agent.id}", now=now):
        return f"#{first} and #{second} were already marked as different people."
    return f"Noted: #{first} and #{second} are different people; they will not be listed as duplicates again."


def _local(settings: Settings, when: datetime | None) -> str:
    return when.astimezone(settings.tz).strftime("%d %b %Y %H:%M") if when else "-"


def _customer(session: Session, settings: Settings, key: str) -> str:
    found = find_customers_by_key(session, key)
    if not found:
        return f"No customer matches `{key}`."
    lines = []
    for customer in found[:3]:
        channels = ", ".join(i.channel for i in session.execute(
            select(ChannelIdentity).where(ChannelIdentity.customer_id == customer.id)).scalars())
        vip = f"⭐ VIP ({customer.vip_tier or 'vip'})" if customer.is_vip else "regular"
        lines.append(f"*#{customer.id} {escape_slack(customer.name or '(name not known)')}* — {vip}")
        lines.append(f"phone {escape_slack(customer.phone or '-')} · email {escape_slack(customer.email or '-')} · "
                     f"language {escape_slack(customer.language or '-')} · channels {channels or '-'}")
        lines.append(f"consent: {consent_line(session, customer.id)} · purchases: "
                     f"{purchases_line(session, customer.id, settings)}")
        for pair in duplicates_of(session, customer.id):
            other = pair.other(customer.id)
            lines.append(f"⚠️ possible duplicate of #{other.id}{' ' + escape_slack(other.name) if other.name else ''} "
                         f"({escape_slack(pair.reason)}) · "
                         f"`{pair.merge_command}` or `{pair.dismiss_command}`")
        recent = session.execute(select(Message).where(Message.customer_id == customer.id,
                                                       Message.direction.in_(("in", "out")))
                                 .order_by(Message.id.desc()).limit(3)).scalars()
        for message in recent:
            lines.append(f"  {_local(settings, message.created_at)} {message.channel} {message.sender}: "
                         f"{escape_slack(message.text[:120])}")
        tickets = session.execute(select(Ticket).where(Ticket.customer_id == customer.id,
                                                       Ticket.status.in_(OPEN_TICKET))).scalars()
        for ticket in tickets:
            lines.append(f"  🎫 {ticket_reference(ticket.id)} {ticket.kind} {ticket.status}: "
                         f"{escape_slack(ticket.subject[:80])}")
    if len(found) > 3:
        lines.append(f"…and {len(found) - 3} more; be more specific.")
    return "\n".join(lines)


def _vip(session: Session, agent: Agent, add: bool, key: str, reason: str, now: datetime) -> str:
    if not can(agent.role, "vip.manage"):
        return "Only account managers, supervisors and management can change VIP status."
    found = find_customers_by_key(session, key)
    if len(found) != 1:
        return f"`{key}` matches {len(found)} customers; use a phone number or #id."
    customer = found[0]
    vip.set_by_hand(session, customer, agent, add=add, reason=reason, now=now)
    state = "is now a VIP (strategic)" if add else "is no longer a VIP"
    return (f"#{customer.id} {escape_slack(customer.name or customer.phone or '')} {state}. "
            f"Reason recorded: {reason}")


def _ticket(session: Session, settings: Settings, key: str) -> str:
    ticket_id = number(key)
    ticket = session.get(Ticket, ticket_id) if ticket_id is not None else None
    if ticket is None:
        return f"No ticket `{_quoted(key)}`."
    customer = session.get_one(Customer, ticket.customer_id)
    lines = [f"*{ticket_reference(ticket.id)}* {ticket.kind} · {ticket.status} · priority {ticket.priority} · "
             f"escalation level {ticket.escalation_level}",
             f"customer #{customer.id} {escape_slack(customer.name or '-')}{' ⭐ VIP' if customer.is_vip else ''}",
             f"opened {_local(settings, ticket.created_at)} · resolve by {_local(settings, ticket.resolution_due_at)}",
             f"> {escape_slack(ticket.subject)}"]
    for event in session.execute(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)
                                 .order_by(TicketEvent.id)).scalars():
        lines.append(f"  {_local(settings, event.created_at)} {event.kind} {escape_slack(str(event.detail or ''))}")
    return "\n".join(lines)


def _takeover(session: Session, settings: Settings, agent: Agent, key: str, now: datetime) -> str:
    """`/sapa takeover 12` (or #12): a supervisor takes conversation 12 from the agent holding it."""
    conversation_id = number(key) if not key.strip().upper().startswith("TKT-") else None
    conversation = session.get(Conversation, conversation_id) if conversation_id is not None else None
    if conversation is None:
        return f"No conversation `{_quoted(key)}`; the card and `/sapa queue` show conversation numbers."
    return take_over(session, settings, conversation, agent, now=now).note


def _queue(session: Session, agent: Agent, now: datetime) -> str:
    """Who waits for a person, in the console's order (store/inbox.py): VIPs first, then the longest waiting."""
    waiting = queue(session, viewer_id=agent.id, filters=QueueFilters(status="waiting"), limit=20)
    if not waiting.total:
        return "Nobody is waiting. 🎉"
    lines = [f"*{waiting.total} waiting* (VIPs first, then oldest):"]
    for row in waiting.rows:
        minutes = int((now - row.waiting_since).total_seconds() // 60)
        lines.append(f"{'⭐ ' if row.vip else ''}{escape_slack(row.customer_name or '(name not known)')} · "
                     f"{row.channel} · waiting {minutes} min · conversation {row.conversation_id}")
    return "\n".join(lines)


def consent_line(session: Session, customer_id: int) -> str:
    """The customer's preferences as consents stand now (CRM-1.2): data processing and marketing."""
    words = {True: "yes", False: "no", None: "not asked"}
    return (f"data processing {words[current(session, customer_id, 'data_processing')]}, "
            f"marketing {words[current(session, customer_id, 'marketing')]}")


def purchases_line(session: Session, customer_id: int, settings: Settings) -> str:
    count, total, last = history(session, customer_id)
    if not count:
        return "none recorded"
    rupiah = f"{total:,}".replace(",", ".")  # Indonesian thousands separator
    return f"{count}, Rp {rupiah} in total, last {last.astimezone(settings.tz).strftime('%Y-%m-%d') if last else '-'}"
