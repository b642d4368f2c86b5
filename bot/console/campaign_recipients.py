"""A broadcast while it runs and after: live progress, the recipients one by one, and their export.

The numbers are `store.broadcast_stats` (CRM-4.4), the ones `sapa broadcast status` and `/api/broadcasts/{id}`
give: sent, delivered, read, failed by reason, replies, opt-outs, redemptions, per channel. The progress block is
re-fetched every two seconds by campaigns.js while the broadcast is not finished (it reads a few indexed counts and
names nobody, so it is not audited); without JavaScript a reload shows the same.

Recipients are shown as marketing may see them: name, channel, language, outcome and the reason for a skip or a
failure; never an address or a conversation. Each list page and each export is in the audit log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.console.auth import sapa_of
from bot.console.campaign_texts import Marketer
from bot.console.exports import download, export_format
from bot.console.views import local_time
from bot.console.web import back, environment, language, page, path_id, translator
from bot.limits import parse_id
from store import broadcasts as broadcast_store
from store.audit import record
from store.broadcast_stats import OUTCOMES, broadcast_stats, recipient_rows
from store.models import Broadcast

BASE = "/console/campaigns/broadcasts"
FINISHED = ("done", "cancelled")
PAGE_SIZE = 100
EXPORT_HEADER = ("recipient", "customer_id", "name", "channel", "language", "outcome", "reason", "queued_at",
                 "sent_at")


def mount(app: FastAPI) -> None:
    routes = APIRouter(prefix=BASE, include_in_schema=False)
    routes.add_api_route("/{broadcast_id}/progress", progress_partial, methods=["GET"], response_class=HTMLResponse)
    routes.add_api_route("/{broadcast_id}/recipients", recipients_page, methods=["GET"], response_class=HTMLResponse)
    routes.add_api_route("/{broadcast_id}/export", export, methods=["GET"])
    app.include_router(routes)


def progress_context(session: Session, settings: Settings, broadcast: Broadcast, now: datetime) -> dict[str, Any]:
    """The numbers of the progress block. Done means every recipient was skipped or its message left the outbox
    (sent or failed); the percentage is that share, 100 once the broadcast is done."""
    stats = broadcast_stats(session, settings, broadcast.id, now)
    progress = broadcast_store.progress(session, broadcast.id)
    total = stats.recipients
    outstanding = progress.pending + progress.in_flight
    percent = 100 if broadcast.status == "done" else (
        int(100 * (total - outstanding) / total) if total else 0)
    return {"broadcast": broadcast, "stats": stats, "percent": percent, "outstanding": outstanding,
            "paused_rows": progress.outbox.get("paused", 0), "final": broadcast.status in FINISHED,
            "next_due": local_time(settings, progress.next_due) if progress.next_due else None,
            "started": local_time(settings, broadcast.started_at),
            "finished": local_time(settings, broadcast.finished_at)}


def _broadcast(session: Session, broadcast_id: str) -> Broadcast:
    broadcast = session.get(Broadcast, path_id(broadcast_id, "broadcast"))
    if broadcast is None:
        raise HTTPException(404, "no such broadcast")
    return broadcast


def progress_partial(broadcast_id: str, request: Request, staff: Marketer) -> HTMLResponse:
    sapa = sapa_of(request)
    with sapa.database.unit_of_work(read_only=True) as session:
        broadcast = _broadcast(session, broadcast_id)
        context = progress_context(session, sapa.settings, broadcast, sapa.clock.now())
        lang = language(request)
        html = environment.get_template("_broadcast_progress.html").render(
            request=request, lang=lang, t=translator(lang), csrf_token=staff.csrf_token, live=context,
            broadcast=broadcast)
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


def _filters(request: Request, channels: list[str]) -> tuple[str | None, str | None]:
    query = request.query_params
    outcome = query.get("outcome") or None
    channel = query.get("channel") or None
    if outcome is not None and outcome not in OUTCOMES:
        raise HTTPException(400, f"outcome: use one of {', '.join(OUTCOMES)}")
    if channel is not None and channel not in channels:
        raise HTTPException(400, f"channel: use one of {', '.join(channels)}")
    return outcome, channel


def recipients_page(broadcast_id: str, request: Request, staff: Marketer) -> HTMLResponse:
    sapa = sapa_of(request)
    settings = sapa.settings
    raw_after = request.query_params.get("after") or "0"
    after = parse_id(raw_after) if raw_after != "0" else 0
    if after is None:
        raise HTTPException(400, "after: a recipient number")
    with sapa.database.unit_of_work() as session:
        broadcast = _broadcast(session, broadcast_id)
        outcome, channel = _filters(request, list(broadcast.channels))
        rows = recipient_rows(session, broadcast.id, outcome=outcome, channel=channel, after_id=after,
                              limit=PAGE_SIZE + 1)
        more, rows = len(rows) > PAGE_SIZE, rows[:PAGE_SIZE]
        record(session, actor=staff.actor, action="broadcast.recipients_viewed", subject_type="broadcast",
               subject_id=broadcast.id, now=sapa.clock.now(),
               detail={"outcome": outcome, "channel": channel, "after": after, "rows": len(rows), "via": "console"})
        kept = {key: value for key, value in (("outcome", outcome), ("channel", channel)) if value}
        context: dict[str, Any] = {
            "broadcast": broadcast, "rows": rows, "outcome": outcome, "channel": channel, "outcomes": OUTCOMES,
            "channels": list(broadcast.channels), "kept": kept, "next_after": rows[-1].id if more and rows else None,
            "finished": broadcast.status in FINISHED, "local": lambda moment: local_time(settings, moment)}
    return page(request, "broadcast_recipients.html", staff=staff, csrf_token=staff.csrf_token, active="campaigns",
                **context)


def export(broadcast_id: str, request: Request, staff: Marketer) -> Response:
    """Every recipient as CSV or XLSX, once the broadcast has ended (before that the rows are still changing)."""
    fmt = export_format(request.query_params.get("format"))
    sapa = sapa_of(request)
    settings = sapa.settings
    with sapa.database.unit_of_work() as session:
        broadcast = _broadcast(session, broadcast_id)
        if broadcast.status not in FINISHED:
            return back(f"{BASE}/{broadcast.id}", "export_not_yet")
        rows = recipient_rows(session, broadcast.id, limit=None)
        record(session, actor=staff.actor, action="broadcast.recipients_exported", subject_type="broadcast",
               subject_id=broadcast.id, now=sapa.clock.now(), detail={"format": fmt, "rows": len(rows),
                                                                       "via": "console"})
        name = f"broadcast-{broadcast.id}-recipients"
    zone = settings.tz
    return download(name, fmt, EXPORT_HEADER, (
        (r.id, r.customer_id, r.name or "", r.channel or "", r.language or "", r.outcome, r.reason or "",
         r.queued_at.astimezone(zone) if r.queued_at else None, r.sent_at.astimezone(zone) if r.sent_at else None)
        for r in rows))
