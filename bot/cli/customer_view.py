"""A customer's profile as text, for the CLI (and later the agent desk)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.contacts import normalise_email, normalise_phone
from bot.limits import is_ascii_number
from handlers.desk_commands import consent_line, purchases_line
from store.customers import find_customers, get_customer
from store.duplicates import duplicates_of
from store.models import ChannelIdentity, Conversation, Customer, Message, Ticket


def find_for_cli(session: Session, key: str) -> list[Customer]:
    key = key.strip()
    if is_ascii_number(key) and len(key) < 9:
        customer = get_customer(session, int(key))
        return [customer] if customer else []
    phone = normalise_phone(key)
    email = normalise_email(key) if "@" in key else None
    if phone or email:
        return find_customers(session, phone=phone, email=email)
    return find_customers(session, name=key)


def describe(session: Session, customer: Customer, settings: Settings) -> str:
    identities = session.execute(
        select(ChannelIdentity).where(ChannelIdentity.customer_id == customer.id)
    ).scalars()
    messages = session.execute(
        select(func.count()).select_from(Message).where(Message.customer_id == customer.id)
    ).scalar_one()
    conversations = session.execute(
        select(func.count()).select_from(Conversation).where(Conversation.customer_id == customer.id)
    ).scalar_one()
    open_tickets = session.execute(
        select(func.count()).select_from(Ticket).where(
            Ticket.customer_id == customer.id, Ticket.status.not_in(("resolved", "closed"))
        )
    ).scalar_one()
    local = customer.created_at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M %Z")
    lines = [
        f"Customer #{customer.id}: {customer.name or '(name not known)'}",
        f"  phone:    {customer.phone or '-'}",
        f"  email:    {customer.email or '-'}",
        f"  language: {customer.language or '-'}",
        f"  VIP:      {'yes' + (f' ({customer.vip_tier})' if customer.vip_tier else '') if customer.is_vip else 'no'}",
        f"  since:    {local} (via {customer.source})",
        f"  channels: {', '.join(f'{i.channel}:{i.address}' for i in identities) or '-'}",
        f"  activity: {conversations} conversations, {messages} messages, {open_tickets} open tickets",
        f"  consent:  {consent_line(session, customer.id)}",
        f"  purchases: {purchases_line(session, customer.id, settings)}",
    ]
    for pair in duplicates_of(session, customer.id):  # CRM-1.4
        other = pair.other(customer.id)
        lines.append(f"  possible duplicate of #{other.id}{' ' + other.name if other.name else ''} ({pair.reason}): "
                     f"{pair.merge_command}")
    return "\n".join(lines)

