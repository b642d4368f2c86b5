"""Broadcasts in the console (CRM-4.3): compose one, see before sending who gets it on which channel and why others
do not, how it reads on each channel (the approved WhatsApp template outside the 24-hour window included), the
quiet hours and frequency cap that apply, send a test to oneself, schedule it; then pause, resume or cancel.

Every operation is `handlers.broadcasts` — the functions `/sapa broadcast`, `sapa broadcast` and
`/api/broadcasts` call — with the signed-in marketer as the actor (`agent:<id>`), so its rules, audit rows and
tasks are theirs. The progress while it runs, the recipients and their export are in campaign_recipients.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.console.auth import StaffUser, sapa_of
from bot.console.campaign_forms import choices, describe, filters_from, form_values, preference_order
from bot.console.campaign_recipients import progress_context
from bot.console.campaign_texts import Marketer, outcome
from bot.console.views import local_time
from bot.console.web import back, page, path_id
from channels.twilio import sms_segments
from handlers import broadcasts
from store import broadcasts as broadcast_store
from store import segments
from store.audit import record
from store.broadcasts import BroadcastError
from store.models import Broadcast, Segment

BASE = "/console/campaigns/broadcasts"
ACTIONS = ("pause", "resume", "cancel")
BEFORE_SENDING = ("draft", "scheduled")
MAX_AHEAD = timedelta(days=366)  # a schedule further out is a typo (and years past 9999 are no dates)


def mount(app: FastAPI) -> None:
    routes = APIRouter(prefix=BASE, include_in_schema=False)
    routes.add_api_route("/new", composer_page, methods=["GET"], response_class=HTMLResponse)
    routes.add_api_route("", create, methods=["POST"])
    routes.add_api_route("/{broadcast_id}", broadcast_page, methods=["GET"], response_class=HTMLResponse)
    routes.add_api_route("/{broadcast_id}/test", send_test, methods=["POST"])
    routes.add_api_route("/{broadcast_id}/schedule", schedule, methods=["POST"])
    routes.add_api_route("/{broadcast_id}/action", action, methods=["POST"])
    app.include_router(routes)


# --- the composer -----------------------------------------------------------------------------------------------


def _composer(request: Request, staff: StaffUser, values: dict[str, Any], *, error: str | None = None,
              status_code: int = 200) -> HTMLResponse:
    sapa = sapa_of(request)
    settings = sapa.settings
    with sapa.database.unit_of_work(read_only=True) as session:
        saved = [(s.name, describe(s.filters)) for s in segments.list_all(session)]
    enabled = list(broadcasts.enabled_channels(settings))
    order = values.get("channels") or enabled
    return page(request, "broadcast_new.html", status_code=status_code, staff=staff, csrf_token=staff.csrf_token,
                active="campaigns", error=error, saved=saved, choices=choices(settings), enabled=enabled,
                order=order + [""] * (len(enabled) - len(order)), languages=list(settings.languages),
                default_language=settings.default_language, variables=broadcasts.VARIABLES,
                max_text=broadcasts.MAX_TEXT, name=values.get("name", ""), segment=values.get("segment", ""),
                messages=values.get("messages", {}), values=form_values(values.get("filters", {})),
                rules=_rules(settings, enabled, {}))


def composer_page(request: Request, staff: Marketer) -> HTMLResponse:
    return _composer(request, staff, {"segment": request.query_params.get("segment", "")[:80]})


async def create(request: Request, staff: Marketer) -> Response:
    form = await request.form()
    sapa = sapa_of(request)
    settings = sapa.settings
    name = str(form.get("name") or "").strip()
    segment = str(form.get("segment") or "").strip()
    filters = filters_from(form) if not segment else {}
    messages = {lang: str(form.get(f"message_{lang}") or "").strip() for lang in settings.languages}
    messages = {lang: text for lang, text in messages.items() if text}
    channels = preference_order(form, len(segments.PUSH_CHANNELS))
    values = {"name": name, "segment": segment, "filters": filters, "messages": messages, "channels": channels}
    try:
        with sapa.database.unit_of_work() as session:
            made = broadcasts.create(session, settings, name=name, messages=messages, channels=channels,
                                     created_by=staff.actor, now=sapa.clock.now(), segment=segment or None,
                                     filters=filters)
            made_id = made.id
    except (BroadcastError, segments.FilterError) as exc:
        return _composer(request, staff, values, error=str(exc), status_code=422)
    return RedirectResponse(f"{BASE}/{made_id}?done=created", status_code=303)


# --- one broadcast ------------------------------------------------------------------------------------------------


def _rules(settings: Settings, channels: list[str], by_channel: dict[str, int]) -> dict[str, Any]:
    """Quiet hours, the frequency cap and the sending rate, as the page states them before sending; with counts,
    how long each channel takes at its broadcast rate."""
    rules = settings.broadcasts
    rates = {c: rules.rate_per_second.get(c) for c in channels}
    minutes = {c: max(1, round(by_channel[c] / rate / 60)) for c, rate in rates.items()
               if rate and by_channel.get(c)}
    return {"quiet_start": rules.quiet_start, "quiet_end": rules.quiet_end,
            "quiet": rules.quiet_start != rules.quiet_end, "max_per_customer": rules.max_per_customer,
            "cap_days": rules.cap_days, "rates": rates, "minutes": minutes, "timezone": settings.company.timezone}


def _channel_views(settings: Settings, broadcast: Broadcast, rendered: dict[str, Any]) -> list[dict[str, Any]]:
    """Per language, how the message reads on each of the broadcast's channels. WhatsApp has two faces: the text
    while the customer's 24-hour window is open, else the approved `broadcast` template with its variables filled
    in (the template's own wording is the one approved in Twilio; Sapa fills {{1}}, {{2}}, ...)."""
    approved = settings.channels.whatsapp.templates.get("broadcast", {})
    views = []
    for lang, message in rendered.items():
        template = approved.get(lang)
        channels = []
        for channel in broadcast.channels:
            view: dict[str, Any] = {"channel": channel, "text": message.text}
            if channel == "sms":
                view["segments"] = sms_segments(message.text)
            if channel == "whatsapp":
                view["template"] = None if template is None else {
                    "sid": template.content_sid,
                    "variables": [(index, name, message.template_variables.get(name, ""))
                                  for index, name in enumerate(template.variables, start=1)]}
            channels.append(view)
        views.append({"language": lang, "channels": channels})
    return views


def _before_sending(session: Session, settings: Settings, broadcast: Broadcast, now: datetime) -> dict[str, Any]:
    preview = broadcasts.preview(session, settings, broadcast.id, now)
    rendered = broadcasts.rendered_samples(session, settings, broadcast.id, now)
    start = broadcast.scheduled_at if broadcast.scheduled_at and broadcast.scheduled_at > now else now
    held = broadcast_store.quiet_until(settings, settings.company.timezone, start)
    local_now = now.astimezone(settings.tz)
    return {"preview": preview, "views": _channel_views(settings, broadcast, rendered),
            "rules": _rules(settings, list(broadcast.channels), preview["by_channel"]),
            "held_until": local_time(settings, held) if held else None,
            "min_at": local_now.strftime("%Y-%m-%dT%H:%M"),
            "default_at": (local_now + timedelta(hours=1)).replace(minute=0).strftime("%Y-%m-%dT%H:%M")}


def broadcast_page(broadcast_id: str, request: Request, staff: Marketer) -> HTMLResponse:
    ident = path_id(broadcast_id, "broadcast")
    sapa = sapa_of(request)
    settings, now = sapa.settings, sapa.clock.now()
    with sapa.database.unit_of_work() as session:
        broadcast = session.get(Broadcast, ident)
        if broadcast is None:
            raise HTTPException(404, "no such broadcast")
        segment = session.get(Segment, broadcast.segment_id) if broadcast.segment_id else None
        context: dict[str, Any] = {
            "broadcast": broadcast, "segment_name": segment.name if segment else None,
            "filters": describe(broadcast.filters), "created": local_time(settings, broadcast.created_at),
            "scheduled": local_time(settings, broadcast.scheduled_at), "timezone": settings.company.timezone,
            "languages": [lang for lang in settings.languages if broadcast.messages.get(lang)],
            "before": _before_sending(session, settings, broadcast, now)
            if broadcast.status in BEFORE_SENDING else None,
        }
        context["live"] = progress_context(session, settings, broadcast, now) \
            if broadcast.status not in ("draft",) else None
        if context["before"] is not None:  # the preview names a sample customer
            record(session, actor=staff.actor, action="broadcast.previewed", subject_type="broadcast",
                   subject_id=broadcast.id, now=now, detail={"via": "console"})
    return page(request, "broadcast.html", staff=staff, csrf_token=staff.csrf_token, active="campaigns",
                notice=outcome(request), **context)


def send_test(broadcast_id: str, request: Request, staff: Marketer, channel: str = Form(""), to: str = Form(""),
              language_code: str = Form("", alias="language")) -> Response:
    """A test to the marketer's own number or chat id: not a recipient, not counted, logged as a test."""
    ident = path_id(broadcast_id, "broadcast")
    path = f"{BASE}/{ident}"
    if not to.strip() or not channel:
        return back(path, "test_refused", "to: give your own number (WhatsApp, SMS) or Telegram chat id")
    sapa = sapa_of(request)
    try:
        with sapa.database.unit_of_work() as session:
            broadcasts.send_test(session, sapa.settings, ident, channel=channel, to=to[:64], now=sapa.clock.now(),
                                 actor=staff.actor, language=language_code or None)
    except BroadcastError as exc:
        if exc.kind == "not_found":
            raise HTTPException(404, "no such broadcast") from None
        return back(path, "test_refused", str(exc))
    return back(path, "tested")


def schedule(broadcast_id: str, request: Request, staff: Marketer, at: str = Form(""), when: str = Form("at")
             ) -> Response:
    """At a date and time in the company's time zone, or now."""
    ident = path_id(broadcast_id, "broadcast")
    path = f"{BASE}/{ident}"
    sapa = sapa_of(request)
    now = sapa.clock.now()
    if when != "now" and not at.strip():
        return back(path, "schedule_refused", "at: choose a date and time, or send now")
    try:
        moment = None if when == "now" else broadcasts.parse_at(at.strip()[:40], sapa.settings)
        if moment is not None and moment < now - timedelta(minutes=1):
            return back(path, "schedule_refused",
                        f"at: {local_time(sapa.settings, moment)} has passed; choose a later time or send now")
        if moment is not None and moment > now + MAX_AHEAD:
            return back(path, "schedule_refused", f"at: at most {MAX_AHEAD.days} days ahead")
        with sapa.database.unit_of_work() as session:
            broadcasts.schedule(session, sapa.settings, ident, now=now, actor=staff.actor, at=moment or now)
    except BroadcastError as exc:
        if exc.kind == "not_found":
            raise HTTPException(404, "no such broadcast") from None
        return back(path, "schedule_refused", str(exc))
    return back(path, "scheduled")


def action(broadcast_id: str, request: Request, staff: Marketer, name: str = Form("")) -> Response:
    ident = path_id(broadcast_id, "broadcast")
    path = f"{BASE}/{ident}"
    if name not in ACTIONS:
        return back(path, "refused", f"action: use one of {', '.join(ACTIONS)}")
    operation = {"pause": broadcasts.pause, "resume": broadcasts.resume, "cancel": broadcasts.cancel}[name]
    sapa = sapa_of(request)
    try:
        with sapa.database.unit_of_work() as session:
            operation(session, sapa.settings, ident, now=sapa.clock.now(), actor=staff.actor)
    except BroadcastError as exc:
        if exc.kind == "not_found":
            raise HTTPException(404, "no such broadcast") from None
        return back(path, "refused", str(exc))
    return back(path, f"{name}d" if name != "cancel" else "cancelled")
