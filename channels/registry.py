"""The explicit channel registry: adding a channel is one module plus one line here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from channels.base import ChannelContext, CustomerChannel
from channels.telegram import TelegramChannel
from channels.twilio import TwilioChannel
from channels.webchat import WebchatChannel


# name -> factory taking that channel's own config section (a pydantic model) and the shared context.
def _telegram(section: Any, context: ChannelContext) -> CustomerChannel:
    return TelegramChannel(
        section.bot_token.get_secret_value(), section.webhook_secret.get_secret_value(),
        api_base_url=section.api_base_url, allow_groups=section.allow_groups,
        per_chat_per_second=section.per_chat_per_second, global_per_second=section.global_per_second,
    )


def _twilio(name: str) -> Callable[[Any, ChannelContext], CustomerChannel]:
    def build(section: Any, context: ChannelContext) -> CustomerChannel:
        templates = {
            purpose: {language: (t.content_sid, tuple(t.variables)) for language, t in by_language.items()}
            for purpose, by_language in section.templates.items()
        }
        return TwilioChannel(
            name, section.account_sid, section.auth_token.get_secret_value(),
            from_number=section.from_number, messaging_service_sid=section.messaging_service_sid,
            messages_per_second=section.messages_per_second, api_base_url=section.api_base_url,
            public_base_url=context.public_base_url, templates=templates,
        )

    return build


REGISTRY: dict[str, Callable[[Any, ChannelContext], CustomerChannel]] = {
    "webchat": lambda section, context: WebchatChannel(max_text_length=section.max_text_length),
    "telegram": _telegram,
    "sms": _twilio("sms"),
    "whatsapp": _twilio("whatsapp"),
}


def build_channels(sections: dict[str, Any], context: ChannelContext) -> dict[str, CustomerChannel]:
    """Adapters for the enabled channel sections of the config."""
    channels: dict[str, CustomerChannel] = {}
    for name, section in sections.items():
        if section is None or not getattr(section, "enabled", True):
            continue
        if name not in REGISTRY:
            raise KeyError(f"channels.{name}: no such channel; known: {', '.join(sorted(REGISTRY))}")
        channels[name] = REGISTRY[name](section, context)
    return channels
