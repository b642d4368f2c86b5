"""Segments in the console (CRM-4.1): build one from the filters, see how many match and a few of them, save it
by name, delete it. The same `store.segments` functions as `/sapa segment` and `/api/segments`.

The builder is a GET form (the filters travel in the address, so a preview works without JavaScript and can be
bookmarked); campaigns.js refreshes the count as the marketer ticks boxes, from `/console/campaigns/segments/count`.
A preview names a few customers (name, language, VIP, loyalty tier) and counts by channel: what marketing may see,
never an address or a conversation. Each preview that shows names is in the audit log (`segment.previewed`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from bot.console.auth import StaffUser, sapa_of
from bot.console.campaign_forms import choices, describe, filters_from, form_values, hidden_pairs
from bot.console.campaign_texts import Marketer, outcome
from bot.console.web import back, environment, language, page, translator
from handlers.broadcasts import enabled_channels
from store import segments
from store.audit import record
from store.models import LoyaltyAccount

BASE = "/console/campaigns/segments"


def mount(app: FastAPI) -> None:
    routes = APIRouter(prefix=BASE, include_in_schema=False)
    routes.add_api_route("", segments_page, methods=["GET"], response_class=HTMLResponse)
    routes.add_api_route("/count", count_partial, methods=["GET"], response_class=HTMLResponse)
    routes.add_api_route("", save, methods=["POST"])
    routes.add_api_route("/delete", delete, methods=["POST"])
    app.include_router(routes)


def _preview(request: Request, staff: StaffUser, filters: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """(the preview as the page shows it, None) or (None, what is wrong with the filters). Audited: it names people."""
    sapa = sapa_of(request)
    now = sapa.clock.now()
    channels = enabled_channels(sapa.settings) or segments.PUSH_CHANNELS
    with sapa.database.unit_of_work() as session:
        try:
            shown = segments.preview(session, sapa.settings, filters, now, channels=channels)
        except segments.FilterError as exc:
            return None, str(exc)
        ids = [sample["id"] for sample in shown.samples]
        tiers = {int(cid): str(tier) for cid, tier in session.execute(
            select(LoyaltyAccount.customer_id, LoyaltyAccount.tier).where(LoyaltyAccount.customer_id.in_(ids)))}
        if ids:
            record(session, actor=staff.actor, action="segment.previewed", subject_type="segment", subject_id=None,
                   now=now, detail={"filters": segments.validate(filters, segments.vocabulary(sapa.settings)),
                                    "customers_shown": ids, "via": "console"})
    data = shown.as_dict()
    clean = segments.validate(filters, segments.vocabulary(sapa.settings))
    data["hidden"], data["described"] = hidden_pairs(clean), describe(clean)
    data["samples"] = [{**sample, "tier": tiers.get(sample["id"])} for sample in shown.samples]
    return data, None


def _context(request: Request, staff: StaffUser, filters: dict[str, Any], *, name: str = "",
             error: str | None = None) -> dict[str, Any]:
    sapa = sapa_of(request)
    preview, problem = _preview(request, staff, filters)
    with sapa.database.unit_of_work(read_only=True) as session:
        saved = [{"name": s.name, "filters": describe(s.filters), "by": s.created_by,
                  "query": urlencode([*hidden_pairs(s.filters), ("name", s.name)]),
                  "updated": s.updated_at} for s in segments.list_all(session)]
    return {"staff": staff, "csrf_token": staff.csrf_token, "active": "campaigns", "choices": choices(sapa.settings),
            "values": form_values(filters), "preview": preview, "error": error or problem, "saved": saved,
            "name": name, "notice": outcome(request), "described": describe(filters)}


def segments_page(request: Request, staff: Marketer) -> HTMLResponse:
    filters = filters_from(request.query_params)
    context = _context(request, staff, filters, name=request.query_params.get("name", "")[:80])
    return page(request, "segments.html", status_code=422 if context["error"] else 200, **context)


def count_partial(request: Request, staff: Marketer) -> HTMLResponse:
    """The live count and sample for the filters in the query (campaigns.js swaps it in as boxes are ticked)."""
    preview, problem = _preview(request, staff, filters_from(request.query_params))
    lang = language(request)
    html = environment.get_template("_segment_preview.html").render(request=request, lang=lang, t=translator(lang),
                                                                    preview=preview, error=problem)
    return HTMLResponse(html, status_code=422 if problem else 200, headers={"Cache-Control": "no-store"})


async def save(request: Request, staff: Marketer) -> Response:
    """Save the filters by name (a name in use is updated: the marketer sees it in the list with its filters)."""
    form = await request.form()
    name = str(form.get("name") or "").strip()
    filters = filters_from(form)
    sapa = sapa_of(request)
    now = sapa.clock.now()
    try:
        with sapa.database.unit_of_work() as session:
            saved, created = segments.save(session, sapa.settings, name, filters, created_by=staff.actor, now=now)
            record(session, actor=staff.actor, action="segment.saved", subject_type="segment", subject_id=saved.id,
                   now=now, detail={"name": saved.name, "filters": saved.filters, "created": created, "via": "console"})
    except (segments.FilterError, segments.SegmentError) as exc:
        context = _context(request, staff, filters, name=name, error=str(exc))
        return page(request, "segments.html", status_code=422, **context)
    return back(BASE, "segment_saved" if created else "segment_updated")


def delete(request: Request, staff: Marketer, name: str = Form(...)) -> Response:
    sapa = sapa_of(request)
    now = sapa.clock.now()
    try:
        with sapa.database.unit_of_work() as session:
            found = segments.get(session, name)
            segments.delete(session, name)
            record(session, actor=staff.actor, action="segment.deleted", subject_type="segment",
                   subject_id=found.id if found else None, now=now, detail={"name": name.strip(), "via": "console"})
    except segments.SegmentError as exc:
        return back(BASE, "segment_refused", str(exc))
    return back(BASE, "segment_deleted")
