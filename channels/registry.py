"""The explicit channel registry: adding a channel is one module plus one line here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from channels.base import ChannelContext, CustomerChannel
from channels.webchat import WebchatChannel

# name -> factory taking that channel's own config section (a pydantic model) and the shared context.
REGISTRY: dict[str, Callable[[Any, ChannelContext], CustomerChannel]] = {
    "webchat": lambda section, context: WebchatChannel(max_text_length=section.max_text_length),
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
