"""What customers send besides words: media, stickers, locations, contacts, forwarded messages.

Each is stored with the message (the pipeline keeps media, location, contact and the forward's origin) and
acknowledged in the customer's language, saying what Sapa can and cannot do with it. None of them is read
as the customer's words: a photo has nothing to classify, and a forwarded text is someone else's words, so
it can never open a ticket or withdraw a consent. None counts as "not understood" toward the two-miss
handoff (handlers.dispatch leaves the count alone for these). A caption is the customer's own words and is
routed as text; the media stays with the message.
"""

from __future__ import annotations

from handlers.turn import Reply, Route, Turn


def is_attachment_only(turn: Turn) -> bool:
    message = turn.message
    return message.forwarded_from is not None or (message.has_attachment and not message.text.strip())


def acknowledge(turn: Turn) -> list[Reply]:
    message = turn.message
    if message.forwarded_from is not None:
        return [turn.reply("forwarded_received", origin=message.forwarded_from)]
    if message.contact is not None:
        if message.contact.own:
            return [turn.reply("contact_own_saved")]
        return [turn.reply("contact_other_received", contact=message.contact.name or message.contact.phone or "")]
    if message.unsupported is not None:
        return [turn.reply("unsupported_received")]
    if message.location is not None:
        place = message.location.name or message.location.address or ""
        return [turn.reply("location_received", place=place)]
    kinds = [m.kind for m in message.media]
    if kinds and all(kind == "sticker" for kind in kinds):
        return [turn.reply("sticker_received")]
    kind = next((k for k in kinds if k and k != "sticker"), None) or ""
    return [turn.reply("attachment_received", kind=kind)]


ROUTES = [Route(acknowledge, when=is_attachment_only)]
