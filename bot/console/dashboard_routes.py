"""The managers' dashboard (issue 17): `/console/dashboard` with the live queue and a period's numbers as charts,
`/console/dashboard/drill` for the tickets, surveys or conversations behind any number, and CSV/XLSX exports of
every table and drill (`/console/dashboard/export`, `/console/dashboard/drill/export`).

Permission `dashboard.view` (supervisors, management, admin); anyone else gets 403, an anonymous visitor the sign-in
page. The numbers are `sapa report`'s (bot/reports/management.py through bot/reports/dashboard.py); the live part is
the inbox's queue (bot/console/dashboard_live.py). A drill page lists customers, so opening one is audited
(`dashboard.drill_viewed`), and so is every export (`dashboard.exported`), with the staff member as actor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.exc import IntegrityError

from bot.console import auth, dashboard_live, dashboard_tables
from bot.console.auth import StaffUser, sapa_of
from bot.console.dashboard_texts import METRIC_DRILLS
from bot.console.exports import download, export_format
from bot.console.views import local_time
from bot.console.web import language, page, translator
from bot.reports import daily_counts, dashboard, dashboard_drill
from bot.reports.dashboard import Period, PeriodError
from bot.reports.management import format_minutes
from store.audit import record

Viewer = Annotated[StaffUser, Depends(auth.require("dashboard.view"))]
LIVE = ("waiting", "with_agent", "soon", "breached")
SHOWN = 500  # lines a drill page lists; its export has them all


def router() -> APIRouter:
    routes = APIRouter(prefix="/console/dashboard", include_in_schema=False)
    routes.add_api_route("", dashboard_page, methods=["GET"], response_class=HTMLResponse)
    routes.add_api_route("/drill", drill_page, methods=["GET"], response_class=HTMLResponse)
    routes.add_api_route("/export", export_table, methods=["GET"])
    routes.add_api_route("/drill/export", export_drill, methods=["GET"])
    return routes


def mount(app: FastAPI) -> None:
    app.include_router(router())


# --- what the request asks for ----------------------------------------------------------------------------------


def _period(request: Request) -> Period:
    sapa = sapa_of(request)
    query = request.query_params
    try:
        return dashboard.choose_period(sapa.settings, sapa.clock.now(), days=query.get("days"),
                                       first=query.get("from"), last=query.get("to"))
    except PeriodError as exc:
        raise HTTPException(400, str(exc)) from exc


def _vip(request: Request) -> bool:
    raw = request.query_params.get("vip") or "0"
    if raw not in ("0", "1"):
        raise HTTPException(400, "vip: use 0 or 1")
    return raw == "1"


def _audit(request: Request, staff: StaffUser, action: str, detail: dict[str, Any]) -> None:
    sapa = sapa_of(request)
    with sapa.database.unit_of_work() as session:
        record(session, actor=staff.actor, action=action, subject_type="dashboard", subject_id=None,
               now=sapa.clock.now(), detail=detail)


# --- the page ---------------------------------------------------------------------------------------------------


def _keep_daily_counts(request: Request, period: Period, now: datetime) -> None:
    """Store the completed days of the period (and the one before) not kept yet, so this view and the next read
    them from daily_counts; usually the nightly task has, and this only reads."""
    sapa = sapa_of(request)
    with sapa.database.unit_of_work(read_only=True) as session:
        if not daily_counts.missing(session, sapa.settings, period.previous_first, period.last, now):
            return
    try:
        with sapa.database.unit_of_work() as session:
            daily_counts.fill(session, sapa.settings, period.previous_first, period.last, now)
    except IntegrityError:
        pass  # another server stored the same days first: the same numbers


def _build(request: Request, staff: StaffUser, period: Period) -> tuple[dashboard.Dashboard, dashboard_live.Live]:
    sapa = sapa_of(request)
    now = sapa.clock.now()
    _keep_daily_counts(request, period, now)
    with sapa.database.unit_of_work(read_only=True) as session:
        built = dashboard.build(session, sapa.settings, period, now=now)
        live = dashboard_live.snapshot(session, sapa.settings, viewer_id=staff.id, now=now)
    return built, live


def dashboard_page(request: Request, staff: Viewer) -> HTMLResponse:
    period = _period(request)
    built, live = _build(request, staff, period)
    sapa = sapa_of(request)
    lang = language(request)
    return page(request, "dashboard.html", staff=staff, csrf_token=staff.csrf_token, active="dashboard",
                d=built, live=live, period=period, presets=dashboard.PRESETS,
                view=dashboard_tables.View(sapa.settings, period, translator(lang), lang),
                local=lambda moment: local_time(sapa.settings, moment))


# --- drill-down -------------------------------------------------------------------------------------------------


def _drill(request: Request, staff: StaffUser, limit: int) -> tuple[dashboard_drill.Drill, dict[str, Any]]:
    """The drill a request names, and what the page says about it (metric, period, group)."""
    sapa = sapa_of(request)
    query = request.query_params
    metric = query.get("metric") or ""
    now = sapa.clock.now()
    group, key = query.get("group") or None, query.get("key")
    if metric.startswith("live_") and metric.removeprefix("live_") in LIVE:
        which = metric.removeprefix("live_")
        with sapa.database.unit_of_work(read_only=True) as session:
            ids, due = dashboard_live.live_ids(session, sapa.settings, which, viewer_id=staff.id, now=now)
            result = dashboard_drill.live_drill(session, ids, due, limit)
        return result, {"metric": metric, "period": None, "vip": False, "group": None, "key": None}
    if metric not in dashboard_drill.METRICS:
        raise HTTPException(404, "no such number")
    period, vip = _period(request), _vip(request)
    with sapa.database.unit_of_work(read_only=True) as session:
        try:
            result = dashboard_drill.drill(session, sapa.settings, metric, period.start, period.end, now=now,
                                           vip_only=vip, group=group, key=key, limit=limit)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc
    return result, {"metric": metric, "period": period, "vip": vip, "group": group, "key": key}


def drill_page(request: Request, staff: Viewer) -> HTMLResponse:
    result, about = _drill(request, staff, SHOWN)
    _audit(request, staff, "dashboard.drill_viewed",
           {"query": str(request.url.query)[:500], "lines": len(result.lines)})
    sapa = sapa_of(request)
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in ("format", "lang")]
    return page(request, "dashboard_drill.html", staff=staff, csrf_token=staff.csrf_token, active="dashboard",
                result=result, about=about, shown=SHOWN, export_query=kept, drills=METRIC_DRILLS,
                local=lambda moment: local_time(sapa.settings, moment), minutes=format_minutes)


def export_drill(request: Request, staff: Viewer) -> Response:
    fmt = export_format(request.query_params.get("format"))
    result, about = _drill(request, staff, 10 ** 9)
    header, rows = dashboard_drill.export_rows(result)
    _audit(request, staff, "dashboard.exported", {"table": "drill", "query": str(request.url.query)[:500],
                                                  "rows": len(rows), "format": fmt})
    period = about["period"]
    suffix = f"{period.first}_{period.last}" if period else datetime.now().strftime("%Y%m%d-%H%M")
    return download(f"sapa-{about['metric']}-{suffix}", fmt, header, rows)


# --- exports of the page's tables -------------------------------------------------------------------------------


def export_table(request: Request, staff: Viewer) -> Response:
    fmt = export_format(request.query_params.get("format"))
    table = request.query_params.get("table") or ""
    if table not in dashboard_tables.TABLES:
        raise HTTPException(400, f"table: use one of {', '.join(dashboard_tables.TABLES)}")
    period, vip = _period(request), _vip(request)
    sapa = sapa_of(request)

    def rows() -> tuple[Iterable[str], list[list[Any]]]:
        now = sapa.clock.now()
        with sapa.database.unit_of_work(read_only=True) as session:
            maker: Callable[..., tuple[Iterable[str], list[list[Any]]]] = dashboard_tables.TABLES[table]
            return maker(session, sapa.settings, period, now=now, vip_only=vip, viewer_id=staff.id)

    header, body = rows()
    _audit(request, staff, "dashboard.exported", {"table": table, "from": str(period.first), "to": str(period.last),
                                                  "vip": vip, "rows": len(body), "format": fmt})
    scope = "vip-" if vip else ""
    return download(f"sapa-{scope}{table}-{period.first}_{period.last}", fmt, list(header), body)
