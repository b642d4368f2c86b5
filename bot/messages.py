"""The message types every layer shares. Frozen dataclasses, no I/O (a leaf module)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

DeliveryStatus = Literal["queued", "sent", "delivered", "read", "failed"]


# What a customer can send besides words. "sticker" is an image meant as an emoji; "voice" a voice note.
MediaKind = Literal["image", "video", "audio", "voice", "document", "sticker"]


@dataclass(frozen=True)
class Media:
    """A reference to media the customer sent; the bytes stay with the provider.

    `url` is the provider's reference: an https URL (Twilio, behind the account's credentials) or
    `telegram:file/<file_id>`. Agents never see it bare: they get an authenticated Sapa link.
    """

    url: str
    content_type: str | None = None
    kind: MediaKind | None = None
    file_name: str | None = None


@dataclass(frozen=True)
class Location:
    """A place the customer shared (Telegram location/venue, WhatsApp location)."""

    latitude: float
    longitude: float
    name: str | None = None  # a venue's title or WhatsApp's Label
    address: str | None = None


@dataclass(frozen=True)
class SharedContact:
    """A contact card the customer shared: their own (which proves their phone) or someone else's."""

    name: str
    phone: str | None = None  # as the card gives it
    own: bool = False


@dataclass(frozen=True)
class Button:
    """A quick-reply option: what the customer sees and what comes back when pressed."""

    title: str
    payload: str


@dataclass(frozen=True)
class InboundMessage:
    """One message from a customer, normalised by its channel adapter."""

    channel: str
    sender: str  # address on that channel: E.164 phone, Telegram user id, web chat session id
    provider_message_id: str  # the idempotency key: a repeat of it is ignored
    text: str
    received_at: datetime
    display_name: str | None = None
    language_hint: str | None = None
    media: tuple[Media, ...] = ()
    button_payload: str | None = None
    phone: str | None = None  # E.164 phone the channel vouches for (SMS, WhatsApp): joins that customer
    shared_phone: str | None = None  # a phone the customer shared as their own contact (Telegram)
    edit_of: str | None = None  # provider id of the earlier message this one edits
    deep_link: str | None = None  # Telegram /start payload
    ack_token: str | None = None  # something the channel must acknowledge after handling (callback query)
    location: Location | None = None
    contact: SharedContact | None = None
    # Forwarded from someone else: not the customer's own words, so never read as a request or consent.
    # The origin's name when the provider tells it, "" when it only says "forwarded".
    forwarded_from: str | None = None
    # Which of our messages carried the pressed button, when the channel says (Telegram: the provider id
    # of the message with the inline keyboard; web chat: "#<messages.id>"). None: look it up by payload.
    button_of: str | None = None
    # A kind of message Sapa cannot read at all (a Telegram dice, poll or game): acknowledged, never interpreted.
    unsupported: str | None = None

    @property
    def has_attachment(self) -> bool:
        return (bool(self.media) or self.location is not None or self.contact is not None
                or self.unsupported is not None)


Purpose = Literal["reply", "follow_up", "survey", "nps_survey", "status_update", "broadcast"]


@dataclass(frozen=True)
class OutboundMessage:
    """One message to send: plain text, or a named provider template with variables.

    `purpose` and `language` choose the approved template when a channel's session window is
    closed (WhatsApp); `window_open` is None when the channel has no window.
    """

    channel: str
    recipient: str
    text: str
    buttons: tuple[Button, ...] = ()
    template: str | None = None
    template_variables: dict[str, str] = field(default_factory=dict)
    conversation_id: int | None = None
    purpose: Purpose = "reply"
    language: str | None = None
    window_open: bool | None = None
    # Channel-specific rendering the core asks for: Slack's card / thread_ts / update_ts.
    options: dict[str, Any] = field(default_factory=dict)
    # Files to send with the text (an agent's file from the Slack thread); `url` is one the provider can fetch.
    media: tuple[Media, ...] = ()
    # The outbox row this send comes from (None outside the outbox): a channel that can tag what it posts with it
    # (Slack message metadata) finds an unclear send again by it (`find_sent`), so it is never posted twice.
    outbox_id: int | None = None


@dataclass(frozen=True)
class DeliveryUpdate:
    """A provider's report about an outbound message it accepted earlier."""

    channel: str
    provider_message_id: str
    status: DeliveryStatus
    error: str | None = None
    # The provider's verdict on the address behind a failure, as at send time (channels.base.Undeliverable):
    # the address cannot be reached (unknown handset, landline) or the person unsubscribed at the provider.
    address_dead: bool = False
    unsubscribed: bool = False


@dataclass(frozen=True)
class ReachabilityUpdate:
    """A provider's word that an address stopped or started accepting messages (Telegram my_chat_member)."""

    channel: str
    address: str
    reachable: bool
    reason: str  # what an agent reads, e.g. "blocked the bot"
    provider_event_id: str  # for the log line and re-deliveries
