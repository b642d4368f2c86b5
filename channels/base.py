"""The customer-channel seam: the contract every adapter keeps, and the errors it may raise."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from bot.messages import DeliveryUpdate, InboundMessage, OutboundMessage


@dataclass(frozen=True)
class WebhookRequest:
    """An HTTP request as an adapter sees it, free of any web framework."""

    method: str
    url: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    form: dict[str, str] = field(default_factory=dict)


class Forbidden(Exception):
    """The request is not signed by the provider (or the signature is wrong): answer 403, store nothing."""


class BadPayload(Exception):
    """The request is signed or public but its content is unusable: answer 4xx with the reason."""

    def __init__(self, reason: str, status: int = 422) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class RetryLater(Exception):
    """A temporary failure (429, 5xx, timeout): the outbox tries again after `after_s` seconds at least."""

    def __init__(self, reason: str, after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.after_s = after_s


class Undeliverable(Exception):
    """A permanent failure (blocked, invalid number, window closed): never retried."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CustomerChannel(Protocol):
    name: str

    def parse(self, request: WebhookRequest) -> list[InboundMessage | DeliveryUpdate]:
        """Verify the provider's signature first (Forbidden), then normalise (BadPayload)."""
        ...

    def send(self, message: OutboundMessage) -> str:
        """Send and return the provider's message id; raise RetryLater or Undeliverable."""
        ...
