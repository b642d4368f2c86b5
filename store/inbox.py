"""The staff inbox, as queries: the queue of conversations people handle, a customer's transcript, live markers.

Read-only and face-neutral (the console's pages render them; handlers/desk.py changes what they show). Built to
stay fast at 10,000 open conversations and 5,000-message transcripts (bench/inbox.py): the queue sorts only the
narrow (VIP, waiting since, id) keys of the filtered conversations, found through ix_conversations_status_
handed_off_at, and loads the details of one page; a transcript is a walk down ix_messages_customer_id_id.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, TypeVar, get_args

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from store.models import Agent, ChannelIdentity, Conversation, Customer, Message, Ticket

QueueStatus = Literal["open", "waiting", "with_agent", "closed"]
QUEUE_STATUSES: Final[tuple[str, ...]] = get_args(QueueStatus)
OPEN_STATUSES: Final = ("waiting", "with_agent")
OPEN_TICKETS: Final = ("open", "in_progress", "reopened")
# Any select over conversations, its column types kept as they came.
Query = TypeVar("Query", bound=Select[*tuple[Any, ...]])
MAX_PAGE: Final = 200  # rows a queue page may ask for
PREVIEW_CHARS: Final = 120


@dataclass(frozen=True)
class QueueFilters:
    """Which conversations: `mine` (held by the viewer), `unassigned` (held by nobody), `vip`, one `channel`, and
    `status`: open (waiting + with_agent), waiting, with_agent, or closed (conversations people had, newest first)."""

    mine: bool = False
    unassigned: bool = False
    vip: bool = False
    channel: str | None = None
    status: QueueStatus = "open"


@dataclass(frozen=True)
class QueueRow:
    conversation_id: int
    customer_id: int
    customer_name: str | None  # the customer's name, else the channel's display name
    vip: bool
    vip_tier: str | None
    channel: str
    language: str
    status: str
    owner_id: int | None
    owner_name: str | None
    waiting_since: datetime  # handed to people at (when it was never handed off: opened at)
    sla_due: datetime | None  # earliest unanswered first-response due, else earliest resolution due, of open tickets
    last_message_at: datetime
    last_text: str | None  # the customer's last message in this conversation, shortened


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    next_cursor: str | None  # opaque; None on the last page
    total: int  # conversations matching the filters, on every page


@dataclass(frozen=True)
class TranscriptPage:
    messages: list[Message]  # oldest first
    older_cursor: int | None  # pass as before_id for the page before this one; None at the start of the history


def queue(session: Session, *, viewer_id: int, filters: QueueFilters, limit: int = 50,
          cursor: str | None = None) -> QueuePage:
    """One page of the queue: VIPs first, then the longest waiting (then id); closed ones newest first.

    Raises ValueError for a malformed or foreign cursor, an unknown status or a limit outside 1..MAX_PAGE.
    """
    if filters.status not in QUEUE_STATUSES:
        raise ValueError(f"unknown status {filters.status!r}; use one of {', '.join(QUEUE_STATUSES)}")
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
    closed = filters.status == "closed"
    since, vip = _since(closed), _vip()
    keys = _filtered(select(Conversation.id, vip.label("is_vip"), since.label("since")), filters, viewer_id)
    if cursor is not None:
        keys = keys.where(_after(_decode(cursor, closed), since, closed))
    order = ((since.desc(), Conversation.id.desc()) if closed else
             (vip.desc(), since.asc(), Conversation.id.asc()))
    found = session.execute(keys.order_by(*order).limit(limit + 1)).all()
    page = found[:limit]
    last = page[-1] if page and len(found) > limit else None
    return QueuePage(rows=_rows(session, [row.id for row in page]),
                     next_cursor=_encode(closed, bool(last.is_vip), last.since, last.id) if last else None,
                     total=count(session, viewer_id=viewer_id, filters=filters))


def count(session: Session, *, viewer_id: int, filters: QueueFilters) -> int:
    """How many conversations match the filters (the queue's total; a badge's number)."""
    query = select(func.count()).select_from(Conversation)
    return int(session.execute(_filtered(query, filters, viewer_id)).scalar_one())


def transcript(session: Session, customer_id: int, *, before_id: int | None = None,
               limit: int = 100) -> TranscriptPage:
    """The customer's messages across every conversation and channel, notes included, newest page first."""
    query = select(Message).where(Message.customer_id == customer_id)
    if before_id is not None:
        query = query.where(Message.id < before_id)
    found = list(session.execute(query.order_by(Message.id.desc()).limit(limit + 1)).scalars())
    page = found[:limit][::-1]
    return TranscriptPage(messages=page, older_cursor=page[0].id if len(found) > limit else None)


def messages_after(session: Session, customer_id: int, after_id: int, limit: int = 200) -> list[Message]:
    """What the customer's transcript gained since message `after_id` (live updates), oldest first."""
    return list(session.execute(
        select(Message).where(Message.customer_id == customer_id, Message.id > after_id)
        .order_by(Message.id).limit(limit)
    ).scalars())


def queue_marker(session: Session) -> str:
    """A short string that changes whenever the open queue does: a handoff, a claim, a transfer, a close, or a
    message in an open conversation (which moves its last_message_at past every other). One aggregate over the
    open conversations, for a live page to poll; the VIP flag and ticket dues are read on the next refresh."""
    row = session.execute(
        select(func.count(), func.max(Conversation.id), func.sum(func.coalesce(Conversation.owner_agent_id, 0)),
               func.sum(func.coalesce(Conversation.owner_agent_id, 0) * (Conversation.id % 997 + 1)),
               func.count(Conversation.owner_agent_id), func.max(Conversation.last_message_at))
        .where(Conversation.status.in_(OPEN_STATUSES))
    ).one()
    count, newest, owners, spread, held, latest = row
    return f"{count}:{newest or 0}:{owners or 0}:{spread or 0}:{held}:{latest.isoformat() if latest else '-'}"


# --- the queue's parts -------------------------------------------------------------------------------------------


def _since(closed: bool) -> ColumnElement[datetime]:
    """Open: when people were asked (a conversation taken without a handoff: when it opened). Closed: the handoff;
    conversations that never reached people (the bot's, closed for idleness) are not the desk's history."""
    if closed:
        return Conversation.handed_off_at  # type: ignore[return-value]  # never NULL under _filtered's condition
    return func.coalesce(Conversation.handed_off_at, Conversation.opened_at)


def _vip() -> ColumnElement[bool]:
    """The customer's VIP flag, looked up by primary key for each conversation. Not a join: joined, SQLite's planner
    answered "VIPs only" by reading every customer (no index on is_vip) and looking up their conversations."""
    return select(Customer.is_vip).where(Customer.id == Conversation.customer_id).scalar_subquery()


def _filtered(query: Query, filters: QueueFilters, viewer_id: int) -> Query:
    if filters.status == "open":
        query = query.where(Conversation.status.in_(OPEN_STATUSES))
    else:
        query = query.where(Conversation.status == filters.status)
    if filters.status == "closed":
        query = query.where(Conversation.handed_off_at.is_not(None))
    if filters.mine:
        query = query.where(Conversation.owner_agent_id == viewer_id)
    if filters.unassigned:
        query = query.where(Conversation.owner_agent_id.is_(None))
    if filters.vip:
        query = query.where(_vip().is_(True))
    if filters.channel is not None:
        query = query.where(Conversation.channel == filters.channel)
    return query


def _after(position: tuple[bool, datetime, int], since: ColumnElement[datetime], closed: bool) -> ColumnElement[bool]:
    """The rows after `position` in the queue's order (keyset pagination: a deep page costs what the first does)."""
    vip, moment, last_id = position
    if closed:
        return or_(since < moment, and_(since == moment, Conversation.id < last_id))
    later = or_(since > moment, and_(since == moment, Conversation.id > last_id))
    if vip:  # the rest of the VIPs, then every other customer
        return or_(_vip().is_(False), later)
    return and_(_vip().is_(False), later)


def _rows(session: Session, ids: Sequence[int]) -> list[QueueRow]:
    """The page's rows, in the order of `ids`, from one query for the conversations and one each for the customers'
    last words and their tickets' dues."""
    if not ids:
        return []
    owner = aliased(Agent)
    found = {row.id: row for row in session.execute(
        select(Conversation.id, Conversation.customer_id, Conversation.channel, Conversation.language,
               Conversation.status, Conversation.owner_agent_id, Conversation.handed_off_at, Conversation.opened_at,
               Conversation.last_message_at, Customer.name, Customer.is_vip, Customer.vip_tier,
               ChannelIdentity.display_name, owner.name.label("owner_name"))
        .join(Customer, Customer.id == Conversation.customer_id)
        .join(ChannelIdentity, ChannelIdentity.id == Conversation.identity_id)
        .outerjoin(owner, owner.id == Conversation.owner_agent_id)
        .where(Conversation.id.in_(ids))
    )}
    previews = _last_words(session, ids)
    dues = _sla_dues(session, {row.customer_id for row in found.values()})
    return [QueueRow(
        conversation_id=row.id, customer_id=row.customer_id, customer_name=row.name or row.display_name,
        vip=bool(row.is_vip), vip_tier=row.vip_tier, channel=row.channel, language=row.language, status=row.status,
        owner_id=row.owner_agent_id, owner_name=row.owner_name, waiting_since=row.handed_off_at or row.opened_at,
        sla_due=dues.get(row.customer_id), last_message_at=row.last_message_at, last_text=previews.get(row.id),
    ) for row in (found[i] for i in ids)]


def _last_words(session: Session, ids: Sequence[int]) -> dict[int, str]:
    """conversation id → a preview of the customer's last message in it (each a short walk back on
    ix_messages_conversation_id_id)."""
    newest = (select(Message.id).where(Message.conversation_id == Conversation.id, Message.direction == "in")
              .order_by(Message.id.desc()).limit(1).scalar_subquery())
    message_ids = [m for m in session.execute(
        select(newest).where(Conversation.id.in_(ids))).scalars() if m is not None]
    if not message_ids:
        return {}
    rows = session.execute(select(Message.conversation_id, Message.text, Message.media)
                           .where(Message.id.in_(message_ids)))
    return {row.conversation_id: _preview(row.text, row.media) for row in rows}


def _preview(text: str, media: list[Any] | None) -> str:
    words = " ".join((text or "").split())
    if not words and media:
        first = media[0] if isinstance(media[0], dict) else {}
        words = f"📎 {first.get('file_name') or first.get('kind') or 'file'}"
    return words if len(words) <= PREVIEW_CHARS else words[: PREVIEW_CHARS - 1] + "…"


def _sla_dues(session: Session, customer_ids: set[int]) -> dict[int, datetime]:
    """customer id → the due time the desk must meet first: the earliest unanswered first response, else the
    earliest resolution, of the customer's open tickets."""
    if not customer_ids:
        return {}
    first: dict[int, datetime] = {}
    resolution: dict[int, datetime] = {}
    for row in session.execute(
        select(Ticket.customer_id, Ticket.first_response_due_at, Ticket.first_responded_at, Ticket.resolution_due_at)
        .where(Ticket.customer_id.in_(customer_ids), Ticket.status.in_(OPEN_TICKETS))
    ):
        if row.first_response_due_at is not None and row.first_responded_at is None:
            first[row.customer_id] = min(first.get(row.customer_id, row.first_response_due_at),
                                         row.first_response_due_at)
        if row.resolution_due_at is not None:
            resolution[row.customer_id] = min(resolution.get(row.customer_id, row.resolution_due_at),
                                              row.resolution_due_at)
    return {**resolution, **first}


# --- cursors: opaque to the web, checked here ----------------------------------------------------------------------


def _encode(closed: bool, vip: bool, since: datetime, conversation_id: int) -> str:
    raw = json.dumps(["c" if closed else "o", int(vip), since.isoformat(), conversation_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str, closed: bool) -> tuple[bool, datetime, int]:
    """(vip, waiting since, conversation id) of the last row of the previous page."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        kind, vip, since, conversation_id = json.loads(raw)
        moment = datetime.fromisoformat(since)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise ValueError("malformed queue cursor") from exc
    if kind != ("c" if closed else "o") or vip not in (0, 1) or type(conversation_id) is not int:
        raise ValueError("the queue cursor belongs to another listing")
    if moment.tzinfo is None:
        raise ValueError("malformed queue cursor")
    return bool(vip), moment, conversation_id
