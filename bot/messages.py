"""The message types every layer shares. Frozen dataclasses, no I/O (a leaf module)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

DeliveryStatus = Literal["queued", "sent", "delivered", "read", "failed"]


@dataclass(frozen=True)
class Media:
    """A reference to media the customer sent; the bytes stay with the provider."""

    url: str
    content_type: str | None = None


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


@dataclass(frozen=True)
class DeliveryUpdate:
    """A provider's report about an outbound message it accepted earlier."""

    channel: str
    provider_message_id: str
    status: DeliveryStatus
    error: str | None = None
