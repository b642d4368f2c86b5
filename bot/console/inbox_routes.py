"""The agent inbox: the queue, a conversation with its transcript and actions, live updates.

Every action goes through the one desk service (handlers/desk.py) that the Slack desk calls too, so a claim in
Slack shows here and a claim here shows in Slack, and the rules (who may act, what the customer is told, SLA
clocks, audit, CSAT after resolve) live once. Pages are plain forms that answer with a redirect (303) back to the
page with an outcome, so they work without JavaScript and by keyboard; server-sent events add what is new.

Every view of a customer's words or profile is in the audit log with the staff member (`conversation.viewed`,
`inbox.viewed`); live refreshes of a page already opened are not logged again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.console import auth
from bot.console.auth import StaffUser, sapa_of
from bot.console.views import countdown, local_time, message_view, waited
from bot.console.web import back, environment, language, outcome_notice, page, path_id, texts, translator
from bot.http import media
from bot.http.blocking import run_blocking
from bot.limits import is_ascii_number, parse_id
from handlers import desk, sla
from handlers.permissions import can
from store import inbox
from store.audit import record
from store.models import Agent, ChannelIdentity, Conversation, Customer, Message, Ticket

log = logging.getLogger(__name__)
ACTIONS = ("claim", "resolve", "escalate", "back_to_bot", "takeover", "transfer")
CHANNELS = ("webchat", "telegram", "whatsapp", "sms")
STATUSES = ("open", "waiting", "with_agent", "closed")
POLL_S = 1.0  # how often a live page's stream looks for news in the database (works across replicas)
HEARTBEAT_S = 15.0  # a comment line so proxies keep an idle stream open
# A stream ends after this long and the browser's EventSource reconnects (retry: 3 s): no connection outlives a
# deploy by much, and the session is looked up afresh on every reconnect.
STREAM_MAX_S = 300.0
REPLY_LIMIT = 4000  # characters an agent can send at once (the longest SMS concatenation is far less)


# Who may call a route: the signed-in staff member, checked for the permission (and CSRF on POST).
InboxViewer = Annotated[StaffUser, Depends(auth.require("inbox.view"))]
Reader = Annotated[StaffUser, Depends(auth.require("conversation.read"))]
Actor = Annotated[StaffUser, Depends(auth.require("conversation.act"))]


def router() -> APIRouter:
    routes = APIRouter(prefix="/console", include_in_schema=False)  # pages, not the API
    routes.add_api_route("/inbox", inbox_page, methods=["GET"], response_class=HTMLResponse)
    routes.add_api_route("/inbox/queue", queue_partial, methods=["GET"], response_class=HTMLResponse)
    routes.add_api_route("/inbox/events", inbox_events, methods=["GET"])
    routes.add_api_route("/availability", set_availability, methods=["POST"])
    routes.add_api_route("/conversations/{conversation_id}", conversation_page, methods=["GET"],
                         response_class=HTMLResponse)
    routes.add_api_route("/conversations/{conversation_id}/messages", messages_partial, methods=["GET"],
                         response_class=HTMLResponse)
    routes.add_api_route("/conversations/{conversation_id}/events", conversation_events, methods=["GET"])
    routes.add_api_route("/conversations/{conversation_id}/reply", reply, methods=["POST"])
    routes.add_api_route("/media/{message_id}/{index}", media_file, methods=["GET"])
    routes.add_api_route("/conversations/{conversation_id}/note", note, methods=["POST"])
    routes.add_api_route("/conversations/{conversation_id}/action", action, methods=["POST"])
    return routes


def mount(app: FastAPI) -> None:
    app.include_router(router())


# --- the queue ------------------------------------------------------------------------------------------------------

def _filters(request: Request) -> inbox.QueueFilters:
    query = request.query_params
    channel = query.get("channel") or None
    status = query.get("status") or "open"
    if channel is not None and channel not in CHANNELS:
        raise HTTPException(400, f"unknown channel {channel!r}; use one of {', '.join(CHANNELS)}")
    if status not in STATUSES:
        raise HTTPException(400, f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
    return inbox.QueueFilters(mine=query.get("mine") == "1", unassigned=query.get("unassigned") == "1",
                              vip=query.get("vip") == "1", channel=channel, status=status)  # type: ignore[arg-type]


def _queue_context(request: Request, staff: StaffUser) -> dict[str, Any]:
    sapa = sapa_of(request)
    filters = _filters(request)
    cursor = request.query_params.get("cursor") or None
    now = sapa.clock.now()
    with sapa.database.unit_of_work(read_only=True) as session:
        try:
            result = inbox.queue(session, viewer_id=staff.id, filters=filters, limit=50, cursor=cursor)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc
        me = session.get_one(Agent, staff.id)
        availability = me.availability
    lang = language(request)
    rows = [{"row": row, "waited": waited(row.waiting_since, now, lang),
             "due": countdown(row.sla_due or sla.handoff_due(sapa.settings, row.status, row.vip, row.waiting_since),
                              now)}
            for row in result.rows]
    # The filters travel on to the next page and the live refresh; the page's cursor and a shown outcome do not.
    kept = {key: value for key, value in request.query_params.items()
            if key not in ("cursor", "done", "detail") and value}
    return {"rows": rows, "total": result.total, "filters": filters, "channels": CHANNELS, "statuses": STATUSES,
            "next_url": f"/console/inbox?{urlencode({**kept, 'cursor': result.next_cursor})}"
            if result.next_cursor else None,
            "query": urlencode(kept), "availability": availability}


def inbox_page(request: Request, staff: InboxViewer) -> HTMLResponse:
    context = _queue_context(request, staff)
    sapa = sapa_of(request)
    with sapa.database.unit_of_work() as session:
        record(session, actor=f"agent:{staff.id}", action="inbox.viewed", subject_type="queue", subject_id=None,
               now=sapa.clock.now(), detail={"filters": context["query"], "rows": len(context["rows"])})
    return page(request, "inbox.html", staff=staff, csrf_token=staff.csrf_token, active="inbox",
                notice=_notice(request), **context)


def queue_partial(request: Request, staff: InboxViewer) -> HTMLResponse:
    context = _queue_context(request, staff)
    lang = language(request)
    html = environment.get_template("_queue.html").render(request=request, lang=lang, t=translator(lang),
                                                          staff=staff, **context)
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


async def inbox_events(request: Request, staff: InboxViewer) -> Response:
    """`event: queue` whenever the open queue changes (new handoff, claim, resolve, new message)."""
    sapa = sapa_of(request)

    def marker() -> str:
        return _shared_marker(sapa)

    async def stream() -> AsyncIterator[str]:
        last = await run_blocking(marker)
        idle, lived = 0.0, 0.0
        yield "retry: 3000\n\n"
        while not await request.is_disconnected() and lived < STREAM_MAX_S:
            lived += POLL_S
            await asyncio.sleep(POLL_S)
            if not await run_blocking(_still_signed_in, request, staff):
                yield "event: signed_out\ndata: {}\n\n"
                return
            current = await run_blocking(marker)
            if current != last:
                last, idle = current, 0.0
                yield "event: queue\ndata: {}\n\n"
            else:
                idle += POLL_S
                if idle >= HEARTBEAT_S:
                    idle = 0.0
                    yield ": still here\n\n"

    return _event_stream(stream())


class _Marker:
    """The queue marker, read at most once per POLL_S per database by this process however many inboxes are open
    (the query costs a few ms over 10,000 open conversations; twenty open inboxes would otherwise run it twenty
    times a second)."""

    lock = threading.Lock()
    seen: dict[int, tuple[float, str]] = {}  # id(database) -> (read at, marker)


def _shared_marker(sapa: Any) -> str:
    key = id(sapa.database)
    with _Marker.lock:
        cached = _Marker.seen.get(key)
        if cached is not None and time.monotonic() - cached[0] < POLL_S:
            return cached[1]
        with sapa.database.unit_of_work(read_only=True) as session:
            value = inbox.queue_marker(session)
        _Marker.seen[key] = (time.monotonic(), value)
        return value


def set_availability(request: Request, staff: InboxViewer, availability: str = Form(...),
                     next_path: str = Form("/console/inbox")) -> Response:
    if availability not in ("online", "away"):
        raise HTTPException(400, "availability is online or away")
    sapa = sapa_of(request)
    with sapa.database.unit_of_work() as session:
        desk.set_availability(session, session.get_one(Agent, staff.id), availability, now=sapa.clock.now())
    return back(next_path if next_path.startswith("/console/") else "/console/inbox", f"availability_{availability}")


# --- one conversation -----------------------------------------------------------------------------------------------

def _transcript_views(session: Session, sapa: Any, customer: Customer, identity_name: str | None,
                      messages: list[Message]) -> list[Any]:
    agent_ids = {m.agent_id for m in messages if m.agent_id}
    agents = {a.id: a for a in session.execute(select(Agent).where(Agent.id.in_(agent_ids))).scalars()} \
        if agent_ids else {}
    name = customer.name or identity_name or "Customer"
    now = sapa.clock.now()
    return [message_view(sapa.settings, m, agents, now=now, customer_name=name) for m in messages]


def conversation_page(conversation_id: str, request: Request, staff: Reader) -> HTMLResponse:
    sapa = sapa_of(request)
    now = sapa.clock.now()
    before = parse_id(request.query_params.get("before") or "") if request.query_params.get("before") else None
    with sapa.database.unit_of_work() as session:
        conversation = session.get(Conversation, path_id(conversation_id, "conversation"))
        if conversation is None:
            raise HTTPException(404, "no such conversation")
        customer = session.get_one(Customer, conversation.customer_id)
        identity = session.get_one(ChannelIdentity, conversation.identity_id)
        transcript = inbox.transcript(session, customer.id, before_id=before, limit=100)
        messages = _transcript_views(session, sapa, customer, identity.display_name, transcript.messages)
        owner = session.get(Agent, conversation.owner_agent_id) if conversation.owner_agent_id else None
        tickets = list(session.execute(select(Ticket).where(Ticket.customer_id == customer.id,
                                                            Ticket.status.in_(desk.OPEN_TICKET))
                                       .order_by(Ticket.id)).scalars())
        dues = [t.first_response_due_at for t in tickets if t.first_response_due_at and not t.first_responded_at]
        dues = dues or [t.resolution_due_at for t in tickets if t.resolution_due_at]
        handoff_due = sla.handoff_due(sapa.settings, conversation.status, customer.is_vip, conversation.handed_off_at)
        dues = dues or ([handoff_due] if handoff_due else [])
        colleagues = [a for a in desk.staff_for_transfer(session) if a.id != staff.id]
        record(session, actor=f"agent:{staff.id}", action="conversation.viewed", subject_type="conversation",
               subject_id=conversation.id, now=now, detail={"customer_id": customer.id})
        context: dict[str, Any] = {
            "conversation": conversation, "customer": customer, "identity": identity, "owner": owner,
            "messages": messages,
            "older_url": f"/console/conversations/{conversation.id}?before={transcript.older_cursor}"
            if transcript.older_cursor else None,
            "last_id": max((m.id for m in transcript.messages), default=0),
            "tickets": [{"ticket": t, "ref": desk.ticket_reference(t.id),
                         "due": countdown(t.first_response_due_at if not t.first_responded_at
                                          else t.resolution_due_at, now)} for t in tickets],
            "due": countdown(min(dues), now) if dues else None,
            "colleagues": colleagues, "canned": _canned(sapa.knowledge.settings(), conversation.language),
            "can_act": can(staff.role, "conversation.act"),
            "can_reassign": can(staff.role, "conversation.reassign"),
            "can_customer": can(staff.role, "customer.read"),
            "mine": conversation.owner_agent_id == staff.id,
            "waited": waited(conversation.handed_off_at, now, language(request)),
            "handed_off_local": local_time(sapa.settings, conversation.handed_off_at),
        }
    return page(request, "conversation.html", staff=staff, csrf_token=staff.csrf_token, active="inbox",
                notice=_notice(request), **context)


def messages_partial(conversation_id: str, request: Request, staff: Reader) -> HTMLResponse:
    """The messages after `?after=ID`: what the live stream announces, fetched as HTML."""
    sapa = sapa_of(request)
    after = parse_id(request.query_params.get("after") or "0") or 0
    with sapa.database.unit_of_work(read_only=True) as session:
        conversation = session.get(Conversation, path_id(conversation_id, "conversation"))
        if conversation is None:
            raise HTTPException(404, "no such conversation")
        customer = session.get_one(Customer, conversation.customer_id)
        identity = session.get_one(ChannelIdentity, conversation.identity_id)
        messages = _transcript_views(session, sapa, customer, identity.display_name,
                                     inbox.messages_after(session, customer.id, after))
    lang = language(request)
    html = environment.get_template("_messages.html").render(request=request, lang=lang, t=translator(lang),
                                                             messages=messages)
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


async def conversation_events(conversation_id: str, request: Request, staff: Reader) -> Response:
    """`event: message` with the newest message id when the customer's transcript grows; `event: status` when the
    conversation changes hands or state. The page fetches what is new (messages_partial) or reloads its head."""
    sapa = sapa_of(request)
    ident = path_id(conversation_id, "conversation")
    after_raw = parse_id(request.query_params.get("after") or "0") or 0

    def look() -> tuple[int, str] | None:
        """The newest message id of the customer and the conversation's state (one indexed read each)."""
        with sapa.database.unit_of_work(read_only=True) as session:
            conversation = session.get(Conversation, ident)
            if conversation is None:
                return None
            newest_id = session.execute(select(Message.id).where(Message.customer_id == conversation.customer_id)
                                        .order_by(Message.id.desc()).limit(1)).scalar() or 0
            return newest_id, f"{conversation.status}:{conversation.owner_agent_id}"

    async def stream() -> AsyncIterator[str]:
        first = await run_blocking(look)
        if first is None:
            yield "event: gone\ndata: {}\n\n"
            return
        last_id, last_state = max(first[0], after_raw), first[1]
        if first[0] > after_raw:
            yield f"event: message\ndata: {json.dumps({'after': after_raw})}\n\n"
        idle, lived = 0.0, 0.0
        yield "retry: 3000\n\n"
        while not await request.is_disconnected() and lived < STREAM_MAX_S:
            lived += POLL_S
            await asyncio.sleep(POLL_S)
            if not await run_blocking(_still_signed_in, request, staff):
                yield "event: signed_out\ndata: {}\n\n"
                return
            seen = await run_blocking(look)
            if seen is None:
                return
            newest_id, state = seen
            sent = False
            if newest_id > last_id:
                yield f"event: message\ndata: {json.dumps({'after': last_id})}\n\n"
                last_id, sent = newest_id, True
            if state != last_state:
                yield "event: status\ndata: {}\n\n"
                last_state, sent = state, True
            idle = 0.0 if sent else idle + POLL_S
            if idle >= HEARTBEAT_S:
                idle = 0.0
                yield ": still here\n\n"

    return _event_stream(stream())


async def media_file(message_id: str, index: str, request: Request, staff: Reader) -> Response:
    """A file of a transcript, for a signed-in reader: the same fetch as the signed links (bot/http/media.py), but
    audited as `media.open` by this member of staff, not by "whoever held the link"."""
    sapa = sapa_of(request)
    ident = path_id(message_id, "file")
    if not (is_ascii_number(index) and len(index) <= 3):  # a file's place in its message: 0, 1, 2...
        raise HTTPException(404, "no such file")
    position = int(index)
    return await run_blocking(media.serve_file, sapa, ident, position, media.requester_of(request),
                                   actor=staff.actor)


def reply(conversation_id: str, request: Request, staff: Actor, text: str = Form("")) -> Response:
    ident = path_id(conversation_id, "conversation")
    words = text.strip()
    if not words:
        return back(f"/console/conversations/{ident}", "empty")
    if len(words) > REPLY_LIMIT:
        return back(f"/console/conversations/{ident}", "too_long")
    sapa = sapa_of(request)
    with sapa.database.unit_of_work() as session:
        result = desk.reply(session, sapa.knowledge.settings(), conversation_id=ident,
                            agent=session.get_one(Agent, staff.id), text=words, now=sapa.clock.now())
    sapa.dispatcher.wake()
    return back(f"/console/conversations/{ident}", "sent" if result.ok else "refused", result.note)


def note(conversation_id: str, request: Request, staff: Actor, text: str = Form("")) -> Response:
    ident = path_id(conversation_id, "conversation")
    words = text.strip()
    if not words:
        return back(f"/console/conversations/{ident}", "empty")
    if len(words) > REPLY_LIMIT:
        return back(f"/console/conversations/{ident}", "too_long")
    sapa = sapa_of(request)
    with sapa.database.unit_of_work() as session:
        result = desk.add_note(session, sapa.knowledge.settings(), conversation_id=ident,
                               agent=session.get_one(Agent, staff.id), text=words, now=sapa.clock.now())
    sapa.dispatcher.wake()
    return back(f"/console/conversations/{ident}", "noted" if result.ok else "refused", result.note)


def action(conversation_id: str, request: Request, staff: Actor, name: str = Form(...),
           to_agent_id: str = Form("")) -> Response:
    ident = path_id(conversation_id, "conversation")
    if name not in ACTIONS:
        raise HTTPException(400, f"unknown action {name!r}; use one of {', '.join(ACTIONS)}")
    target = parse_id(to_agent_id) if to_agent_id else None
    if name == "transfer" and target is None:
        return back(f"/console/conversations/{ident}", "choose_agent")
    sapa = sapa_of(request)
    with sapa.database.unit_of_work() as session:
        conversation = session.get(Conversation, ident)
        # The satisfaction survey follows a resolved ticket (handlers/sla.py); a plain request for a person has none,
        # so the outcome only promises the survey when there was one to resolve.
        surveyed = conversation is not None and bool(desk.open_tickets(session, conversation.customer_id))
        result = desk.act(session, sapa.knowledge.settings(), action=name, conversation_id=ident,
                          agent=session.get_one(Agent, staff.id), now=sapa.clock.now(), to_agent_id=target)
    sapa.dispatcher.wake()
    outcome = "done_resolve_plain" if name == "resolve" and not surveyed else f"done_{name}"
    return back(f"/console/conversations/{ident}", outcome if result.ok else "refused", result.note)


# --- helpers -------------------------------------------------------------------------------------------------------

def _still_signed_in(request: Request, staff: StaffUser) -> bool:
    return auth.session_valid(request, staff)


def _event_stream(body: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(body, media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


ERRORS = ("refused", "empty", "too_long", "choose_agent")
OUTCOMES = {outcome: "error" if outcome in ERRORS else "ok" for outcome in (
    "sent", "noted", *ERRORS, "availability_online", "availability_away", "done_resolve_plain",
    *(f"done_{name}" for name in ACTIONS))}


def _notice(request: Request) -> dict[str, str] | None:
    return outcome_notice(request, OUTCOMES, "outcome.")


def _canned(settings: Any, language_code: str) -> list[dict[str, str]]:
    """Replies an agent can start from: the FAQ's answers and the reply templates, in the conversation's language."""
    canned = []
    for entry in settings.faq.entries:
        answer = entry.answer.get(language_code) or entry.answer.get(settings.default_language)
        question = entry.question.get(language_code) or next(iter(entry.question.values()))
        if answer:
            canned.append({"label": f"FAQ: {question}", "text": answer.replace("{{ company }}", settings.company.name)})
    for key in ("agent_joined", "resolved", "back_to_bot"):
        texts_ = settings.templates.get(key) or {}
        text = texts_.get(language_code) or texts_.get(settings.default_language)
        if text and "{{" not in text:
            canned.append({"label": key.replace("_", " "), "text": text})
    return canned


texts({
    "inbox.title": {"id": "Kotak masuk", "en": "Inbox"},
    "inbox.filters": {"id": "Saring", "en": "Filter"},
    "inbox.mine": {"id": "Milik saya", "en": "Mine"},
    "inbox.unassigned": {"id": "Belum diambil", "en": "Unassigned"},
    "inbox.vip": {"id": "VIP", "en": "VIP"},
    "inbox.channel": {"id": "Kanal", "en": "Channel"},
    "inbox.any_channel": {"id": "Semua kanal", "en": "All channels"},
    "inbox.status": {"id": "Status", "en": "Status"},
    "inbox.apply": {"id": "Terapkan", "en": "Apply"},
    "inbox.count": {"id": "{n} percakapan", "en": "{n} conversations"},
    "inbox.empty": {"id": "Tidak ada percakapan yang menunggu.", "en": "No conversations waiting."},
    "inbox.more": {"id": "Berikutnya", "en": "Next page"},
    "inbox.waiting": {"id": "menunggu {t}", "en": "waiting {t}"},
    "inbox.sla": {"id": "SLA", "en": "SLA"},
    "inbox.no_sla": {"id": "tanpa tenggat", "en": "no deadline"},
    "inbox.live": {"id": "Diperbarui langsung", "en": "Updates live"},
    "inbox.you_are": {"id": "Status Anda", "en": "Your status"},
    "status.open": {"id": "Terbuka", "en": "Open"},
    "status.bot": {"id": "Bot", "en": "Bot"},
    "status.waiting": {"id": "Menunggu agen", "en": "Waiting"},
    "status.with_agent": {"id": "Dengan agen", "en": "With agent"},
    "status.closed": {"id": "Selesai", "en": "Closed"},
    "availability.online": {"id": "Online", "en": "Online"},
    "availability.away": {"id": "Sedang pergi", "en": "Away"},
    "availability.go_online": {"id": "Jadi online", "en": "Go online"},
    "availability.go_away": {"id": "Tandai pergi", "en": "Set away"},
    "channel.webchat": {"id": "Web chat", "en": "Web chat"},
    "channel.telegram": {"id": "Telegram", "en": "Telegram"},
    "channel.whatsapp": {"id": "WhatsApp", "en": "WhatsApp"},
    "channel.sms": {"id": "SMS", "en": "SMS"},
    "due.left": {"id": "{m} mnt lagi", "en": "{m} min left"},
    "due.over": {"id": "lewat {m} mnt", "en": "{m} min overdue"},
    "conv.held_by": {"id": "Ditangani {name}", "en": "Held by {name}"},
    "conv.unassigned": {"id": "Belum ada yang menangani", "en": "Nobody holds it yet"},
    "conv.waiting_since": {"id": "Menunggu sejak {t} ({w})", "en": "Waiting since {t} ({w})"},
    "conv.transcript": {"id": "Percakapan", "en": "Transcript"},
    "conv.older": {"id": "Pesan sebelumnya", "en": "Older messages"},
    "conv.note": {"id": "Catatan internal", "en": "Internal note"},
    "conv.reply_label": {"id": "Balasan untuk pelanggan", "en": "Reply to the customer"},
    "conv.canned": {"id": "Balasan siap pakai", "en": "Canned replies"},
    "conv.canned_pick": {"id": "Pilih untuk mengisi…", "en": "Pick one to fill in…"},
    "conv.send": {"id": "Kirim balasan", "en": "Send reply"},
    "conv.add_note": {"id": "Simpan sebagai catatan", "en": "Save as note"},
    "conv.note_hint": {"id": "Catatan hanya terlihat oleh staf.", "en": "Notes are seen by staff only."},
    "conv.actions": {"id": "Tindakan", "en": "Actions"},
    "conv.claim": {"id": "Ambil", "en": "Claim"},
    "conv.takeover": {"id": "Ambil alih", "en": "Take over"},
    "conv.resolve": {"id": "Selesaikan", "en": "Resolve"},
    "conv.escalate": {"id": "Eskalasi", "en": "Escalate"},
    "conv.back_to_bot": {"id": "Kembalikan ke bot", "en": "Back to bot"},
    "conv.transfer": {"id": "Alihkan", "en": "Transfer"},
    "conv.transfer_to": {"id": "Alihkan ke", "en": "Transfer to"},
    "conv.pick_agent": {"id": "Pilih agen…", "en": "Choose an agent…"},
    "conv.tickets": {"id": "Tiket terbuka", "en": "Open tickets"},
    "conv.no_tickets": {"id": "Tidak ada tiket terbuka.", "en": "No open tickets."},
    "conv.customer": {"id": "Pelanggan", "en": "Customer"},
    "conv.open_customer": {"id": "Profil lengkap", "en": "Full profile"},
    "conv.closed": {"id": "Percakapan ini sudah selesai.", "en": "This conversation is closed."},
    "conv.read_only": {"id": "Peran Anda hanya bisa membaca.", "en": "Your role can only read."},
    "conv.changed": {"id": "Percakapan ini berubah (diambil, dialihkan, atau selesai).",
                     "en": "This conversation changed (claimed, transferred or closed)."},
    "conv.reload": {"id": "Muat ulang", "en": "Reload"},
    "conv.live": {"id": "Pesan baru muncul otomatis.", "en": "New messages appear by themselves."},
    "msg.note": {"id": "Catatan", "en": "Note"},
    "msg.forwarded": {"id": "Diteruskan dari {who}", "en": "Forwarded from {who}"},
    "msg.file": {"id": "Berkas", "en": "File"},
    "msg.location": {"id": "Lokasi", "en": "Location"},
    "msg.map": {"id": "peta", "en": "map"},
    "msg.contact": {"id": "Kontak", "en": "Contact"},
    "msg.contact_own": {"id": "nomor pelanggan sendiri", "en": "the customer's own number"},
    "msg.contact_other": {"id": "kontak orang lain", "en": "someone else's contact"},
    "msg.status.queued": {"id": "dalam antrean", "en": "queued"},
    "msg.status.sent": {"id": "terkirim", "en": "sent"},
    "msg.status.delivered": {"id": "diterima", "en": "delivered"},
    "msg.status.read": {"id": "dibaca", "en": "read"},
    "msg.status.failed": {"id": "gagal", "en": "failed"},
    "outcome.sent": {"id": "Balasan terkirim ke pelanggan.", "en": "Reply sent to the customer."},
    "outcome.noted": {"id": "Catatan disimpan (pelanggan tidak melihatnya).",
                      "en": "Note saved (the customer does not see it)."},
    "outcome.refused": {"id": "Tidak dilakukan:", "en": "Not done:"},
    "outcome.empty": {"id": "Pesan kosong; tidak ada yang dikirim.", "en": "The message was empty; nothing was sent."},
    "outcome.too_long": {"id": "Pesan terlalu panjang (maks. 4000 karakter).",
                         "en": "The message is too long (4,000 characters at most)."},
    "outcome.choose_agent": {"id": "Pilih agen tujuan dulu.", "en": "Choose who to transfer it to first."},
    "outcome.availability_online": {"id": "Anda online.", "en": "You are online."},
    "outcome.availability_away": {"id": "Anda ditandai sedang pergi.", "en": "You are marked away."},
    "outcome.done_claim": {"id": "Anda mengambil percakapan ini.", "en": "You claimed this conversation."},
    "outcome.done_takeover": {"id": "Anda mengambil alih percakapan ini.", "en": "You took over this conversation."},
    "outcome.done_resolve": {"id": "Selesai; pelanggan akan ditanya kepuasannya.",
                             "en": "Resolved; the customer will be asked for their satisfaction."},
    "outcome.done_resolve_plain": {"id": "Selesai.", "en": "Resolved."},
    "outcome.done_escalate": {"id": "Dieskalasi.", "en": "Escalated."},
    "outcome.done_back_to_bot": {"id": "Dikembalikan ke bot.", "en": "Handed back to the bot."},
    "outcome.done_transfer": {"id": "Dialihkan.", "en": "Transferred."},
})
