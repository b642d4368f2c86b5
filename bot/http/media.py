"""GET /media/{message_id}/{index}?exp=…&sig=…: a file a customer or an agent sent, fetched from its provider.

Sapa keeps no copies: the message row holds the provider's reference, and this route asks the provider for the
bytes each time (Telegram getFile, Twilio's media URL with the account's credentials, Slack's private URL with the
bot token). Links are signed by bot/media_links.py and expire.

- 403, nothing looked up or served: a forged, altered or expired link.
- 404: the link is genuine but the message or the file is not there (erased since, or another database).
- 502: the provider would not hand the file over; the body says why.
- 200: the file. Every successful access is written to the audit log (which message, whose, from which address),
  because each access to a customer's data by staff is audited. The answer is private, never cached, and only
  images, audio and video are shown inline; anything else downloads, so no file runs as a page of this site.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select

from bot import limits, media_links
from bot.http.blocking import run_blocking
from channels.base import RetryLater, Undeliverable
from store.audit import record
from store.models import AuditEntry, Message

log = logging.getLogger(__name__)

INLINE = re.compile(r"^(image/(jpeg|png|gif|webp)|audio/[\w.+-]+|video/[\w.+-]+)$")
PROVIDER_NAMES = {"telegram": "Telegram", "sms": "Twilio", "whatsapp": "Twilio", "slack": "Slack"}
HEADERS = {
    "Cache-Control": "private, no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; media-src 'self'; sandbox",
    "Referrer-Policy": "no-referrer",  # the link's signature must not travel on to other sites
}


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers={"Cache-Control": "no-store"})


def mount(app: FastAPI, sapa: Any) -> None:
    signer = media_links.links(sapa.settings)  # made once: a missing key file is created at start-up

    def serve(message_id: str, index: str, expires: str, signature: str, requester: dict[str, str]) -> Response:
        now = sapa.clock.now()
        # ASCII digits that fit a BIGINT, before anything reads them: "²" passes str.isdigit() and 10**30 no column.
        numbers = all(limits.is_ascii_number(value) and len(value) <= 18 for value in (message_id, index, expires))
        if not numbers or not signer.verify(message_id, index, expires, signature, now=now):
            log.info("media link refused (forged or expired) for message %s from %s", message_id[:20],
                     requester.get("address"))
            return error(403, "this link is not valid or has expired; ask for a new one")
        return serve_file(sapa, int(message_id), int(index), requester, actor="media_link")

    @app.get("/media/{message_id}/{index}", include_in_schema=False)
    async def media(message_id: str, index: str, request: Request, exp: str = "", sig: str = "") -> Response:
        return await run_blocking(serve, message_id, index, exp, sig, requester_of(request))


def requester_of(request: Request) -> dict[str, str]:
    """Who asked, for the audit row: the address, what a proxy said it forwarded for, the browser."""
    requester = {"address": request.client.host if request.client else "unknown"}
    if forwarded := request.headers.get("x-forwarded-for"):
        requester["forwarded_for"] = forwarded[:200]
    if agent := request.headers.get("user-agent"):
        requester["user_agent"] = agent[:200]
    return requester


def serve_file(sapa: Any, message_id: int, index: int, requester: dict[str, str], *, actor: str) -> Response:
    """The file `index` of message `message_id`, fetched from its provider, the access audited with `actor` (the
    signed link's holder is "media_link"; the console passes the signed-in member of staff, `agent:<id>`)."""
    now = sapa.clock.now()
    with sapa.database.unit_of_work(read_only=True) as session:
        message = session.get(Message, message_id)
        files = list(message.media or []) if message is not None else []
        if message is None or index >= len(files):
            return error(404, "no such file: the message or the file is no longer here")
        entry: dict[str, Any] = dict(files[index])
        channel, customer_id, direction = message.channel, message.customer_id, message.direction
    reference = str(entry.get("url") or "")
    origin = "slack" if reference.startswith("slack:") else channel
    provider = PROVIDER_NAMES.get(origin, origin)
    source = sapa.desk if origin == "slack" else sapa.channels.get(channel)
    fetch = getattr(source, "fetch_media", None)
    if fetch is None:
        return error(502, f"{provider} is not enabled on this Sapa, so the file cannot be fetched from it")
    try:
        data, fetched_type = fetch(reference)
    except (RetryLater, Undeliverable) as exc:
        log.warning("media: %s did not hand over file %s/%s: %s", provider, message_id, index, exc.reason)
        if origin == "slack" and isinstance(exc, Undeliverable):
            _tell_agent(sapa, message_id, index, entry, exc.reason, now)
        return error(502, f"{provider} did not hand over the file: {exc.reason}")
    except Exception as exc:  # a provider's SDK failing in a way nobody mapped: still a clear answer
        log.exception("media: fetching file %s/%s from %s failed", message_id, index, provider)
        return error(502, f"{provider} did not hand over the file: {type(exc).__name__}")
    content_type = _content_type(fetched_type, entry.get("content_type"))
    with sapa.database.unit_of_work() as session:
        record(session, actor=actor, action="media.open", subject_type="message", subject_id=message_id,
               now=now, detail={"customer_id": customer_id, "message_id": message_id, "index": index,
                                "direction": direction, "channel": channel, "content_type": content_type,
                                "bytes": len(data), **requester})
    return Response(content=data, media_type=content_type,
                    headers={**HEADERS, "Content-Disposition": _disposition(content_type, entry)})


def _tell_agent(sapa: Any, message_id: int, index: int, entry: dict[str, Any], reason: str, now: Any) -> None:
    """An agent's file that Slack will not hand over (Twilio or the customer asked for it): say so in the
    card's thread, once per file (the audit entry of the failure is the marker)."""
    from handlers.desk_slack import file_not_delivered

    with sapa.database.unit_of_work() as session:
        seen = session.execute(select(AuditEntry.id).where(
            AuditEntry.action == "media.unavailable", AuditEntry.subject_type == "message",
            AuditEntry.subject_id == str(message_id))).first()
        record(session, actor="media_link", action="media.unavailable", subject_type="message",
               subject_id=message_id, now=now, detail={"index": index, "reason": reason[:300]})
        if seen is None:
            file_not_delivered(session, message_id, str(entry.get("file_name") or "a file"), reason, now=now)


def _content_type(fetched: str | None, stored: Any) -> str:
    """The provider's type, unless it only says "some bytes" and the message row knows better."""
    fetched = (fetched or "").strip().lower()
    if fetched and fetched != "application/octet-stream":
        return fetched
    return str(stored).strip().lower() if stored else "application/octet-stream"


def _disposition(content_type: str, entry: dict[str, Any]) -> str:
    name = str(entry.get("file_name") or "file")
    name = re.sub(r"[\x00-\x1f\x7f\"\\/]", "_", name)[:150] or "file"
    ascii_name = name.encode("ascii", "replace").decode().replace("?", "_")
    mode = "inline" if INLINE.match(content_type) else "attachment"
    return f"{mode}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
