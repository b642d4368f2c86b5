"""`sapa queue` and `sapa conversations`: staff see who is waiting for a person, and read a conversation.

Without Slack (the default set-up) a conversation handed to a human waits where nobody is notified; these
commands are where staff find it (issue 14, point 4) until the web desk exists. Reading customers' data from
the shell is staff access to personal data: every command writes an audit row naming the OS user
(`cli:<user>`). Phone numbers in the lists show only their last 3 digits; `conversations show` is the full
record (as `sapa customers show` is).
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from bot.cli.common import settings_and_session

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from bot.config import Settings
    from store.models import ChannelIdentity, Conversation, Customer, Message

STATUSES = ("bot", "waiting", "with_agent", "closed")
HUMAN = ("waiting", "with_agent")
TWILIO_CHANNELS = ("sms", "whatsapp")


def staff_actor() -> str:
    """The audit actor for a shell user: `cli:<OS user>` (the user id when the system has no name for it)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, no LOGNAME/USER (a bare container)
        user = f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return f"cli:{user}"


def mask_phone(phone: str | None) -> str | None:
    """+6281234567890 -> +**********890: a list shows which number it is, not the number."""
    if not phone:
        return None
    digits = sum(ch.isdigit() for ch in phone)
    seen, masked = 0, []
    for ch in phone:
        if ch.isdigit():
            seen += 1
            masked.append(ch if seen > digits - 3 else "*")
        else:
            masked.append(ch)
    return "".join(masked)


def _now() -> datetime:
    return datetime.now(UTC)


def _local(settings: Settings, moment: datetime | None) -> str:
    return moment.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M") if moment else "-"


def _span(delta: timedelta) -> str:
    minutes = max(int(delta.total_seconds() // 60), 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def _phone_of(customer: Customer, identity: ChannelIdentity | None) -> str | None:
    if customer.phone:
        return customer.phone
    if identity is not None and identity.channel in TWILIO_CHANNELS and not identity.address.startswith("erased-"):
        return identity.address
    return None


def _name_of(customer: Customer, identity: ChannelIdentity | None) -> str:
    return customer.name or (identity.display_name if identity is not None else None) or "(name not known)"


def _table(headers: list[str], rows: list[list[str]], widest: int = 40) -> str:
    cells = [[(c if len(c) <= widest else c[: widest - 1] + "…") for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def _audit(session: Session, action: str, subject_id: int | None, detail: dict[str, Any]) -> None:
    from store.audit import record

    record(session, actor=staff_actor(), action=action, subject_type="conversation", subject_id=subject_id,
           now=_now(), detail=detail)


# --- the rows the lists show --------------------------------------------------------------------------------------


@dataclass
class Row:
    conversation_id: int
    channel: str
    status: str
    customer_id: int
    customer: str
    phone: str | None  # masked
    vip_tier: str | None  # "vip" when a VIP has no tier name
    language: str
    owner: str | None
    opened_at: str
    last_message_at: str
    waiting_since: str | None
    waiting_for: str | None
    reason: str | None
    first_response_due: str | None  # the earliest unanswered open ticket's, "TKT-000001 2026-01-05 13:00"
    overdue: bool


def _rows(session: Session, settings: Settings, found: list[tuple[Conversation, Customer, ChannelIdentity | None]],
          now: datetime) -> list[Row]:
    from sqlalchemy import select

    from handlers.desk import OPEN_TICKET, ticket_reference
    from store.models import Agent, Ticket

    owners = {a.id: a.name for a in session.execute(select(Agent).where(
        Agent.id.in_({c.owner_agent_id for c, _, _ in found if c.owner_agent_id}))).scalars()}
    due: dict[int, Ticket] = {}
    for open_ticket in session.execute(select(Ticket).where(
            Ticket.customer_id.in_({c.id for _, c, _ in found}), Ticket.status.in_(OPEN_TICKET),
            Ticket.first_responded_at.is_(None), Ticket.first_response_due_at.is_not(None))
            .order_by(Ticket.first_response_due_at)).scalars():
        due.setdefault(open_ticket.customer_id, open_ticket)
    rows = []
    for conversation, customer, identity in found:
        human = conversation.status in HUMAN
        since = (conversation.handed_off_at or conversation.opened_at) if human else None
        ticket = due.get(customer.id) if conversation.status != "closed" else None
        due_at = ticket.first_response_due_at if ticket else None
        rows.append(Row(
            conversation_id=conversation.id, channel=conversation.channel, status=conversation.status,
            customer_id=customer.id, customer=_name_of(customer, identity),
            phone=mask_phone(_phone_of(customer, identity)),
            vip_tier=(customer.vip_tier or "vip") if customer.is_vip else None,
            language=customer.language or conversation.language,
            owner=owners.get(conversation.owner_agent_id) if conversation.owner_agent_id else None,
            opened_at=_local(settings, conversation.opened_at),
            last_message_at=_local(settings, conversation.last_message_at),
            waiting_since=_local(settings, since) if since else None,
            waiting_for=_span(now - since) if since else None,
            reason=(conversation.pending_data or {}).get("handoff_reason") if human else None,
            first_response_due=f"{ticket_reference(ticket.id)} {_local(settings, due_at)}" if ticket else None,
            overdue=bool(due_at and due_at < now),
        ))
    return rows


def _found(session: Session, query: Any) -> list[tuple[Conversation, Customer, ChannelIdentity | None]]:
    return [(c, cu, i) for c, cu, i in session.execute(query).all()]


def _base_query() -> Any:
    from sqlalchemy import select

    from store.models import ChannelIdentity, Conversation, Customer

    return (select(Conversation, Customer, ChannelIdentity)
            .join(Customer, Customer.id == Conversation.customer_id)
            .outerjoin(ChannelIdentity, ChannelIdentity.id == Conversation.identity_id))


def _session(config: str | None) -> Any:

    return settings_and_session(config)


# --- sapa queue -----------------------------------------------------------------------------------------------------


@click.command("queue")
@click.option("--json", "as_json", is_flag=True, help="One JSON list, for scripts.")
@click.pass_obj
def queue(config: str | None, as_json: bool) -> None:
    """Conversations waiting for an agent or held by one: VIPs first, then the longest waiting."""
    from sqlalchemy import func

    from store.models import Conversation, Customer

    with _session(config) as (settings, session):
        now = _now()
        query = (_base_query().where(Conversation.status.in_(HUMAN))
                 .order_by(Customer.is_vip.desc(), func.coalesce(Conversation.handed_off_at, Conversation.opened_at),
                           Conversation.id))
        rows = _rows(session, settings, _found(session, query), now)
        _audit(session, "conversations.queue_viewed", None,
               {"conversations": [r.conversation_id for r in rows], "customers": sorted({r.customer_id for r in rows})})
    if as_json:
        click.echo(json.dumps([asdict(r) for r in rows], ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("Nobody is waiting for an agent.")
        return
    waiting = sum(1 for r in rows if r.status == "waiting")
    click.echo(f"{waiting} waiting for an agent, {len(rows) - waiting} with an agent (VIPs first, then oldest); "
               f"times in {settings.company.timezone}")
    click.echo(_table(
        ["ID", "CHANNEL", "CUSTOMER", "VIP", "LANG", "STATUS", "OWNER", "WAITING SINCE", "FOR", "REASON",
         "FIRST RESPONSE DUE"],
        [[str(r.conversation_id), r.channel, r.customer, r.vip_tier or "-", r.language, r.status, r.owner or "-",
          r.waiting_since or "-", r.waiting_for or "-", r.reason or "-",
          (r.first_response_due + (" OVERDUE" if r.overdue else "")) if r.first_response_due else "-"]
         for r in rows]))
    click.echo("Read one with `sapa conversations show ID`.")


# --- sapa conversations [show ID] -----------------------------------------------------------------------------------


@click.group("conversations", invoke_without_command=True)
@click.option("--status", type=click.Choice(STATUSES), default=None, help="Only conversations in this state.")
@click.option("--customer", "customer_key", default=None, metavar="ID",
              help="Only this customer's (an id, phone or email, as `sapa customers show`).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000),
              help="How many, latest activity first.")
@click.option("--json", "as_json", is_flag=True, help="One JSON list, for scripts.")
@click.pass_context
def conversations(ctx: click.Context, status: str | None, customer_key: str | None, limit: int,
                  as_json: bool) -> None:
    """The latest conversations (phones masked); `sapa conversations show ID` prints one's transcript."""
    if ctx.invoked_subcommand is not None:
        return
    from bot.cli.customer_view import find_for_cli
    from store.models import Conversation

    with _session(ctx.obj) as (settings, session):
        query = _base_query()
        if status:
            query = query.where(Conversation.status == status)
        if customer_key:
            customers = find_for_cli(session, customer_key.lstrip("#"))
            if not customers:
                click.echo(f"no customer matches {customer_key!r}", err=True)
                sys.exit(1)
            query = query.where(Conversation.customer_id.in_([c.id for c in customers]))
        query = query.order_by(Conversation.last_message_at.desc(), Conversation.id.desc()).limit(limit)
        rows = _rows(session, settings, _found(session, query), _now())
        _audit(session, "conversations.listed", None,
               {"filters": {"status": status, "customer": customer_key, "limit": limit},
                "conversations": [r.conversation_id for r in rows], "customers": sorted({r.customer_id for r in rows})})
    if as_json:
        click.echo(json.dumps([asdict(r) for r in rows], ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("No conversations match.")
        return
    click.echo(_table(
        ["ID", "STATUS", "CHANNEL", "CUSTOMER", "PHONE", "VIP", "LANG", "OWNER", "OPENED", "LAST MESSAGE", "REASON"],
        [[str(r.conversation_id), r.status, r.channel, f"#{r.customer_id} {r.customer}", r.phone or "-",
          r.vip_tier or "-", r.language, r.owner or "-", r.opened_at, r.last_message_at, r.reason or "-"]
         for r in rows]))
    click.echo(f"{len(rows)} conversations, latest activity first; times in {settings.company.timezone}")


@conversations.command("show")
@click.argument("conversation_id", type=int)
@click.pass_obj
def show(config: str | None, conversation_id: int) -> None:
    """One conversation's transcript: the customer's messages, Sapa's and the agents' answers, internal notes,
    media by kind, shared locations and contacts."""
    from sqlalchemy import select

    from store.models import Agent, ChannelIdentity, Conversation, Customer, Message

    with _session(config) as (settings, session):
        conversation = session.get(Conversation, conversation_id)
        if conversation is None:
            click.echo(f"no conversation {conversation_id}", err=True)
            sys.exit(1)
        customer = session.get_one(Customer, conversation.customer_id)
        identity = session.get(ChannelIdentity, conversation.identity_id)
        row = _rows(session, settings, [(conversation, customer, identity)], _now())[0]
        messages = list(session.execute(select(Message).where(Message.conversation_id == conversation.id)
                                        .order_by(Message.created_at, Message.id)).scalars())
        agents = {a.id: a.name for a in session.execute(select(Agent).where(
            Agent.id.in_({m.agent_id for m in messages if m.agent_id}))).scalars()}
        _audit(session, "conversation.viewed", conversation.id,
               {"customer_id": customer.id, "messages": len(messages)})
        phone = _phone_of(customer, identity)
        lines = [
            f"Conversation {conversation.id} · {conversation.channel} · {conversation.status}"
            f"{' (owner ' + row.owner + ')' if row.owner else ''} · opened {row.opened_at}"
            f"{' · closed ' + _local(settings, conversation.closed_at) if conversation.closed_at else ''}",
            f"Customer #{customer.id} {row.customer}"
            f"{' · ' + phone if phone else ''}{' · ' + customer.email if customer.email else ''}"
            f"{' · VIP ' + row.vip_tier if row.vip_tier else ''} · language {row.language}",
        ]
        if row.waiting_since:
            lines.append(f"Waiting since {row.waiting_since} ({row.waiting_for})"
                         f"{' · reason: ' + row.reason if row.reason else ''}")
        if row.first_response_due:
            lines.append(f"First response due: {row.first_response_due}{' (OVERDUE)' if row.overdue else ''}")
        lines.append(f"Times in {settings.company.timezone}.")
        lines.append("")
        lines += [transcript_line(settings, m, customer_name=row.customer, agents=agents) for m in messages]
        if not messages:
            lines.append("(no messages)")
    click.echo("\n".join(lines))


def transcript_line(settings: Settings, message: Message, *, customer_name: str, agents: dict[int, str]) -> str:
    """One message as staff read it: time, channel, who, the text, then what it carried."""
    agent = agents.get(message.agent_id) if message.agent_id else None
    if message.direction == "note":
        who, kind = f"{agent or 'agent'} (internal note)", "note"
    elif message.direction == "in":
        who, kind = customer_name, "in"
    elif message.sender == "agent":
        who, kind = agent or "agent", "agent"
    else:
        who, kind = "Sapa" if message.sender == "bot" else message.sender, "out"
    extras = attachments(message)
    if message.direction == "out" and message.delivery_status == "failed":
        extras.append(f"[not delivered: {message.delivery_error or 'failed'}]")
    elif message.direction == "out" and message.delivery_status == "unconfirmed":  # docs/delivery.md
        extras.append("[unconfirmed: sent, but the provider never confirmed it; not sent again]")
    head = f"{_local(settings, message.created_at)}  {message.channel:<8} {kind:<5} {who}: "
    text = (message.text or "").strip()
    body = ([text] if text else []) + extras
    indent = "\n" + " " * 8  # continuation lines stand out from the next message's time
    return head + indent.join(part.replace("\n", indent) for part in body or ["(empty)"])


def attachments(message: Message) -> list[str]:
    """What a message carried besides words, readable: media by kind, a location with a map link, a contact,
    a forward, buttons offered or pressed, an edit."""
    meta: dict[str, Any] = message.meta or {}
    lines = []
    if (origin := meta.get("forwarded_from")) is not None:
        lines.append(f"[forwarded from {origin}]" if origin else "[forwarded]")
    for media in message.media or []:
        if not isinstance(media, dict):
            continue
        kind = media.get("kind") or (str(media.get("content_type") or "").split("/")[0] or "file")
        details = ", ".join(str(v) for v in (media.get("file_name"), media.get("content_type")) if v)
        lines.append(f"[{kind}{': ' + details if details else ''}]")
    if isinstance(location := meta.get("location"), dict):
        lat, lon = location.get("latitude"), location.get("longitude")
        place = ", ".join(str(v) for v in (location.get("name"), location.get("address")) if v)
        link = f" https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=17/{lat}/{lon}" \
            if lat is not None and lon is not None else ""
        lines.append(f"[location: {place + ' · ' if place else ''}{lat}, {lon}{link}]")
    if isinstance(contact := meta.get("contact"), dict):
        whose = " (their own number)" if contact.get("own") else ""
        lines.append(f"[contact: {contact.get('name') or '-'}, {contact.get('phone') or 'no number'}{whose}]")
    if message.button_payload and message.direction == "in":
        lines.append(f"[pressed: {message.button_payload}]")
    if message.buttons and message.direction != "in":
        titles = [str(b.get("title", b)) if isinstance(b, dict) else str(b) for b in message.buttons]
        lines.append(f"[buttons: {' | '.join(titles)}]")
    if message.edit_of_id:
        lines.append(f"[edit of message {message.edit_of_id}]")
    return lines


COMMANDS: list[click.Command] = [queue, conversations]
