"""The agent desk: handoff cards, relays both ways, and what agents do from Slack.

Only queue rows and state changes here (no network): Slack posts are outbox rows on channel
"slack", rendered by the Slack adapter from the card data built below.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.templating import render
from handlers import sla
from store.audit import record
from store.messages import add_desk_post, add_outbound
from store.models import Agent, ChannelIdentity, Conversation, Customer, Message, Ticket, TicketEvent

OPEN_TICKET = ("open", "in_progress", "reopened")
ACTION_ROLES = {"customer_service", "account_manager", "supervisor", "management"}


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
         reason: str | None = None) -> dict[str, Any]:
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
        "last_messages": [{"sender": m.sender, "text": m.text} for m in recent],
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
    data = card(session, settings, conversation, title="Customer needs an agent", reason=reason)
    text = f"{'⭐ VIP ' if customer.is_vip else ''}{data['customer_name']} needs an agent ({conversation.channel})"
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
    data = card(session, settings, conversation, title="Customer needs an agent")
    add_desk_post(session, recipient=conversation.desk_channel, text=f"{data['customer_name']}: {conversation.status}",
                  now=now, conversation_id=conversation.id, options={"update_card_of": conversation.id, "card": data})


def relay_to_desk(session: Session, settings: Settings, conversation: Conversation, message: Message,
                  *, now: datetime) -> None:
    """A customer's later message appears in the card's thread."""
    if not enabled(settings):
        return
    customer = session.get_one(Customer, conversation.customer_id)
    text = f"💬 *{customer.name or 'Customer'}*: {message.text}"
    if message.media:
        text += "\n" + "\n".join(f"📎 {m['url']}" for m in message.media)
    add_desk_post(session, recipient=conversation.desk_channel or settings.slack.queue_channel, text=text, now=now,
                  conversation_id=conversation.id, options={"thread_of": conversation.id})


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
    data = card(session, settings, conversation, title=f"Escalation level {level} ({role}): {reason}")
    data["mention"] = mentions or data["mention"]
    refs = ", ".join(ticket_reference(t.id) for t in tickets)
    add_desk_post(session, recipient=settings.slack.escalation_channel or settings.slack.queue_channel,
                  text=f"🚨 Escalation level {level} to {role}: {data['customer_name']}, {refs} ({reason}; by {by})",
                  now=now, conversation_id=conversation.id, options={"card": data})
    _tell_customer(session, settings, conversation, "escalated", now=now)
    _note_thread(session, conversation, f"🚨 Escalated to {role} by {by}: {reason}", now=now)


def agent_reply(session: Session, settings: Settings, *, slack_user: str, thread_ts: str, text: str,
                now: datetime) -> DeskResult:
    """An agent wrote in a card's thread: to the customer, or an internal note if it starts with note:."""
    conversation = session.execute(select(Conversation).where(Conversation.desk_ts == thread_ts)).scalar_one_or_none()
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
    if not text.strip():
        _note_thread(session, conversation, "⚠️ Only text is relayed to the customer; the file was not sent.",
                     now=now)
        return DeskResult(False, "nothing to relay")
    if conversation.status != "with_agent" or conversation.owner_agent_id is None:
        conversation.status = "with_agent"
        conversation.owner_agent_id = agent.id
        refresh_card(session, settings, conversation, now=now)
    identity = session.get_one(ChannelIdentity, conversation.identity_id)
    customer = session.get_one(Customer, conversation.customer_id)
    add_outbound(session, conversation, recipient=identity.address, text=text.strip(), now=now, sender="agent",
                 agent_id=agent.id, template_variables={"name": customer.name or "", "company": settings.company.name})
    _first_response(session, conversation, agent, now)
    return DeskResult(True, "sent to the customer")


def agent_action(session: Session, settings: Settings, *, action: str, conversation_id: int, slack_user: str,
                 now: datetime) -> DeskResult:
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        return DeskResult(False, "no such conversation")
    agent = agent_for(session, slack_user)
    if agent is None or agent.role not in ACTION_ROLES:
        _note_thread(session, conversation, f"⚠️ <@{slack_user}> is not a registered Sapa agent and cannot "
                     f"{action.replace('_', ' ')} this conversation.", now=now)
        return DeskResult(False, "unknown agent")
    if conversation.status == "closed" and action != "escalate":
        return DeskResult(False, "conversation already closed")
    tickets = open_tickets(session, conversation.customer_id)
    if action == "claim":
        conversation.status, conversation.owner_agent_id = "with_agent", agent.id
        for ticket in tickets:
            ticket.assigned_agent_id, ticket.status, ticket.updated_at = agent.id, "in_progress", now
            session.add(TicketEvent(ticket_id=ticket.id, kind="assigned", agent_id=agent.id, detail={"by": "claim"},
                                    created_at=now))
        _tell_customer(session, settings, conversation, "agent_joined", now=now, agent=agent, agent_name=agent.name)
        _first_response(session, conversation, agent, now)
        _note_thread(session, conversation, f"✋ Claimed by {agent.name}", now=now)
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
        _note_thread(session, conversation, f"✅ Resolved by {agent.name}", now=now)
    elif action == "escalate":
        level = max((t.escalation_level for t in tickets), default=0) + 1
        escalate(session, settings, conversation, tickets, role=ESCALATION_ROLES[min(level, 2)],
                 by=agent.name, agent_id=agent.id, reason="escalated by an agent", now=now)
    elif action == "back_to_bot":
        conversation.status, conversation.owner_agent_id = "bot", None
        _tell_customer(session, settings, conversation, "back_to_bot", now=now)
        _note_thread(session, conversation, f"🤖 Handed back to the bot by {agent.name}", now=now)
    else:
        return DeskResult(False, f"unknown action {action}")
    record(session, actor=f"agent:{agent.id}", action=f"conversation.{action}", subject_type="conversation",
           subject_id=conversation.id, now=now)
    refresh_card(session, settings, conversation, now=now)
    return DeskResult(True, f"{action} done")


def sync_agents(session: Session, settings: Settings, *, now: datetime) -> None:
    """Agents listed in config are created or updated (never deleted: history points at them)."""
    for listed in settings.slack.agents:
        agent = session.execute(select(Agent).where(Agent.slack_user_id == listed.slack_user_id)).scalar_one_or_none()
        if agent is None:
            session.add(Agent(name=listed.name, slack_user_id=listed.slack_user_id, role=listed.role, active=True,
                              created_at=now))
        else:
            agent.name, agent.role, agent.active = listed.name, listed.role, True
