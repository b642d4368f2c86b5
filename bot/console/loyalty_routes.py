"""The loyalty programme in the console (CRM-4.2, CRM-4.5): the tiers, the rewards catalogue with its stock, and
the programme report for a period as charts, each drawn from a table on the page (static/charts.js).

The report is `bot.reports.programme.build_programme_report`, the one `sapa report programme` prints, so the
console and the CLI never disagree. Stock and availability change as `sapa loyalty rewards stock|disable` changes
them, with the marketer as the audit actor. Nothing here names a customer.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select

from bot.console.auth import sapa_of
from bot.console.campaign_texts import Marketer, outcome
from bot.console.exports import download, export_format
from bot.console.views import local_time
from bot.console.web import back, language, page
from bot.reports.management import local_period, previous_period
from bot.reports.programme import build_programme_report, period_label, table_rows
from store import loyalty
from store.audit import record
from store.models import LoyaltyAccount, Redemption

BASE = "/console/campaigns/loyalty"
DEFAULT_DAYS = 30
MAX_DAYS = 366
MAX_STOCK = 10_000_000
EARLIEST = date(2000, 1, 1)  # before any Sapa data; the period before it must still be a date


def mount(app: FastAPI) -> None:
    routes = APIRouter(prefix=BASE, include_in_schema=False)
    routes.add_api_route("", loyalty_page, methods=["GET"], response_class=HTMLResponse)
    routes.add_api_route("/rewards", change_reward, methods=["POST"])
    routes.add_api_route("/export", export_report, methods=["GET"])
    app.include_router(routes)


def _period(request: Request, today: date) -> tuple[date, date, str | None]:
    """The days asked for (?from=&to=, inclusive), else the last 30 days; a bad period is explained, not used."""
    raw_from, raw_to = request.query_params.get("from") or "", request.query_params.get("to") or ""
    default = (today - timedelta(days=DEFAULT_DAYS - 1), today, None)
    if not raw_from and not raw_to:
        return default
    try:
        first = date.fromisoformat(raw_from[:10]) if raw_from else today - timedelta(days=DEFAULT_DAYS - 1)
        last = date.fromisoformat(raw_to[:10]) if raw_to else today
    except ValueError:
        return (*default[:2], "from, to: give dates such as 2026-12-01")
    if first < EARLIEST or last > today + timedelta(days=MAX_DAYS):
        return (*default[:2], f"from, to: between {EARLIEST.isoformat()} and a year from today")
    if first > last:
        return (*default[:2], "from: the first day comes after the last")
    if (last - first).days >= MAX_DAYS:
        return (*default[:2], f"from, to: at most {MAX_DAYS} days")
    return first, last, None


def loyalty_page(request: Request, staff: Marketer) -> HTMLResponse:
    sapa = sapa_of(request)
    settings, now = sapa.settings, sapa.clock.now()
    first, last, problem = _period(request, now.astimezone(settings.tz).date())
    start, end = local_period(settings, first, last)
    with sapa.database.unit_of_work() as session:
        loyalty.sync_rewards(session, settings, now)  # the config's rewards are listed before anyone redeemed one
        report = build_programme_report(session, settings, start, end, compare_to=previous_period(start, end),
                                        now=now)
        rewards = loyalty.catalogue(session)
        redeemed = {int(reward): int(n) for reward, n in session.execute(
            select(Redemption.reward_id, func.count()).where(Redemption.status != "cancelled")
            .group_by(Redemption.reward_id))}
        members = {str(tier): int(n) for tier, n in session.execute(
            select(LoyaltyAccount.tier, func.count()).group_by(LoyaltyAccount.tier))}
    lang = language(request)
    previous = report.previous
    assert previous is not None
    context: dict[str, Any] = {
        "report": report, "current": report.current, "previous": previous,
        "period": period_label(report, report.current).replace(" to ", " – "),
        "previous_period": period_label(report, previous).replace(" to ", " – "),
        "first": first.isoformat(), "last": last.isoformat(), "error": problem,
        "tiers": [{"tier": t, "members": members.get(t.name, 0)} for t in settings.loyalty.tiers],
        "rewards": [{"reward": r, "name": loyalty.reward_name(r, lang if lang in settings.languages else
                                                               settings.default_language, settings.default_language),
                     "redeemed": redeemed.get(r.id, 0)} for r in rewards],
        "enabled": settings.loyalty.enabled, "rupiah_per_point": settings.loyalty.rupiah_per_point,
        "expiry_months": settings.loyalty.expiry_months, "tier_window_days": settings.loyalty.tier_window_days,
        "computed": local_time(settings, report.scores_computed_at) if report.scores_computed_at else None,
    }
    return page(request, "loyalty.html", staff=staff, csrf_token=staff.csrf_token, active="campaigns",
                notice=outcome(request), **context)


def export_report(request: Request, staff: Marketer) -> Response:
    """The programme report of the period as a table (`sapa report programme --format csv`'s rows): CSV or XLSX.
    It names no customer, so it is not an audited export of personal data."""
    fmt = export_format(request.query_params.get("format"))
    sapa = sapa_of(request)
    settings, now = sapa.settings, sapa.clock.now()
    first, last, problem = _period(request, now.astimezone(settings.tz).date())
    if problem:
        return Response(problem, status_code=400, media_type="text/plain; charset=utf-8")
    start, end = local_period(settings, first, last)
    with sapa.database.unit_of_work(read_only=True) as session:
        report = build_programme_report(session, settings, start, end, compare_to=previous_period(start, end),
                                        now=now)
    return download(f"loyalty-programme-{first.isoformat()}-{last.isoformat()}", fmt,
                    ["period", "section", "group", "metric", "value"], list(table_rows(report)))


def change_reward(request: Request, staff: Marketer, code: str = Form(...), stock: str = Form(""),
                  change: str = Form("stock")) -> Response:
    """Set a reward's stock (blank: unlimited), or stop or resume offering it."""
    sapa = sapa_of(request)
    now = sapa.clock.now()
    if change not in ("stock", "disable", "enable"):
        return back(BASE, "reward_refused", "change: stock, disable or enable")
    new_stock: int | None = None
    if change == "stock" and stock.strip():
        if not (stock.strip().isascii() and stock.strip().isdigit()) or int(stock.strip()) > MAX_STOCK:
            return back(BASE, "reward_refused",
                        f"stock: a whole number from 0 to {MAX_STOCK:,}, or blank for unlimited")
        new_stock = int(stock.strip())
    with sapa.database.unit_of_work() as session:
        loyalty.sync_rewards(session, sapa.settings, now)
        reward = loyalty.find_reward(session, code[:40])
        if reward is None:
            return back(BASE, "reward_refused", f"no reward {code[:40]!r}")
        if change == "stock":
            before, reward.stock = reward.stock, new_stock
            detail: dict[str, Any] = {"from": before, "to": new_stock, "via": "console"}
            action = "loyalty.reward_stock"
        else:
            reward.active = change == "enable"
            detail, action = {"via": "console"}, f"loyalty.reward_{change}d"
        reward.updated_at = now
        record(session, actor=staff.actor, action=action, subject_type="reward", subject_id=reward.code, now=now,
               detail=detail)
    return back(BASE, f"reward_{change}")
