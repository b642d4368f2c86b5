"""Whether a customer's address on a channel can be reached, and what the provider said about it.

One place for a provider's verdict, whether it came back at send time (`channels.base.Undeliverable`)
or later (a Twilio status callback with an error code, a Telegram `my_chat_member` update): the channel
identity is marked undeliverable with the reason, and a person who unsubscribed at the provider (Twilio
21610: they replied STOP to the carrier) has their marketing consent withdrawn with the provider's words
as evidence. Blocking a bot is not a consent answer, so it only marks the address.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.consents import current, record
from store.models import ChannelIdentity


def identity_at(session: Session, channel: str, address: str) -> ChannelIdentity | None:
    return session.execute(
        select(ChannelIdentity).where(ChannelIdentity.channel == channel, ChannelIdentity.address == address)
    ).scalar_one_or_none()


def record_refusal(session: Session, channel: str, address: str, *, reason: str, unsubscribed: bool,
                   evidence: str, now: datetime) -> ChannelIdentity | None:
    """The provider refused this address for good; None if no customer has it."""
    identity = identity_at(session, channel, address)
    if identity is None:
        return None
    if identity.undeliverable_reason != reason[:300]:  # a re-delivered report changes nothing
        identity.undeliverable_reason = reason[:300]
        identity.undeliverable_at = now
    if unsubscribed and current(session, identity.customer_id, "marketing") is not False:
        record(session, identity.customer_id, "marketing", False, channel=channel,
               evidence=f"provider: {evidence}"[:500], now=now)
    return identity


def record_reachable(session: Session, channel: str, address: str) -> ChannelIdentity | None:
    """The provider says the address works again (a Telegram user unblocked the bot)."""
    identity = identity_at(session, channel, address)
    if identity is not None and identity.undeliverable_reason is not None:
        identity.undeliverable_reason = None
        identity.undeliverable_at = None
    return identity
