"""How Sapa writes in Slack: customer words escaped, and what came with a message (files, places, contact cards)
as mrkdwn lines for the card and the thread relay. Text only; no database, no network."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot import media_links
from bot.config import Settings
from store.models import Message

KIND_WORDS = {"image": "photo", "video": "video", "audio": "audio", "voice": "voice note", "document": "document",
              "sticker": "sticker"}


def escape_slack(text: str) -> str:
    """Customer words shown in Slack: "<!channel>" or "<@U123>" in a message must ping nobody."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def attachment_lines(settings: Settings, message: Message, *, now: datetime, compact: bool = False) -> list[str]:
    """What came with a message besides its words, as Slack mrkdwn (customer words escaped): "forwarded from",
    each file as a signed Sapa link, a place as coordinates and an OpenStreetMap link, a contact card.
    Staff open files only through these links, which expire (media_links.expire_days) and are audited."""
    meta = message.meta or {}
    lines = []
    if "forwarded_from" in meta and meta["forwarded_from"] is not None:
        origin = str(meta["forwarded_from"])
        lines.append(f"↪️ Forwarded from {escape_slack(origin)}" if origin else "↪️ Forwarded message")
    if message.media:
        signer, base = media_links.links(settings), media_links.base_url(settings)
        for index, item in enumerate(message.media):
            url = signer.url(base, message.id, index, now=now)
            lines.append(f"📎 <{escape_slack(url)}|{escape_slack(media_label(item))}>")
    if isinstance(place := meta.get("location"), dict):
        lines.append(location_line(place, compact=compact))
    if isinstance(contact := meta.get("contact"), dict):
        lines.append(contact_line(contact))
    return lines


def media_label(item: Mapping[str, Any]) -> str:
    """"receipt.pdf · application/pdf", "photo · image/jpeg": what the agent is about to open."""
    name = item.get("file_name") or KIND_WORDS.get(str(item.get("kind") or ""), "file")
    content_type = item.get("content_type")
    return f"{name} · {content_type}" if content_type else str(name)


def map_url(latitude: float, longitude: float) -> str:
    lat, lon = _coordinate(latitude), _coordinate(longitude)
    return f"https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=17/{lat}/{lon}"


def location_line(place: Mapping[str, Any], *, compact: bool = False) -> str:
    """📍 name, address — latitude, longitude · map link."""
    try:
        latitude, longitude = float(place["latitude"]), float(place["longitude"])
    except (KeyError, TypeError, ValueError):
        return "📍 A location without readable coordinates"
    where = ", ".join(escape_slack(str(place[key])) for key in ("name", "address") if place.get(key))
    coordinates = f"{_coordinate(latitude)}, {_coordinate(longitude)}"
    if compact:
        where = ""
    return f"📍 {where + ' — ' if where else ''}{coordinates} · <{escape_slack(map_url(latitude, longitude))}|map>"


def contact_line(contact: Mapping[str, Any]) -> str:
    """👤 Contact: name, number (whose it is)."""
    whose = "the customer's own number" if contact.get("own") else "someone else's contact"
    name = escape_slack(str(contact.get("name") or "(no name)"))
    phone = escape_slack(str(contact.get("phone") or "no number"))
    return f"👤 Contact: {name}, {phone} ({whose})"


def _coordinate(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".") or "0"
