"""The agent desk: handoff cards, relays both ways, and what agents do from Slack.

Only queue rows and state changes here (no network): Slack posts are outbox rows on channel
"slack", rendered by the Slack adapter from the card data built below.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import media_links
from bot.config import Settings
from bot.templating import render
from handlers import sla
from store.audit import record
from store.messages import add_desk_post, add_outbound
from store.models import Agent, ChannelIdentity, Conversation, Customer, Message, OutboxItem, Ticket, TicketEvent

log = logging.getLogger(__name__)
OPEN_TICKET = ("open", "in_progress", "reopened")
ACTION_ROLES = {"customer_service", "account_manager", "supervisor", "management"}
# Who may take a conversation over from the agent holding it (a claim never does).
TAKEOVER_ROLES = {"supervisor", "management"}
# The largest file an agent can send per channel, in MB: Telegram's upload limit for bots, Twilio's for
# WhatsApp media and for MMS. Web chat gets a link that streams through Sapa, which fetches at most 50 MB.
FILE_LIMITS_MB = {"telegram": 50, "whatsapp": 16, "sms": 5}
DEFAULT_FILE_LIMIT_MB = 50
TWILIO_CHANNELS = ("sms", "whatsapp")
WHATSAPP_WINDOW = timedelta(hours=24)
KIND_WORDS = {"image": "photo", "video": "video", "audio": "audio", "voice": "voice note", "document": "document",
              "sticker": "sticker"}


def escape_slack(text: str) -> str:
    """Customer words shown in Slack: "<!channel>" or "<@U123>" in a message must ping nobody."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def ticket_reference(ticket_id: int) -> str:
    return f"TKT-{ticket_id:06d}"


@dataclass(frozen=True)
class DeskResult:
    """What an agent's request changed, said back to the agent when Slack shows it (ephemeral)."""

    ok: bool
    note: str


def enabled(settings: Settings) -> bool:
    return settings.slack.enabled


def agent_for(session: Session, slack_user: str) -> Agent | None:
    return session.execute(
        select(Agent).where(Agent.slack_user_id == slack_user, Agent.active.is_(True))
    ).scalar_one_or_none()


def open_tickets(session: Session, customer_id: int) -> list[Ticket]:
    return list(session.execute(
        select(Ticket).where(Ticket.customer_id == customer_id, Ticket.status.in_(OPEN_TICKET)).order_by(Ticket.id)
    ).scalars())


def card(session: Session, settings: Settings, conversation: Conversation, *, title: str,
         reason: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    customer = session.get_one(Customer, conversation.customer_id)
    identity = session.get_one(ChannelIdentity, conversation.identity_id)
    owner = session.get(Agent, conversation.owner_agent_id) if conversation.owner_agent_id else None
    manager = session.get(Agent, customer.account_manager_id) if customer.account_manager_id else None
    tickets = open_tickets(session, customer.id)
    recent = list(session.execute(
        select(Message).where(Message.conversation_id == conversation.id, Message.direction.in_(("in", "out")))
        .order_by(Message.id.desc()).limit(settings.slack.last_messages)
    ).scalars())[::-1]
    dues = [t.first_response_due_at for t in tickets if t.first_response_due_at and not t.first_responded_at]
    return {
        "conversation_id": conversation.id,
        "title": title,
        "customer_name": customer.name or identity.display_name or "(name not known)",
        "vip": customer.is_vip,
        "vip_tier": customer.vip_tier,
        "channel": conversation.channel,
        "language": conversation.language,
        "reason": reason,
        "status": conversation.status,
        "owner": owner.name if owner else None,
        "tickets": [{"ref": ticket_reference(t.id), "kind": t.kind, "status": t.status,
                     "due": t.resolution_due_at.isoformat() if t.resolution_due_at else None} for t in tickets],
        "sla_due": min(dues).isoformat() if dues else None,
        "last_messages": [{"sender": m.sender, "text": m.text,
                           "extras": attachment_lines(settings, m, now=now or datetime.now(UTC), compact=True)}
                          for m in recent],
        "mention": f"<@{manager.slack_user_id}>" if customer.is_vip and manager and manager.slack_user_id else None,
    }


def post_handoff(session: Session, settings: Settings, conversation: Conversation, *, reason: str,
                 now: datetime) -> None:
    """Bring a conversation to Slack: VIPs to the VIP channel, everyone else to the queue."""
    conversation.handed_off_at = now
    if not enabled(settings):
        return
    customer = session.get_one(Customer, conversation.customer_id)
    target = (settings.slack.vip_channel if customer.is_vip else None) or settings.slack.queue_channel
    data = card(session, settings, conversation, title="Customer needs an agent", reason=reason, now=now)
    name = escape_slack(data["customer_name"])
    text = f"{'⭐ VIP ' if customer.is_vip else ''}{name} needs an agent ({conversation.channel})"
    if conversation.desk_ts is None:
        add_desk_post(session, recipient=target, text=text, now=now, conversation_id=conversation.id,
                      options={"card": data}, card_for=conversation.id)
    else:  # handed off again: refresh the card and say so in its thread
        refresh_card(session, settings, conversation, now=now)
        add_desk_post(session, recipient=conversation.desk_channel or target, text=f"🔁 {text}", now=now,
                      conversation_id=conversation.id, options={"thread_of": conversation.id})


def refresh_card(session: Session, settings: Settings, conversation: Conversation, *, now: datetime) -> None:
    if not enabled(settings) or conversation.desk_channel is None:
        return
    data = card(session, settings, conversation, title="Customer needs an agent", now=now)
    add_desk_post(session, recipient=conversation.desk_channel,
                  text=f"{escape_slack(data['customer_name'])}: {conversation.status}", now=now,
                  conversation_id=conversation.id, options={"update_card_of": conversation.id, "card": data})


def relay_to_desk(session: Session, settings: Settings, conversation: Conversation, message: Message,
                  *, now: datetime) -> None:
    """A customer's later message appears in the card's thread, with what came with it: a signed Sapa link per
    file (never the provider's reference), a place with a map link, a contact card, where it was forwarded from."""
    if not enabled(settings):
        return
    customer = session.get_one(Customer, conversation.customer_id)
    text = f"💬 *{escape_slack(customer.name or 'Customer')}*: {escape_slack(message.text)}"
    if lines := attachment_lines(settings, message, now=now):
        text += "\n" + "\n".join(lines)
    add_desk_post(session, recipient=conversation.desk_channel or settings.slack.queue_channel, text=text, now=now,
                  conversation_id=conversation.id, options={"thread_of": conversation.id})


def attachment_lines(settings: Settings, message: Message, *, now: datetime, compact: bool = False) -> list[str]:
    """What came with a message besides its words, as Slack mrkdwn (customer words escaped): "forwarded from",
    each file as a signed Sapa link, a place as coordinates and an OpenStreetMap link, a contact card.
    Staff open files only through these links, which expire (media_links.expire_days) and are audited."""
    meta = message.meta or {}
    lines = []
    if "forwarded_from" in meta and meta["forwarded_from"] is not None:
        origin = str(meta["forwarded_from"])
        lines.append(f"↪️ Forwarded from {escape_slack(origin)}" if origin else "↪️ Forwarded message")
    if message.media:
        signer, base = media_links.links(settings), media_links.base_url(settings)
        for index, item in enumerate(message.media):
            url = signer.url(base, message.id, index, now=now)
            lines.append(f"📎 <{escape_slack(url)}|{escape_slack(media_label(item))}>")
    if isinstance(place := meta.get("location"), dict):
        lines.append(location_line(place, compact=compact))
    if isinstance(contact := meta.get("contact"), dict):
        lines.append(contact_line(contact))
    return lines


def media_label(item: Mapping[str, Any]) -> str:
    """"receipt.pdf · application/pdf", "photo · image/jpeg": what the agent is about to open."""
    name = item.get("file_name") or KIND_WORDS.get(str(item.get("kind") or ""), "file")
    content_type = item.get("content_type")
    return f"{name} · {content_type}" if content_type else str(name)


def map_url(latitude: float, longitude: float) -> str:
    lat, lon = _coordinate(latitude), _coordinate(longitude)
    return f"https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=17/{lat}/{lon}"


def location_line(place: Mapping[str, Any], *, compact: bool = False) -> str:
    """📍 name, address — latitude, longitude · map link."""
    try:
        latitude, longitude = float(place["latitude"]), float(place["longitude"])
    except (KeyError, TypeError, ValueError):
        return "📍 A location without readable coordinates"
    where = ", ".join(escape_slack(str(place[key])) for key in ("name", "address") if place.get(key))
    coordinates = f"{_coordinate(latitude)}, {_coordinate(longitude)}"
    if compact:
        where = ""
    return f"📍 {where + ' — ' if where else ''}{coordinates} · <{escape_slack(map_url(latitude, longitude))}|map>"


def contact_line(contact: Mapping[str, Any]) -> str:
    """👤 Contact: name, number (whose it is)."""
    whose = "the customer's own number" if contact.get("own") else "someone else's contact"
    name = escape_slack(str(contact.get("name") or "(no name)"))
    phone = escape_slack(str(contact.get("phone") or "no number"))
    return f"👤 Contact: {name}, {phone} ({whose})"


def _coordinate(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".") or "0"


def _tell_customer(session: Session, settings: Settings, conversation: Conversation, template: str, *,
                   now: datetime, agent: Agent | None = None, **variables: Any) -> None:
    identity = session.get_one(ChannelIdentity, conversation.identity_id)
    texts = settings.templates[template]
    text = render(texts.get(conversation.language) or texts[settings.default_language],
                  {"company": settings.company.name, **variables})
    customer = session.get_one(Customer, conversation.customer_id)
    add_outbound(session, conversation, recipient=identity.address, text=text, now=now,
                 sender="agent" if agent else "bot", agent_id=agent.id if agent else None,
                 template_variables={"name": customer.name or "", "company": settings.company.name})


def _note_thread(session: Session, conversation: Conversation, text: str, *, now: datetime) -> None:
    if conversation.handed_off_at is None:
        return  # never handed off (a request the bot keeps): there is no card thread to note in
    add_desk_post(session, recipient=conversation.desk_channel or "", text=text, now=now,
                  conversation_id=conversation.id, options={"thread_of": conversation.id})


def _first_response(session: Session, conversation: Conversation, agent: Agent, now: datetime) -> None:
    for ticket in open_tickets(session, conversation.customer_id):
        if ticket.first_responded_at is None:
            ticket.first_responded_at = now
            sla.answered(session, ticket, now=now)
            ticket.updated_at = now
        if ticket.assigned_agent_id is None:
            ticket.assigned_agent_id = agent.id
            session.add(TicketEvent(ticket_id=ticket.id, kind="assigned", agent_id=agent.id,
                                    detail={"by": "reply"}, created_at=now))


ESCALATION_ROLES = {1: "supervisor", 2: "management"}
ESCALATION_LEVELS = {role: level for level, role in ESCALATION_ROLES.items()}


def escalate(session: Session, settings: Settings, conversation: Conversation, tickets: list[Ticket], *,
             role: str, by: str, agent_id: int | None, reason: str, now: datetime) -> None:
    """Raise tickets to `role`, write the escalation log, alert that role in Slack, tell the customer.

    One path for an agent's Escalate button and for an automatic SLA breach, so both leave the same
    record: a ticket event per ticket, a card in the escalation channel with the people of that role
    mentioned, a note in the conversation's thread.
    """
    level = ESCALATION_LEVELS[role]
    for ticket in tickets:
        ticket.escalation_level = max(ticket.escalation_level, level)
        ticket.priority, ticket.updated_at = ticket.priority + 1, now
        session.add(TicketEvent(ticket_id=ticket.id, kind="escalated", agent_id=agent_id,
                                detail={"level": level, "role": role, "by": by, "reason": reason}, created_at=now))
    people = session.execute(select(Agent).where(Agent.role == role, Agent.active.is_(True))).scalars()
    mentions = " ".join(f"<@{p.slack_user_id}>" for p in people if p.slack_user_id)
    data = card(session, settings, conversation, title=f"Escalation level {level} ({role}): {reason}", now=now)
    data["mention"] = mentions or data["mention"]
    refs = ", ".join(ticket_reference(t.id) for t in tickets)
    add_desk_post(session, recipient=settings.slack.escalation_channel or settings.slack.queue_channel,
                  text=f"🚨 Escalation level {level} to {role}: {escape_slack(data['customer_name'])}, {refs} "
                       f"({escape_slack(reason)}; by {escape_slack(by)})",
                  now=now, conversation_id=conversation.id, options={"card": data})
    _tell_customer(session, settings, conversation, "escalated", now=now)
    _note_thread(session, conversation, f"🚨 Escalated to {role} by {escape_slack(by)}: {escape_slack(reason)}",
                 now=now)


def card_of_thread(session: Session, channel: str | None, thread_ts: str) -> Conversation | None:
    """The conversation whose card is the message `thread_ts` in Slack channel `channel`.

    A Slack ts is unique only within its channel (issue 15: a reply in another channel whose thread_ts equalled a
    card's ts reached that card's customer), so both must match. `channel` is None only for a reply queued
    before replies carried their channel (migration 0009): then the ts alone, as it was.
    """
    query = select(Conversation).where(Conversation.desk_ts == thread_ts)
    if channel is not None:
        query = query.where(Conversation.desk_channel == channel)
    return session.execute(query.order_by(Conversation.id.desc()).limit(1)).scalars().first()


def press_channels(settings: Settings, conversation: Conversation) -> set[str]:
    """Where Sapa posts buttons for this conversation: its card's channel, the escalation channel (escalation
    cards) and the VIP channel (VIP detractor cards), each defaulting to the queue; Take over offers go to the
    card's channel."""
    slack = settings.slack
    return {channel for channel in (conversation.desk_channel, slack.escalation_channel or slack.queue_channel,
                                    slack.vip_channel or slack.queue_channel) if channel}


def agent_reply(session: Session, settings: Settings, *, slack_user: str, thread_ts: str, text: str,
                now: datetime, files: Sequence[Mapping[str, Any]] = (), channel: str | None = None) -> DeskResult:
    """An agent wrote in a card's thread: to the customer, or an internal note if it starts with note:.

    The thread is the card's when `channel` and `thread_ts` are the card's channel and ts (card_of_thread).
    `files` (channels.slack.SharedFile.as_dict) go with the text as the channel's media (Telegram, WhatsApp,
    MMS) or as links (web chat); a file that cannot go is named in the thread with the reason.
    """
    conversation = card_of_thread(session, channel, thread_ts)
    if conversation is None:
        return DeskResult(False, "this thread is not a Sapa conversation")
    agent = agent_for(session, slack_user)
    if agent is None or agent.role not in ACTION_ROLES:
        _note_thread(session, conversation, f"⚠️ <@{slack_user}> is not a registered Sapa agent: nothing was sent "
                     "to the customer.", now=now)
        return DeskResult(False, "unknown agent")
    if text.strip().lower().startswith("note:"):
        session.add(Message(conversation_id=conversation.id, customer_id=conversation.customer_id,
                            channel=conversation.channel, direction="note", sender="agent", agent_id=agent.id,
                            text=text.strip()[5:].strip(), buttons=[], media=[], meta={}, created_at=now))
        return DeskResult(True, "internal note kept")
    if conversation.status == "closed":
        _note_thread(session, conversation, "⚠️ This conversation is closed; the customer was not messaged.", now=now)
        return DeskResult(False, "conversation closed")
    if not text.strip() and not files:
        _note_thread(session, conversation, "⚠️ The message was empty; nothing was sent to the customer.", now=now)
        return DeskResult(False, "nothing to relay")
    sendable, refused = _shareable(settings, conversation, files, now=now)
    for name, why in refused:
        _note_thread(session, conversation, f"⚠️ <@{slack_user}> {escape_slack(name)} was not sent to the customer: "
                     f"{escape_slack(why)}", now=now)
    if not text.strip() and not sendable:
        return DeskResult(False, "no file could be sent")
    if conversation.status != "with_agent" or conversation.owner_agent_id is None:
        conversation.status = "with_agent"
        conversation.owner_agent_id = agent.id
        refresh_card(session, settings, conversation, now=now)
    identity = session.get_one(ChannelIdentity, conversation.identity_id)
    customer = session.get_one(Customer, conversation.customer_id)
    message = add_outbound(session, conversation, recipient=identity.address, text=text.strip(), now=now,
                           sender="agent", agent_id=agent.id, media=[_file_entry(f) for f in sendable] or None,
                           template_variables={"name": customer.name or "", "company": settings.company.name})
    if sendable:
        _address_files(session, settings, conversation, message, now=now)
    _first_response(session, conversation, agent, now)
    return DeskResult(True, "sent to the customer")


def _shareable(settings: Settings, conversation: Conversation, files: Sequence[Mapping[str, Any]], *,
               now: datetime) -> tuple[list[Mapping[str, Any]], list[tuple[str, str]]]:
    """The files that can reach this customer, and (name, reason) for each that cannot."""
    channel = conversation.channel
    limit_mb = FILE_LIMITS_MB.get(channel, DEFAULT_FILE_LIMIT_MB)
    window_closed = channel == "whatsapp" and (
        conversation.last_inbound_at is None or now - conversation.last_inbound_at >= WHATSAPP_WINDOW)
    sendable, refused = [], []
    for shared in files:
        name, size = str(shared.get("name") or "a file"), shared.get("size")
        if shared.get("external") or shared.get("mode") == "external":
            why = "it is a link to a file outside Slack; paste a link the customer can open instead"
        elif shared.get("mode") in ("tombstone", "hidden_by_limit"):
            why = "Slack does not let Sapa read it (deleted, or hidden by the workspace's plan)"
        elif not shared.get("url") and not shared.get("id"):
            why = "Slack did not say where the file is"
        elif channel in TWILIO_CHANNELS and not settings.server.public_base_url:
            why = (f"{channel} goes through Twilio, which fetches files from a public link, and server.public_base_url "
                   "is not set")
        elif window_closed:
            why = "the WhatsApp 24-hour window is closed (files cannot go as an approved template)"
        elif isinstance(size, int) and size > limit_mb * 1024 * 1024:
            why = f"it is {size / (1024 * 1024):.1f} MB and {channel} takes at most {limit_mb} MB"
        else:
            sendable.append(shared)
            continue
        refused.append((name, why))
    return sendable, refused


def _file_entry(shared: Mapping[str, Any]) -> dict[str, Any]:
    """How an agent's file is kept on the message: a `slack:` reference the desk can download."""
    mimetype = str(shared.get("mimetype") or "") or None
    major = (mimetype or "").split("/")[0]
    kind = major if major in ("image", "video", "audio") else "document"
    url = shared.get("url")
    return {"url": f"slack:{url}" if url else f"slack:file/{shared.get('id')}", "content_type": mimetype,
            "kind": kind, "file_name": str(shared.get("name") or "file"), "size": shared.get("size"),
            "slack_file": shared.get("id")}


def _address_files(session: Session, settings: Settings, conversation: Conversation, message: Message, *,
                   now: datetime) -> None:
    """Now that the message has its id, point the queued send at what the channel can use.

    Telegram keeps the `slack:` references: the outbox fetches the bytes and uploads them. Twilio fetches files
    itself: it gets signed public Sapa links (server.public_base_url). Web chat shows text: the customer gets a
    signed link per file under the words.
    """
    if conversation.channel == "telegram":
        return
    item = session.execute(select(OutboxItem).where(OutboxItem.message_id == message.id)).scalar_one()
    signer, base = media_links.links(settings), media_links.base_url(settings)
    files = [(signer.url(base, message.id, index, now=now), entry) for index, entry in enumerate(message.media)]
    payload = dict(item.payload)
    if conversation.channel in TWILIO_CHANNELS:
        payload["media"] = [{"url": link, "content_type": entry.get("content_type"), "kind": entry.get("kind"),
                             "file_name": entry.get("file_name")} for link, entry in files]
    else:
        lines = [f"📎 {entry.get('file_name') or 'file'}: {link}" for link, entry in files]
        message.text = "\n".join([message.text, *lines]) if message.text else "\n".join(lines)
        payload["text"] = message.text
        payload.pop("media", None)
    item.payload = payload


def file_not_delivered(session: Session, message_id: int, file_name: str | None, reason: str, *,
                       now: datetime) -> None:
    """An agent's file could not be fetched from Slack for the customer: say so in the card's thread."""
    message = session.get(Message, message_id)
    if message is None:
        return
    conversation = session.get_one(Conversation, message.conversation_id)
    agent = session.get(Agent, message.agent_id) if message.agent_id else None
    who = f"<@{agent.slack_user_id}> " if agent is not None and agent.slack_user_id else ""
    names = file_name or ", ".join(str(m.get("file_name") or "a file") for m in message.media or []) or "a file"
    _note_thread(session, conversation, f"⚠️ {who}{escape_slack(names)} did not reach the customer: "
                 f"{escape_slack(reason)}. Share it again, or send a link.", now=now)


def agent_action(session: Session, settings: Settings, *, action: str, conversation_id: int, slack_user: str,
                 now: datetime, channel: str | None = None) -> DeskResult:
    """A button pressed in Slack (or a claim made for a takeover). `channel` is where it was pressed: a press
    outside the channels where Sapa posts this conversation's buttons (press_channels) changes nothing."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        return DeskResult(False, "no such conversation")
    if channel is not None and channel not in press_channels(settings, conversation):
        log.warning("Slack press %s for conversation %s in channel %s, where Sapa posts no buttons for it: ignored",
                    action, conversation.id, channel)
        return DeskResult(False, "not pressed on a Sapa message about this conversation")
    agent = agent_for(session, slack_user)
    if agent is None or agent.role not in ACTION_ROLES:
        _note_thread(session, conversation, f"⚠️ <@{slack_user}> is not a registered Sapa agent and cannot "
                     f"{action.replace('_', ' ')} this conversation.", now=now)
        return DeskResult(False, "unknown agent")
    if conversation.status == "closed" and action != "escalate":
        return DeskResult(False, "conversation already closed")
    tickets = open_tickets(session, conversation.customer_id)
    holder = session.get(Agent, conversation.owner_agent_id) if conversation.owner_agent_id else None
    if action == "takeover":
        result = take_over(session, settings, conversation, agent, now=now)
        tell_agent(session, conversation, slack_user, result.note, now=now)
        return result
    if action == "claim" and conversation.status == "with_agent" and holder is not None:
        # Never a silent takeover: the agent hears who holds it; a supervisor gets the explicit way.
        if holder.id == agent.id:
            tell_agent(session, conversation, slack_user, f"You already hold conversation #{conversation.id}.",
                       now=now)
            return DeskResult(True, "already yours")
        can = agent.role in TAKEOVER_ROLES
        advice = (f"To take it over, press Take over or use `/sapa takeover {conversation.id}`; "
                  f"{escape_slack(holder.name)} will be told." if can else
                  f"Leave a note in the thread, or ask a supervisor to take it over (`/sapa takeover "
                  f"{conversation.id}`).")
        tell_agent(session, conversation, slack_user, f"{escape_slack(holder.name)} already holds conversation "
                   f"#{conversation.id}; it was not claimed. {advice}", now=now, takeover=can)
        return DeskResult(False, f"held by {holder.name}")
    if action == "claim":
        conversation.status, conversation.owner_agent_id = "with_agent", agent.id
        for ticket in tickets:
            ticket.assigned_agent_id, ticket.status, ticket.updated_at = agent.id, "in_progress", now
            session.add(TicketEvent(ticket_id=ticket.id, kind="assigned", agent_id=agent.id, detail={"by": "claim"},
                                    created_at=now))
        _tell_customer(session, settings, conversation, "agent_joined", now=now, agent=agent, agent_name=agent.name)
        _first_response(session, conversation, agent, now)
        _note_thread(session, conversation, f"✋ Claimed by {escape_slack(agent.name)}", now=now)
    elif action == "resolve":
        for ticket in tickets:
            ticket.status, ticket.resolved_at, ticket.updated_at = "resolved", now, now
            sla.resolved(session, settings, ticket, now=now)
            ticket.resolution = ticket.resolution or f"Resolved in Slack by {agent.name}"
            session.add(TicketEvent(ticket_id=ticket.id, kind="resolved", agent_id=agent.id, detail={},
                                    created_at=now))
        _tell_customer(session, settings, conversation, "resolved", now=now, agent=agent,
                       tickets=", ".join(ticket_reference(t.id) for t in tickets))
        conversation.status, conversation.closed_at = "closed", now
        _note_thread(session, conversation, f"✅ Resolved by {escape_slack(agent.name)}", now=now)
    elif action == "escalate":
        level = max((t.escalation_level for t in tickets), default=0) + 1
        escalate(session, settings, conversation, tickets, role=ESCALATION_ROLES[min(level, 2)],
                 by=agent.name, agent_id=agent.id, reason="escalated by an agent", now=now)
    elif action == "back_to_bot":
        conversation.status, conversation.owner_agent_id = "bot", None
        _tell_customer(session, settings, conversation, "back_to_bot", now=now)
        _note_thread(session, conversation, f"🤖 Handed back to the bot by {escape_slack(agent.name)}", now=now)
    else:
        return DeskResult(False, f"unknown action {action}")
    record(session, actor=f"agent:{agent.id}", action=f"conversation.{action}", subject_type="conversation",
           subject_id=conversation.id, now=now)
    refresh_card(session, settings, conversation, now=now)
    return DeskResult(True, f"{action} done")


def take_over(session: Session, settings: Settings, conversation: Conversation, agent: Agent, *,
              now: datetime) -> DeskResult:
    """A supervisor (or management) takes a conversation from the agent holding it, explicitly.

    The tickets follow, the customer hears who is helping now, the previous holder is mentioned in the card's
    thread, and the audit log records who took it from whom. Nobody holding it: this is a plain claim.
    """
    if agent.role not in TAKEOVER_ROLES:
        return DeskResult(False, "Only supervisors and management can take over a conversation another agent "
                          "holds; ask one of them.")
    if conversation.status == "closed":
        return DeskResult(False, f"Conversation #{conversation.id} is closed.")
    holder = session.get(Agent, conversation.owner_agent_id) if conversation.owner_agent_id else None
    if conversation.status != "with_agent" or holder is None:
        agent_action(session, settings, action="claim", conversation_id=conversation.id,
                     slack_user=agent.slack_user_id or "", now=now)
        return DeskResult(True, f"Nobody held conversation #{conversation.id}: you have claimed it.")
    if holder.id == agent.id:
        return DeskResult(True, f"You already hold conversation #{conversation.id}.")
    conversation.owner_agent_id = agent.id
    for ticket in open_tickets(session, conversation.customer_id):
        if ticket.assigned_agent_id != agent.id:
            ticket.assigned_agent_id, ticket.updated_at = agent.id, now
            session.add(TicketEvent(ticket_id=ticket.id, kind="assigned", agent_id=agent.id,
                                    detail={"by": "takeover", "from_agent_id": holder.id}, created_at=now))
    _tell_customer(session, settings, conversation, "agent_joined", now=now, agent=agent, agent_name=agent.name)
    mention = f"<@{holder.slack_user_id}>" if holder.slack_user_id else escape_slack(holder.name)
    _note_thread(session, conversation, f"🔀 {escape_slack(agent.name)} ({agent.role.replace('_', ' ')}) took over "
                 f"this conversation from {mention}, who no longer holds it.", now=now)
    record(session, actor=f"agent:{agent.id}", action="conversation.takeover", subject_type="conversation",
           subject_id=conversation.id, now=now,
           detail={"from_agent_id": holder.id, "from": holder.name, "to_agent_id": agent.id, "to": agent.name})
    refresh_card(session, settings, conversation, now=now)
    return DeskResult(True, f"You now hold conversation #{conversation.id}; {escape_slack(holder.name)} was told "
                      "in its thread.")


def tell_agent(session: Session, conversation: Conversation, slack_user: str, text: str, *, now: datetime,
               takeover: bool = False) -> None:
    """A note only `slack_user` sees (Slack ephemeral), in the card's channel; `takeover` adds a Take over button."""
    channel = conversation.desk_channel
    if channel is None:
        return
    options: dict[str, Any] = {"ephemeral_user": slack_user}
    if takeover:
        options["takeover_of"] = conversation.id
    add_desk_post(session, recipient=channel, text=text, now=now, conversation_id=conversation.id, options=options)


def sync_agents(session: Session, settings: Settings, *, now: datetime) -> None:
    """Agents listed in config are created or updated (never deleted: history points at them)."""
    for listed in settings.slack.agents:
        agent = session.execute(select(Agent).where(Agent.slack_user_id == listed.slack_user_id)).scalar_one_or_none()
        if agent is None:
            session.add(Agent(name=listed.name, slack_user_id=listed.slack_user_id, role=listed.role, active=True,
                              created_at=now))
        else:
            agent.name, agent.role, agent.active = listed.name, listed.role, True
