"""What an inbound message needs to know before it is handled, read in one statement where that is safe.

Every message needs its channel identity (locked), the customer, whether its provider id was seen before, and the
identity's open conversation. One SELECT answers all four (issue 18: three round trips less per message on SQLite,
two on PostgreSQL). On SQLite, whose writers are serialised by BEGIN IMMEDIATE, that is the only statement. On
PostgreSQL the identity row is locked by a statement of its own first (the UPDATE that notes the arrival): rows
joined into a `SELECT ... FOR UPDATE` come from the snapshot taken before the wait for the lock, so a duplicate, a
conversation or a customer's name the previous message of the same customer just committed would be missed; the
read after the lock sees them (READ COMMITTED takes a new snapshot per statement).

A web chat message also needs its browser session (it must exist; it holds the page's language): for the web chat
the same statement joins it, one statement less per message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import accumulate
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, exists, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from store import loaded
from store.models import ChannelIdentity, Conversation, Customer, Message, WebchatSession

WEBCHAT = "webchat"


@dataclass(frozen=True)
class InboundContext:
    identity: ChannelIdentity
    duplicate_of: int | None  # the id of the message stored with the same provider id
    conversation: Conversation | None  # the identity's open (not closed) conversation, if any
    # The web chat's session whose token is the address; None for another channel or a session that is gone.
    webchat_session: WebchatSession | None = None


def _statement(*, webchat: bool = False) -> Select[Any]:
    """The columns of the identity, its customer, its open conversation (if any), the duplicate's id and, for the
    web chat, the browser session (if any): Core, the objects made by store.loaded (the ORM query's loading cost
    more than the statement, issue 18)."""
    open_conversation = (
        select(Conversation.id)
        .where(Conversation.identity_id == ChannelIdentity.id, Conversation.status != "closed")
        .order_by(Conversation.id.desc()).limit(1)
        .correlate(ChannelIdentity).scalar_subquery()
    )
    duplicate = (
        select(Message.id)
        .where(Message.channel == bindparam("channel"), Message.provider_message_id == bindparam("provider_id"))
        .limit(1).scalar_subquery()
    )
    current = cast(Table, Conversation.__table__).alias("current")
    parts: list[Any] = [column for _, column in loaded.columns(ChannelIdentity)]
    parts += [column for _, column in loaded.columns(Customer)]
    parts += [current.c[column.key] for _, column in loaded.columns(Conversation)]
    parts.append(duplicate.label("duplicate_of"))
    statement = (
        select(*parts)
        .join_from(ChannelIdentity, Customer, Customer.id == ChannelIdentity.customer_id)
        .outerjoin(current, current.c.id == open_conversation)
        .where(ChannelIdentity.channel == bindparam("channel"), ChannelIdentity.address == bindparam("address"))
    )
    if webchat:
        statement = statement.add_columns(*(column for _, column in loaded.columns(WebchatSession))).outerjoin(
            WebchatSession, WebchatSession.token == ChannelIdentity.address)
    return statement


def _slices() -> tuple[slice, slice, slice, int, slice]:
    """Where the identity's, the customer's, the conversation's columns, the duplicate and the session's are."""
    ends = list(accumulate(len(loaded.columns(cls)) for cls in (ChannelIdentity, Customer, Conversation)))
    return slice(0, ends[0]), slice(ends[0], ends[1]), slice(ends[1], ends[2]), ends[2], slice(ends[2] + 1, None)


# Built once: an alias made per call would give the statement a new shape every time (measured: 18 column proxies
# built per message, a third of this function's cost).
_CONTEXT = _statement()
_CONTEXT_WEBCHAT = _statement(webchat=True)
_IDENTITY, _CUSTOMER, _CONVERSATION, _DUPLICATE, _SESSION = _slices()
_IDENTITIES = cast(Table, ChannelIdentity.__table__)
# PostgreSQL's lock is the UPDATE that notes the arrival (Pipeline._note_arrival then changes nothing there): one
# statement less per message than a SELECT ... FOR UPDATE and an UPDATE at the flush. A provider id seen before
# updates nothing, so a re-delivery does not move last_inbound_at (the WhatsApp window); it then takes the path of
# a first message, which finds the identity and the earlier message one by one. (Two deliveries of one message at
# the same moment: the second waits for the lock with a snapshot that has no original yet, so it does update; the
# context read after the lock then sees the original and it is ignored as a repeat, its time milliseconds later.)
_LOCK_NOTING_ARRIVAL = (
    update(_IDENTITIES)
    .where(_IDENTITIES.c.channel == bindparam("in_channel"), _IDENTITIES.c.address == bindparam("from_address"),
           ~exists().where(Message.channel == bindparam("in_channel"),
                           Message.provider_message_id == bindparam("provider_id")))
    .values(last_inbound_at=bindparam("arrived_at", type_=_IDENTITIES.c.last_inbound_at.type))
    .returning(_IDENTITIES.c.id)
)


def read_inbound_context(session: Session, channel: str, address: str,
                         provider_message_id: str, *, now: datetime) -> InboundContext | None:
    """The context of a message from an existing identity (see the module's docstring); None for a new address
    (and, on PostgreSQL, for a provider id seen before: see _LOCK_NOTING_ARRIVAL).

    The same rows store.customers.find_identity_locked, store.messages.find_by_provider_id and
    store.conversations.current_conversation read one by one.
    """
    if session.get_bind().dialect.name != "sqlite":
        locked = session.execute(_LOCK_NOTING_ARRIVAL, {  # UPDATE's parameters may not be named like its columns
            "in_channel": channel, "from_address": address, "provider_id": provider_message_id, "arrived_at": now,
        }).first()
        if locked is None:
            return None
    webchat = channel == WEBCHAT
    row = session.connection().execute(_CONTEXT_WEBCHAT if webchat else _CONTEXT, {
        "channel": channel, "address": address, "provider_id": provider_message_id}).first()
    if row is None:
        return None
    identity = loaded.attach_row(session, ChannelIdentity, row[_IDENTITY])
    customer = loaded.attach_row(session, Customer, row[_CUSTOMER])
    assert identity is not None and customer is not None  # inner joins
    # The relationship holds the customer: the session's identity map keeps only weak references.
    set_committed_value(identity, "customer", customer)
    return InboundContext(identity, row[_DUPLICATE], loaded.attach_row(session, Conversation, row[_CONVERSATION]),
                          loaded.attach_row(session, WebchatSession, row[_SESSION]) if webchat else None)
