"""A recording fake provider for outbox tests: it behaves like a provider, it is not our code."""

from __future__ import annotations

import threading
from collections.abc import Callable

from bot.messages import DeliveryUpdate, InboundMessage, OutboundMessage
from channels.base import RateKey, WebhookRequest


class RecordingChannel:
    """Accepts sends (or fails them as scripted) and remembers what a customer would have received."""

    name = "webchat"
    session_window = None

    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []
        self.failures: list[Exception] = []  # raised, in order, by the next sends
        self.on_send: Callable[[OutboundMessage], None] | None = None
        self._lock = threading.Lock()

    def rate_keys(self, message: OutboundMessage) -> list[RateKey]:
        return []

    def acknowledge(self, message: InboundMessage) -> None:
        return None

    def parse(self, request: WebhookRequest) -> list[InboundMessage | DeliveryUpdate]:
        raise NotImplementedError("outbox tests only send")

    def send(self, message: OutboundMessage) -> str:
        if self.on_send is not None:
            self.on_send(message)
        with self._lock:
            if self.failures:
                raise self.failures.pop(0)
            self.sent.append(message)
            return f"prov-{len(self.sent)}"
