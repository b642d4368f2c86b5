"""What console pages show, computed from rows: messages, times, countdowns. No HTML here (templates do that),
and no database writes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.config import Settings
from store.models import Agent, Message

KIND_WORDS = {"image": "foto", "video": "video", "audio": "audio", "voice": "pesan suara", "document": "dokumen",
              "sticker": "stiker"}


@dataclass(frozen=True)
class MediaView:
    url: str  # /console/media/<message>/<index>: fetched for the signed-in reader, audited with their name
    label: str
    is_image: bool


@dataclass(frozen=True)
class MessageView:
    id: int
    direction: str  # in, out, note
    sender: str  # customer, bot, agent
    who: str  # what the console shows as the author
    channel: str
    text: str
    at: datetime
    at_local: str
    media: list[MediaView] = field(default_factory=list)
    location: dict[str, Any] | None = None  # {"label", "coordinates", "map_url"}
    contact: dict[str, str] | None = None  # {"name", "phone", "whose"}
    forwarded_from: str | None = None
    status: str | None = None  # delivery status of an outbound message


def local_time(settings: Settings, moment: datetime | None, fmt: str = "%d/%m/%Y %H:%M") -> str:
    if moment is None:
        return ""
    return moment.astimezone(ZoneInfo(settings.company.timezone)).strftime(fmt)


def message_view(settings: Settings, message: Message, agents: Mapping[int, Agent], *, now: datetime,
                 customer_name: str) -> MessageView:
    who = {"customer": customer_name, "bot": "Sapa"}.get(message.sender, "")
    if message.sender == "agent":
        agent = agents.get(message.agent_id or 0)
        who = agent.name if agent is not None else "Agent"
    meta = message.meta or {}
    media: list[MediaView] = []
    if message.media:
        for index, item in enumerate(message.media):
            kind = str(item.get("kind") or "")
            name = item.get("file_name") or KIND_WORDS.get(kind, "file")
            content_type = str(item.get("content_type") or "")
            media.append(MediaView(url=f"/console/media/{message.id}/{index}",
                                   label=f"{name} · {content_type}" if content_type else str(name),
                                   is_image=content_type.startswith("image/") or kind in ("image", "sticker")))
    return MessageView(
        id=message.id, direction=message.direction, sender=message.sender, who=who, channel=message.channel,
        text=message.text or "", at=message.created_at, at_local=local_time(settings, message.created_at),
        media=media, location=_location(meta.get("location")), contact=_contact(meta.get("contact")),
        forwarded_from=str(meta["forwarded_from"]) if meta.get("forwarded_from") is not None else None,
        status=message.delivery_status if message.direction == "out" else None,
    )


def _location(place: Any) -> dict[str, Any] | None:
    if not isinstance(place, dict):
        return None
    try:
        latitude, longitude = float(place["latitude"]), float(place["longitude"])
    except (KeyError, TypeError, ValueError):
        return {"label": "", "coordinates": "?", "map_url": None}
    lat, lon = f"{latitude:.6f}".rstrip("0").rstrip("."), f"{longitude:.6f}".rstrip("0").rstrip(".")
    label = ", ".join(str(place[key]) for key in ("name", "address") if place.get(key))
    return {"label": label, "coordinates": f"{lat}, {lon}",
            "map_url": f"https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=17/{lat}/{lon}"}


def _contact(contact: Any) -> dict[str, str] | None:
    if not isinstance(contact, dict):
        return None
    return {"name": str(contact.get("name") or ""), "phone": str(contact.get("phone") or ""),
            "whose": "own" if contact.get("own") else "other"}


def countdown(due: datetime | None, now: datetime) -> dict[str, Any] | None:
    """An SLA deadline as the console shows it: minutes left (negative: overdue) and how urgent."""
    if due is None:
        return None
    minutes = int((due - now).total_seconds() // 60)
    state = "breached" if minutes < 0 else "soon" if minutes < 30 else "ok"
    return {"iso": due.isoformat(), "minutes": minutes, "state": state}


UNITS = {"id": ("mnt", "jam", "hari"), "en": ("min", "h", "d")}


def waited(since: datetime | None, now: datetime, lang: str = "id") -> str:
    """"5 mnt", "2 jam 10 mnt", "3 hari" (or English): how long a conversation has waited."""
    if since is None:
        return ""
    minute, hour, day = UNITS.get(lang, UNITS["en"])
    minutes = max(int((now - since).total_seconds() // 60), 0)
    if minutes < 60:
        return f"{minutes} {minute}"
    if minutes < 24 * 60:
        return f"{minutes // 60} {hour} {minutes % 60} {minute}"
    return f"{minutes // (24 * 60)} {day}"
