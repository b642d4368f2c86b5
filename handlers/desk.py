"""The agent desk: one service for every face staff work from (the web console and Slack), plus Slack's cards.

`act`, `reply`, `add_note` and `set_availability` are the desk service, keyed by the acting member of staff (an
`Agent` row): who may act (handlers/permissions.py), what the customer is told, ticket assignment and events, the
SLA clocks, CSAT after a resolve (handlers/sla.py schedules it), the audit log and the Slack card all follow from
them, whichever face called. The Slack face (handlers/desk_slack.py: `agent_action`, `agent_reply`, `take_over`)
only finds the member of staff behind a Slack user, calls the service and says the outcome in Slack.

Only queue rows and state changes here (no network): Slack posts are outbox rows on channel "slack", rendered by
the Slack adapter from the card data built below. With Slack off, nothing is queued for Slack.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, get_args

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.templating import render
from handlers import sla
from handlers.desk_files import address_files, file_entry, shareable
from handlers.permissions import ROLE_NAMES, can
from handlers.slack_text import attachment_lines, escape_slack
from store.audit import record
from store.inbox import OPEN_TICKETS
from store.messages import add_desk_post, add_outbound
from store.models import Agent, ChannelIdentity, Conversation, Customer, Message, Ticket, TicketEvent

log = logging.getLogger(__name__)
OPEN_TICKET = OPEN_TICKETS  # the name the handlers have imported since issue 3

Face = Literal["web", "slack"]  # where the member of staff works: what they typed there needs no echo there
DeskAction = Literal["claim", "resolve", "escalate", "back_to_bot", "takeover", "transfer"]
DESK_ACTIONS: Final[tuple[str, ...]] = get_args(DeskAction)
Availability = Literal["online", "away"]
AVAILABILITIES: Final[tuple[str, ...]] = get_args(Availability)
# What happened, for a face to word in its own language: `note` is plain English, never markup.
DeskCode = Literal[
    "done",  # the action happened
    "claimed",  # a takeover of a conversation nobody held: it was claimed
    "already_yours",  # the actor holds it already; nothing changed
    "unchanged",  # a transfer to the member of staff who holds it already; nothing changed
    "held_by_other",  # a claim of a conversation someone else holds (see `holder`); nothing changed
    "closed",  # the conversation is closed; only escalate works on it
    "forbidden",  # the actor's role may not do this
    "not_found",  # no such conversation
    "invalid",  # an unknown action, a transfer without a (valid) colleague to receive it
    "empty",  # a reply or note without words or files
    "undeliverable",  # a reply of files only, none of which can reach this customer
]
FACE_WORDS: Final[dict[str, str]] = {"web": "in the console", "slack": "in Slack"}


def ticket_reference(ticket_id: int) -> str:
    return f"TKT-{ticket_id:06d}"


@dataclass(frozen=True)
class DeskResult:
    """What a desk request changed: `ok`, a plain-English `note`, a `code` a face can word itself, and `holder`
    (the name of whoever holds the conversation) when that is the answer, e.g. a claim refused as held by Sari."""

    ok: bool
    note: str
    code: DeskCode = "done"
    holder: str | None = None


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
        # The card's channel is known now, its ts only once Slack has it: thread posts and card updates queued in
        # between (a claim in the console a second after the handoff) go to this channel and wait for the ts.
        conversation.desk_channel = conversation.desk_channel or target
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


def _note_thread(session: Session, settings: Settings, conversation: Conversation, text: str, *,
                 now: datetime) -> None:
    """A line in the card's Slack thread, so the desk in Slack sees what happened elsewhere."""
    if enabled(settings):
        thread_post(session, conversation, text, now=now)


def thread_post(session: Session, conversation: Conversation, text: str, *, now: datetime) -> None:
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


def mention(agent: Agent) -> str:
    """A member of staff in Slack: pinged when they have a Slack identity, named otherwise (console only)."""
    return f"<@{agent.slack_user_id}>" if agent.slack_user_id else escape_slack(agent.name)


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
    if enabled(settings):
        _escalation_card(session, settings, conversation, tickets, role=role, level=level, by=by, reason=reason,
                         now=now)
    _tell_customer(session, settings, conversation, "escalated", now=now)
    _note_thread(session, settings, conversation,
                 f"🚨 Escalated to {role} by {escape_slack(by)}: {escape_slack(reason)}", now=now)


def _escalation_card(session: Session, settings: Settings, conversation: Conversation, tickets: list[Ticket], *,
                     role: str, level: int, by: str, reason: str, now: datetime) -> None:
    """The escalation card in Slack, mentioning the people of that role."""
    people = session.execute(select(Agent).where(Agent.role == role, Agent.active.is_(True))).scalars()
    mentions = " ".join(f"<@{p.slack_user_id}>" for p in people if p.slack_user_id)
    data = card(session, settings, conversation, title=f"Escalation level {level} ({role}): {reason}", now=now)
    data["mention"] = mentions or data["mention"]
    refs = ", ".join(ticket_reference(t.id) for t in tickets)
    add_desk_post(session, recipient=settings.slack.escalation_channel or settings.slack.queue_channel,
                  text=f"🚨 Escalation level {level} to {role}: {escape_slack(data['customer_name'])}, {refs} "
                       f"({escape_slack(reason)}; by {escape_slack(by)})",
                  now=now, conversation_id=conversation.id, options={"card": data})


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


# --- the desk service: what any face (console, Slack) calls --------------------------------------------------------


@dataclass(frozen=True)
class _Desk:
    """One request to the desk: who acts on which conversation, when, and from which face."""

    session: Session
    settings: Settings
    conversation: Conversation
    agent: Agent
    now: datetime
    face: Face

    def note(self, text: str) -> None:
        _note_thread(self.session, self.settings, self.conversation, text, now=self.now)

    def holder(self) -> Agent | None:
        """Who holds the conversation now; nobody while it waits in the queue or is with the bot."""
        owner_id = self.conversation.owner_agent_id
        if self.conversation.status != "with_agent" or owner_id is None:
            return None
        return self.session.get(Agent, owner_id)

    def audit(self, action: str, detail: dict[str, Any] | None = None) -> None:
        record(self.session, actor=f"agent:{self.agent.id}", action=f"conversation.{action}",
               subject_type="conversation", subject_id=self.conversation.id, now=self.now,
               detail={"face": self.face, **(detail or {})})


def may_act(agent: Agent) -> bool:
    """Whether this member of staff may work on conversations at all (claim, reply, note, resolve...)."""
    return agent.active and can(agent.role, "conversation.act")


def act(session: Session, settings: Settings, *, action: str, conversation_id: int, agent: Agent, now: datetime,
        to_agent_id: int | None = None, face: Face = "web") -> DeskResult:
    """Claim, resolve, escalate, hand back to the bot, take over or transfer (to `to_agent_id`) a conversation.

    The same for every face: `face` only names where the actor works, so what they did there is not echoed back
    there and the record says where it happened. Nothing changes when the result is not ok.
    """
    conversation = _locked(session, conversation_id)
    if conversation is None:
        return DeskResult(False, "no such conversation", "not_found")
    desk = _Desk(session, settings, conversation, agent, now, face)
    if not may_act(agent):
        return _forbidden(agent, action.replace("_", " "))
    if conversation.status == "closed" and action != "escalate":  # a closed complaint can still go up the ladder
        return DeskResult(False, "conversation already closed", "closed")
    step = _ACTIONS.get(action)
    if step is None:
        return DeskResult(False, f"unknown action {action}", "invalid")
    return step(desk, to_agent_id)


def reply(session: Session, settings: Settings, *, conversation_id: int, agent: Agent, text: str, now: datetime,
          files: Sequence[Mapping[str, Any]] = (), face: Face = "web") -> DeskResult:
    """Send the customer an agent's words (and `files`, Slack files as channels.slack.SharedFile.as_dict) on the
    conversation's channel. A conversation nobody holds becomes the replier's; the first answer stops the
    first-response clock. A reply typed in the console is mirrored into the card's Slack thread."""
    conversation = _locked(session, conversation_id)
    if conversation is None:
        return DeskResult(False, "no such conversation", "not_found")
    desk = _Desk(session, settings, conversation, agent, now, face)
    if not may_act(agent):
        return _forbidden(agent, "reply to")
    if conversation.status == "closed":
        return DeskResult(False, "conversation closed; the customer was not messaged", "closed")
    words = text.strip()
    if not words and not files:
        return DeskResult(False, "nothing to send", "empty")
    sendable, refused = shareable(settings, conversation, files, now=now)
    for name, why in refused:
        desk.note(f"⚠️ {mention(agent)} {escape_slack(name)} was not sent to the customer: {escape_slack(why)}")
    if not words and not sendable:
        return DeskResult(False, "no file could be sent", "undeliverable")
    if conversation.status != "with_agent" or conversation.owner_agent_id is None:
        _on_desk(desk)
        conversation.status, conversation.owner_agent_id = "with_agent", agent.id
        refresh_card(session, settings, conversation, now=now)
    _send(desk, words, sendable)
    _first_response(session, conversation, agent, now)
    if face != "slack":  # typed in Slack, it is in the thread already
        desk.note(f"💬 *{escape_slack(agent.name)}* ({face}): {escape_slack(words)}")
    return DeskResult(True, "sent to the customer")


def add_note(session: Session, settings: Settings, *, conversation_id: int, agent: Agent, text: str, now: datetime,
             face: Face = "web") -> DeskResult:
    """An internal note on the conversation (direction "note"): never sent to the customer, shown to staff in the
    transcript, and in the card's Slack thread when written in the console. Closed conversations take notes too."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        return DeskResult(False, "no such conversation", "not_found")
    if not may_act(agent):
        return _forbidden(agent, "write notes on")
    words = text.strip()
    if not words:
        return DeskResult(False, "the note is empty", "empty")
    session.add(Message(conversation_id=conversation.id, customer_id=conversation.customer_id,
                        channel=conversation.channel, direction="note", sender="agent", agent_id=agent.id,
                        text=words, buttons=[], media=[], meta={}, created_at=now))
    if face != "slack":
        _note_thread(session, settings, conversation, f"📝 Note by {escape_slack(agent.name)}: {escape_slack(words)}",
                     now=now)
    return DeskResult(True, "internal note kept")


def set_availability(session: Session, agent: Agent, availability: str, *, now: datetime) -> None:
    """Online or away: whether this member of staff is there to answer (handlers/handoff.py tells customers so).
    Audited as `staff.availability`; saying the same again changes nothing and writes nothing."""
    if availability not in AVAILABILITIES:
        raise ValueError(f"availability is one of {', '.join(AVAILABILITIES)}, not {availability!r}")
    if agent.availability == availability and agent.availability_changed_at is not None:
        return
    before = agent.availability
    agent.availability, agent.availability_changed_at = availability, now
    record(session, actor=f"agent:{agent.id}", action="staff.availability", subject_type="staff",
           subject_id=agent.id, now=now, detail={"from": before, "to": availability})


def staff_for_transfer(session: Session) -> list[Agent]:
    """Active staff whose role may answer conversations, online first, then by name: who can receive a transfer."""
    staff = session.execute(select(Agent).where(Agent.active.is_(True))).scalars()
    able = [agent for agent in staff if can(agent.role, "conversation.act")]
    return sorted(able, key=lambda agent: (agent.availability != "online", agent.name.lower(), agent.id))


PRESENCE = timedelta(minutes=10)  # an open console page reconnects its live stream every 5 minutes at most


def someone_can_answer(session: Session, *, now: datetime) -> bool:
    """Whether a person can answer a customer now (business hours aside; handlers/handoff.py asks).

    Yes when a member of staff who may act is online and there: a console user counts while the console has seen
    them within PRESENCE (every open page's live stream reconnects, and so signs in afresh, every few minutes), so
    closing the browser without pressing "Away" does not leave customers promised a quick answer for hours; a
    Slack-only agent (no console password) counts by what they said (`/sapa online|away`). Availability is known only
    for staff who have set it: a Slack agent who never did counts as present, as before issue 16. With no staff who
    may act at all (a bare installation, or agents outside Sapa) the answer is yes too, so that installations without
    staff rows keep today's texts.
    """
    staff = staff_for_transfer(session)
    if not staff:
        return True
    return any(present(a, now) for a in staff)


def present(agent: Agent, now: datetime) -> bool:
    """Whether this member of staff counts as able to answer now (someone_can_answer's rule, also the dashboard's)."""
    if agent.availability != "online":
        return agent.availability_changed_at is None and agent.slack_user_id is not None
    if agent.password_hash is None:
        return True
    return agent.last_seen_at is not None and now - agent.last_seen_at <= PRESENCE


def _locked(session: Session, conversation_id: int) -> Conversation | None:
    """The conversation, read afresh and locked until the unit of work commits (PostgreSQL's FOR UPDATE; SQLite
    serializes writing units of work already). Two people pressing Claim at once, in the console and in Slack, are
    then served one after the other, and the second sees the first one's claim."""
    return session.get(Conversation, conversation_id, with_for_update=True, populate_existing=True)


def _forbidden(agent: Agent, doing: str) -> DeskResult:
    role = ROLE_NAMES.get(agent.role, {}).get("en", agent.role)
    if not agent.active:
        return DeskResult(False, f"{agent.name}'s account is disabled", "forbidden")
    return DeskResult(False, f"the role {role} cannot {doing} conversations", "forbidden")


def _send(desk: _Desk, words: str, files: Sequence[Mapping[str, Any]]) -> None:
    conversation, session = desk.conversation, desk.session
    identity = session.get_one(ChannelIdentity, conversation.identity_id)
    customer = session.get_one(Customer, conversation.customer_id)
    message = add_outbound(session, conversation, recipient=identity.address, text=words, now=desk.now,
                           sender="agent", agent_id=desk.agent.id, media=[file_entry(f) for f in files] or None,
                           template_variables={"name": customer.name or "", "company": desk.settings.company.name})
    if files:
        address_files(session, desk.settings, conversation, message, now=desk.now)


def _on_desk(desk: _Desk) -> None:
    """A conversation a person takes that never went through a handoff (the bot had it) gets one now: its card in
    Slack and a place in the queue's order, as if the customer had asked for a person."""
    if desk.conversation.handed_off_at is None:
        post_handoff(desk.session, desk.settings, desk.conversation,
                     reason=f"taken by {desk.agent.name} {FACE_WORDS[desk.face]}", now=desk.now)


def _hand_to(desk: _Desk, to: Agent, detail: dict[str, Any]) -> None:
    """`to` holds the conversation now, with its customer's open tickets, and the customer hears who helps."""
    _on_desk(desk)
    desk.conversation.status, desk.conversation.owner_agent_id = "with_agent", to.id
    for ticket in open_tickets(desk.session, desk.conversation.customer_id):
        ticket.assigned_agent_id, ticket.status, ticket.updated_at = to.id, "in_progress", desk.now
        desk.session.add(TicketEvent(ticket_id=ticket.id, kind="assigned", agent_id=to.id, detail=detail,
                                     created_at=desk.now))
    _tell_customer(desk.session, desk.settings, desk.conversation, "agent_joined", now=desk.now, agent=to,
                   agent_name=to.name)
    _first_response(desk.session, desk.conversation, to, desk.now)


def _done(desk: _Desk, action: str, note: str, detail: dict[str, Any] | None = None) -> DeskResult:
    desk.audit(action, detail)
    refresh_card(desk.session, desk.settings, desk.conversation, now=desk.now)
    return DeskResult(True, note)


def _claim(desk: _Desk, _to: int | None = None) -> DeskResult:
    holder = desk.holder()
    if holder is not None and holder.id == desk.agent.id:
        return DeskResult(True, "already yours", "already_yours", holder.name)
    if holder is not None:  # never a silent takeover: taking it from someone is `takeover`, explicitly
        return DeskResult(False, f"held by {holder.name}", "held_by_other", holder.name)
    _hand_to(desk, desk.agent, {"by": "claim"})
    desk.note(f"✋ Claimed by {escape_slack(desk.agent.name)}")
    return _done(desk, "claim", "claim done")


def _resolve(desk: _Desk, _to: int | None = None) -> DeskResult:
    tickets = open_tickets(desk.session, desk.conversation.customer_id)
    for ticket in tickets:
        ticket.status, ticket.resolved_at, ticket.updated_at = "resolved", desk.now, desk.now
        sla.resolved(desk.session, desk.settings, ticket, now=desk.now)  # stops the clocks, schedules the CSAT
        ticket.resolution = ticket.resolution or f"Resolved {FACE_WORDS[desk.face]} by {desk.agent.name}"
        desk.session.add(TicketEvent(ticket_id=ticket.id, kind="resolved", agent_id=desk.agent.id, detail={},
                                     created_at=desk.now))
    _tell_customer(desk.session, desk.settings, desk.conversation, "resolved", now=desk.now, agent=desk.agent,
                   tickets=", ".join(ticket_reference(t.id) for t in tickets))
    desk.conversation.status, desk.conversation.closed_at = "closed", desk.now
    desk.note(f"✅ Resolved by {escape_slack(desk.agent.name)}")
    return _done(desk, "resolve", "resolve done")


def _escalate(desk: _Desk, _to: int | None = None) -> DeskResult:
    tickets = open_tickets(desk.session, desk.conversation.customer_id)
    level = max((t.escalation_level for t in tickets), default=0) + 1
    escalate(desk.session, desk.settings, desk.conversation, tickets, role=ESCALATION_ROLES[min(level, 2)],
             by=desk.agent.name, agent_id=desk.agent.id, reason="escalated by an agent", now=desk.now)
    return _done(desk, "escalate", "escalate done")


def _back_to_bot(desk: _Desk, _to: int | None = None) -> DeskResult:
    desk.conversation.status, desk.conversation.owner_agent_id = "bot", None
    _tell_customer(desk.session, desk.settings, desk.conversation, "back_to_bot", now=desk.now)
    desk.note(f"🤖 Handed back to the bot by {escape_slack(desk.agent.name)}")
    return _done(desk, "back_to_bot", "back_to_bot done")


def _take_over(desk: _Desk, _to: int | None = None) -> DeskResult:
    """A supervisor (or management) takes a conversation from the agent holding it, explicitly.

    The tickets follow, the customer hears who is helping now, the previous holder is mentioned in the card's
    thread, and the audit log records who took it from whom. Nobody holding it: this is a plain claim.
    """
    if not can(desk.agent.role, "conversation.reassign"):
        return DeskResult(False, "only supervisors and management can take over a conversation another agent "
                          "holds", "forbidden")
    holder, agent = desk.holder(), desk.agent
    if holder is None:
        result = _claim(desk)
        return DeskResult(result.ok, "nobody held it: claimed", "claimed") if result.ok else result
    if holder.id == agent.id:
        return DeskResult(True, "already yours", "already_yours", holder.name)
    desk.conversation.owner_agent_id = agent.id
    for ticket in open_tickets(desk.session, desk.conversation.customer_id):
        if ticket.assigned_agent_id != agent.id:
            ticket.assigned_agent_id, ticket.updated_at = agent.id, desk.now
            desk.session.add(TicketEvent(ticket_id=ticket.id, kind="assigned", agent_id=agent.id,
                                         detail={"by": "takeover", "from_agent_id": holder.id}, created_at=desk.now))
    _tell_customer(desk.session, desk.settings, desk.conversation, "agent_joined", now=desk.now, agent=agent,
                   agent_name=agent.name)
    desk.note(f"🔀 {escape_slack(agent.name)} ({agent.role.replace('_', ' ')}) took over this conversation from "
              f"{mention(holder)}, who no longer holds it.")
    result = _done(desk, "takeover", f"taken over from {holder.name}",
                   {"from_agent_id": holder.id, "from": holder.name, "to_agent_id": agent.id, "to": agent.name})
    return DeskResult(result.ok, result.note, "done", holder.name)


def _transfer(desk: _Desk, to_agent_id: int | None) -> DeskResult:
    """Hand the conversation to another member of staff who may act: its holder may, and anyone who may reassign
    (supervisors, management) may for any conversation. Tickets follow, the customer hears who helps now, the
    receiver is mentioned in the card's thread."""
    target = desk.session.get(Agent, to_agent_id) if to_agent_id is not None else None
    if target is None or not may_act(target):
        return DeskResult(False, "choose an active colleague who can answer conversations", "invalid")
    holder = desk.holder()
    if holder is not None and holder.id == target.id:
        return DeskResult(True, f"{target.name} holds it already", "unchanged", holder.name)
    mine = holder is not None and holder.id == desk.agent.id
    if not mine and not can(desk.agent.role, "conversation.reassign"):
        return DeskResult(False, "only its holder, supervisors and management can transfer a conversation",
                          "forbidden", holder.name if holder else None)
    _hand_to(desk, target, {"by": "transfer", "from_agent_id": holder.id if holder else None,
                            "by_agent_id": desk.agent.id})
    source = f"from {mention(holder)}" if holder is not None else "from the queue"
    desk.note(f"🔀 {escape_slack(desk.agent.name)} transferred this conversation {source} to {mention(target)}.")
    return _done(desk, "transfer", f"transferred to {target.name}",
                 {"from_agent_id": holder.id if holder else None, "from": holder.name if holder else None,
                  "to_agent_id": target.id, "to": target.name})


_ACTIONS: Final[dict[str, Callable[[_Desk, int | None], DeskResult]]] = {
    "claim": _claim, "resolve": _resolve, "escalate": _escalate, "back_to_bot": _back_to_bot,
    "takeover": _take_over, "transfer": _transfer,
}


def sync_agents(session: Session, settings: Settings, *, now: datetime) -> None:
    """Agents listed in config (`slack.agents`) are created, or their name and role updated; never deleted (history
    points at them) and never re-enabled: someone disabled in the console or with `sapa staff disable` stays
    disabled after a restart even while the config still lists them (issue 16: the staff table is the truth)."""
    for listed in settings.slack.agents:
        agent = session.execute(select(Agent).where(Agent.slack_user_id == listed.slack_user_id)).scalar_one_or_none()
        if agent is None:
            session.add(Agent(name=listed.name, slack_user_id=listed.slack_user_id, role=listed.role, active=True,
                              created_at=now))
        else:
            agent.name, agent.role = listed.name, listed.role
