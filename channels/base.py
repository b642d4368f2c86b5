"""The customer-channel seam: the contract every adapter keeps, and the errors it may raise."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from bot.messages import DeliveryUpdate, InboundMessage, OutboundMessage, ReachabilityUpdate

# What a webhook may turn into: a customer's message, a status report, or an address's reachability.
ProviderEvent = InboundMessage | DeliveryUpdate | ReachabilityUpdate


@dataclass(frozen=True)
class WebhookRequest:
    """An HTTP request as an adapter sees it, free of any web framework."""

    method: str
    url: str  # the URL as this server received it (scheme, host, path, query)
    headers: dict[str, str]  # lower-cased names
    body: bytes
    form: tuple[tuple[str, str], ...] = ()  # decoded form fields in order, repeats kept

    def form_value(self, name: str, default: str = "") -> str:
        return next((value for key, value in self.form if key == name), default)


class FormParams:
    """Form fields as the Twilio validator wants them: a mapping whose getall() keeps repeats."""

    def __init__(self, pairs: tuple[tuple[str, str], ...]) -> None:
        self._pairs = pairs

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(key for key, _ in self._pairs))

    def __len__(self) -> int:
        return len(dict.fromkeys(key for key, _ in self._pairs))

    def __getitem__(self, name: str) -> str:
        return next(value for key, value in self._pairs if key == name)

    def getall(self, name: str) -> list[str]:
        return [value for key, value in self._pairs if key == name]


@dataclass(frozen=True)
class RateKey:
    """A rate-limit bucket a send draws from: `cost` tokens out of `per_second`, holding at most `burst` tokens
    (None: one second's worth), so any window of T seconds carries at most per_second * T + burst."""

    key: str
    per_second: float
    cost: float = 1.0
    burst: float | None = None


@dataclass(frozen=True)
class ChannelContext:
    """What every adapter may know beyond its own config section."""

    public_base_url: str | None = None  # where providers reach this server, for signatures and callbacks


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


class MaybeSent(RetryLater):
    """The request reached the provider but no clear answer came back (5xx, a read timeout, the connection lost
    after sending): the provider may have accepted the message. The outbox does not simply resend it: Twilio is
    asked first (`find_sent`); a channel that cannot be asked (Telegram) records the row `unconfirmed`. It is a
    RetryLater, so callers that only retry (desk posts) keep working."""


class Undeliverable(Exception):
    """A permanent failure (blocked, invalid number, window closed): never retried.

    `address_dead` says the address itself is unreachable (blocked bot, invalid number,
    unsubscribed), which is recorded on the customer's channel identity; a missing template is not.
    `unsubscribed` says the person told the provider to stop (Twilio 21610): marketing consent is
    withdrawn with the provider's words as evidence. Status callbacks carry the same two verdicts
    (`DeliveryUpdate.address_dead/unsubscribed`), and both paths go through one store function.
    """

    def __init__(self, reason: str, *, address_dead: bool = True, unsubscribed: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.address_dead = address_dead or unsubscribed
        self.unsubscribed = unsubscribed


class Sender(Protocol):
    """What the outbox needs of anything it sends through: customer channels and the agent desk."""

    name: str
    # How long after the customer's last message free-form text may be sent (WhatsApp: 24 h).
    session_window: timedelta | None

    def send(self, message: OutboundMessage) -> str:
        """Send and return the provider's message id (the first, if the text went in parts).

        Raise RetryLater (429, 5xx, timeouts) or Undeliverable (permanent, with the reason).
        """
        ...

    def rate_keys(self, message: OutboundMessage) -> list[RateKey]:
        """The rate-limit buckets this send draws from (per chat, per sender, overall)."""
        ...


class CustomerChannel(Sender, Protocol):
    def parse(self, request: WebhookRequest) -> list[ProviderEvent]:
        """Verify the provider's signature first (Forbidden), then normalise (BadPayload)."""
        ...

    def acknowledge(self, message: InboundMessage) -> None:
        """Best effort, after the message is stored: e.g. answer a Telegram callback query."""
        ...
