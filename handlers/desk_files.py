"""Files an agent shares from Slack, on their way to a customer: which can go on this channel (size limits, the
WhatsApp window, Twilio needing a public URL), how each is kept on the message, and how the queued send points at
them per channel. Used by the desk service's reply (handlers/desk.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import media_links
from bot.config import Settings
from store.models import Conversation, Message, OutboxItem

# The largest file an agent can send per channel, in MB: Telegram's upload limit for bots, Twilio's for
# WhatsApp media and for MMS. Web chat gets a link that streams through Sapa, which fetches at most 50 MB.
FILE_LIMITS_MB = {"telegram": 50, "whatsapp": 16, "sms": 5}
DEFAULT_FILE_LIMIT_MB = 50
TWILIO_CHANNELS = ("sms", "whatsapp")
WHATSAPP_WINDOW = timedelta(hours=24)


def shareable(settings: Settings, conversation: Conversation, files: Sequence[Mapping[str, Any]], *,
               now: datetime) -> tuple[list[Mapping[str, Any]], list[tuple[str, str]]]:
    """The files that can reach this customer, and (name, reason) for each that cannot."""
    channel = conversation.channel
    limit_mb = FILE_LIMITS_MB.get(channel, DEFAULT_FILE_LIMIT_MB)
    window_closed = channel == "whatsapp" and (
        conversation.last_inbound_at is None or now - conversation.last_inbound_at >= WHATSAPP_WINDOW)
    sendable, refused = [], []
    for shared in files:
        name, size = str(shared.get("name") or "a file"), shared.get("size")
        if shared.get("external") or shared.get("mode") == "external":
            why = "it is a link to a file outside Slack; paste a link the customer can open instead"
        elif shared.get("mode") in ("tombstone", "hidden_by_limit"):
            why = "Slack does not let Sapa read it (deleted, or hidden by the workspace's plan)"
        elif not shared.get("url") and not shared.get("id"):
            why = "Slack did not say where the file is"
        elif channel in TWILIO_CHANNELS and not settings.server.public_base_url:
            why = (f"{channel} goes through Twilio, which fetches files from a public link, and server.public_base_url "
                   "is not set")
        elif window_closed:
            why = "the WhatsApp 24-hour window is closed (files cannot go as an approved template)"
        elif isinstance(size, int) and size > limit_mb * 1024 * 1024:
            why = f"it is {size / (1024 * 1024):.1f} MB and {channel} takes at most {limit_mb} MB"
        else:
            sendable.append(shared)
            continue
        refused.append((name, why))
    return sendable, refused


def file_entry(shared: Mapping[str, Any]) -> dict[str, Any]:
    """How an agent's file is kept on the message: a `slack:` reference the desk can download."""
    mimetype = str(shared.get("mimetype") or "") or None
    major = (mimetype or "").split("/")[0]
    kind = major if major in ("image", "video", "audio") else "document"
    url = shared.get("url")
    return {"url": f"slack:{url}" if url else f"slack:file/{shared.get('id')}", "content_type": mimetype,
            "kind": kind, "file_name": str(shared.get("name") or "file"), "size": shared.get("size"),
            "slack_file": shared.get("id")}


def address_files(session: Session, settings: Settings, conversation: Conversation, message: Message, *,
                   now: datetime) -> None:
    """Now that the message has its id, point the queued send at what the channel can use.

    Telegram keeps the `slack:` references: the outbox fetches the bytes and uploads them. Twilio fetches files
    itself: it gets signed public Sapa links (server.public_base_url). Web chat shows text: the customer gets a
    signed link per file under the words.
    """
    if conversation.channel == "telegram":
        return
    item = session.execute(select(OutboxItem).where(OutboxItem.message_id == message.id)).scalar_one()
    signer, base = media_links.links(settings), media_links.base_url(settings)
    files = [(signer.url(base, message.id, index, now=now), entry) for index, entry in enumerate(message.media)]
    payload = dict(item.payload)
    if conversation.channel in TWILIO_CHANNELS:
        payload["media"] = [{"url": link, "content_type": entry.get("content_type"), "kind": entry.get("kind"),
                             "file_name": entry.get("file_name")} for link, entry in files]
    else:
        lines = [f"📎 {entry.get('file_name') or 'file'}: {link}" for link, entry in files]
        message.text = "\n".join([message.text, *lines]) if message.text else "\n".join(lines)
        payload["text"] = message.text
        payload.pop("media", None)
    item.payload = payload
