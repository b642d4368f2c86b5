"""The dashboard's tables: what the template shows (View: numbers formatted, drill and export links) and the same
tables as rows for CSV/XLSX (TABLES). One builder per table, so a chart, its table and its export agree."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.console import dashboard_live
from bot.console.dashboard_texts import METRIC_DRILLS
from bot.reports import dashboard, dashboard_drill, management
from bot.reports.dashboard import Period, Section
from bot.reports.management import LABELS, Compliance, Report, findings, format_minutes
from handlers.desk import ESCALATION_ROLES
from store.models import Conversation

MINUTES = ("first_response_median_min", "first_response_p90_min", "resolution_median_min", "resolution_p90_min")
PERCENTS = ("first_response_sla_percent", "resolution_sla_percent", "csat_satisfied_percent", "nps_detractors_percent")
LOWER_IS_BETTER = {"tickets_opened", "escalations", "low_scores", "nps_detractors_percent", *MINUTES}


def headline(section: Section) -> list[dict[str, Any]]:
    """The period's headline numbers against the previous period: volume first, then `sapa report`'s deltas."""
    rows: list[dict[str, Any]] = [
        {"name": "conversations", "before": section.previous_conversations, "after": section.conversations.total},
        {"name": "messages", "before": section.previous_messages, "after": section.messages.total},
    ]
    rows += [{"name": d.metric, "before": d.before, "after": d.after} for d in section.report.deltas]
    for row in rows:
        before, after = row["before"], row["after"]
        row["change"] = None if before is None or after is None else round(after - before, 2)
        row["drill"] = METRIC_DRILLS.get(row["name"])
        better = None
        if row["change"]:
            better = (row["change"] < 0) == (row["name"] in LOWER_IS_BETTER)
        row["better"] = better
    return rows


class View:
    """Formatting and links for the template, bound to the page's period and language."""

    def __init__(self, settings: Settings, period: Period, t: Callable[..., str], lang: str) -> None:
        self.settings, self.period, self.t, self.lang = settings, period, t, lang

    def findings(self, report: Report) -> list[str]:
        """`sapa report`'s findings for this report, in the page's language."""
        return findings(report.current, report.previous, self.lang)

    def value(self, name: str, value: float | None) -> str:
        if value is None:
            return "–"
        if name in MINUTES:
            return format_minutes(value)
        if name in PERCENTS:
            return f"{value:.1f}%"
        if name == "nps":
            return "0" if value == 0 else f"{value:+g}"
        if isinstance(value, float) and not value.is_integer():
            return f"{value:.2f}".rstrip("0").rstrip(".")
        return f"{int(value):,}".replace(",", "." if self.lang == "id" else ",")

    def change(self, name: str, change: float | None) -> str:
        if change is None or change == 0:
            return "–" if change is None else "0"
        sign = "+" if change > 0 else "−"
        if name in MINUTES:
            return sign + format_minutes(abs(change))
        if name in PERCENTS:
            return f"{sign}{abs(change):.1f} pp"
        return sign + self.value("", abs(change))

    def label(self, name: str) -> str:
        return self.t(f"dash.metric.{name}", LABELS.get(name, name))

    def percent(self, compliance: Compliance) -> str:
        return "–" if compliance.percent is None else f"{compliance.percent:.1f}%"

    def minutes(self, value: float | None) -> str:
        return format_minutes(value) if value is not None else "–"

    def query(self, *, previous: bool = False, vip: bool = False, **extra: Any) -> str:
        params: dict[str, Any] = dict(self.period.query(previous=previous))
        if vip:
            params["vip"] = "1"
        params.update({k: v for k, v in extra.items() if v is not None})
        return urlencode(params)

    def drill(self, metric: str, *, previous: bool = False, vip: bool = False, group: str | None = None,
              key: Any = None, first: Any = None, last: Any = None) -> str:
        if first is not None:  # one bucket of a chart
            params: dict[str, Any] = {"from": str(first), "to": str(last), "metric": metric}
            if vip:
                params["vip"] = "1"
            if group is not None:
                params.update(group=group, key=str(key))
            return "/console/dashboard/drill?" + urlencode(params)
        return "/console/dashboard/drill?" + self.query(previous=previous, vip=vip, metric=metric, group=group,
                                                        key=None if key is None else str(key))

    def export(self, table: str, fmt: str, *, vip: bool = False) -> str:
        return "/console/dashboard/export?" + self.query(vip=vip, table=table, format=fmt)

    def role(self, level: int) -> str:
        return ESCALATION_ROLES.get(level, "")

    def headline(self, section: Section) -> list[dict[str, Any]]:
        return headline(section)


# --- the same tables as rows ------------------------------------------------------------------------------------

Rows = tuple[list[str], list[list[Any]]]


def _section(session: Session, settings: Settings, period: Period, now: datetime, vip_only: bool) -> Section:
    return dashboard.section(session, settings, period, now=now, vip_only=vip_only,
                             names=management.agent_names(session))


def summary_rows(session: Session, settings: Settings, period: Period, *, now: datetime, vip_only: bool,
                 viewer_id: int) -> Rows:
    section = _section(session, settings, period, now, vip_only)
    return (["metric", "label", "previous", "current", "change"],
            [[r["name"], LABELS.get(r["name"], r["name"]), r["before"], r["after"], r["change"]]
             for r in headline(section)])


def _series_rows(series: dashboard.Series) -> Rows:
    return ([series.unit, *series.channels, "total"],
            [[b.label, *(row[c] for c in series.channels), sum(row.values())]
             for b, row in zip(series.buckets, series.rows, strict=True)])


def conversation_series_rows(session: Session, settings: Settings, period: Period, *, now: datetime,
                             vip_only: bool, viewer_id: int) -> Rows:
    counts = dashboard.conversation_counts(session, settings, period.start, period.end, now=now,
                                           vip_only=vip_only)
    return _series_rows(dashboard.series(counts, period.first, period.last))


def message_series_rows(session: Session, settings: Settings, period: Period, *, now: datetime, vip_only: bool,
                        viewer_id: int) -> Rows:
    counts = dashboard.message_counts(session, settings, period.start, period.end, now=now, vip_only=vip_only)
    return _series_rows(dashboard.series(counts, period.first, period.last))


def trend_rows(session: Session, settings: Settings, period: Period, *, now: datetime, vip_only: bool,
               viewer_id: int) -> Rows:
    section = _section(session, settings, period, now, vip_only)
    return (["bucket", "csat_answered", "csat_average", "csat_satisfied_percent", "nps_answered", "nps"],
            [[p.bucket.label, p.csat.answered, p.csat.average, p.csat.satisfied_percent, p.nps.answered, p.nps.score]
             for p in section.trend])


def sla_rows(session: Session, settings: Settings, period: Period, *, now: datetime, vip_only: bool,
             viewer_id: int) -> Rows:
    section = _section(session, settings, period, now, vip_only)
    out = []
    for label, metrics in (("previous", section.report.previous), ("current", section.report.current)):
        if metrics is None:
            continue
        for name, c in (("first_response", metrics.first_response_sla), ("resolution", metrics.resolution_sla)):
            out.append([label, name, c.met, c.breached, c.pending, c.percent])
    return ["period", "sla", "met", "breached", "pending", "percent"], out


def escalation_rows(session: Session, settings: Settings, period: Period, *, now: datetime, vip_only: bool,
                    viewer_id: int) -> Rows:
    section = _section(session, settings, period, now, vip_only)
    before = section.report.previous.escalations_by_level if section.report.previous else {}
    after = section.report.current.escalations_by_level
    return (["level", "role", "previous", "current"],
            [[level, ESCALATION_ROLES.get(level, ""), before.get(level, 0), after.get(level, 0)]
             for level in sorted(set(before) | set(after))])


def _breakdown_rows(groups: list[management.Breakdown]) -> Rows:
    return (["group", "tickets_opened", "first_response_median_min", "first_response_p90_min",
             "first_response_sla_percent", "resolution_sla_percent", "csat_answered", "csat_average", "nps_answered",
             "nps"],
            [[g.key, g.tickets_opened, g.first_response.median, g.first_response.p90, g.first_response_sla.percent,
              g.resolution_sla.percent, g.csat.answered, g.csat.average, g.nps.answered, g.nps.score]
             for g in groups])


def breakdown(name: str) -> Callable[..., Rows]:
    def rows(session: Session, settings: Settings, period: Period, *, now: datetime, vip_only: bool,
             viewer_id: int) -> Rows:
        return _breakdown_rows(getattr(_section(session, settings, period, now, vip_only).report.current, name))
    return rows


def root_cause_rows(session: Session, settings: Settings, period: Period, *, now: datetime, vip_only: bool,
                    viewer_id: int) -> Rows:
    section = _section(session, settings, period, now, vip_only)
    return ["root_cause", "complaints"], [[cause, n] for cause, n in section.root_causes]


def agent_rows(session: Session, settings: Settings, period: Period, *, now: datetime, vip_only: bool,
               viewer_id: int) -> Rows:
    section = _section(session, settings, period, now, vip_only)
    out = []
    for w in section.workload:
        b = w.breakdown
        out.append([w.name, w.replies, w.conversations, b.tickets_opened if b else 0,
                    b.first_response.median if b else None, b.first_response_sla.percent if b else None,
                    b.resolution_sla.percent if b else None, b.csat.answered if b else 0,
                    b.csat.average if b else None, b.nps.score if b else None])
    return (["agent", "replies", "conversations", "tickets", "first_response_median_min",
             "first_response_sla_percent", "resolution_sla_percent", "csat_answered", "csat_average", "nps"], out)


def findings_rows(session: Session, settings: Settings, period: Period, *, now: datetime, vip_only: bool,
                  viewer_id: int) -> Rows:
    section = _section(session, settings, period, now, vip_only)
    return ["finding"], [[f] for f in section.report.findings]


def conversation_list_rows(session: Session, settings: Settings, period: Period, *, now: datetime, vip_only: bool,
                           viewer_id: int) -> Rows:
    """One row per conversation opened in the period: customer, channel, agents, times, CSAT, categories, tier."""
    ids = list(session.execute(dashboard.conversations_opened(select(Conversation.id), period.start, period.end,
                                                              vip_only).order_by(Conversation.id)).scalars())
    header = list(dashboard_drill.CONVERSATION_HEADER[:-2])  # no drill count, no live deadline
    lines = dashboard_drill.conversation_lines(session, ids)
    return header, [dashboard_drill.conversation_row(ln)[:-2] for ln in lines]


def live_rows(session: Session, settings: Settings, period: Period, *, now: datetime, vip_only: bool,
              viewer_id: int) -> Rows:
    live = dashboard_live.snapshot(session, settings, viewer_id=viewer_id, now=now)
    return (["measure", "value"],
            [["waiting", live.waiting], ["with_agent", live.with_agent], ["breaching_soon", len(live.soon)],
             ["breached", len(live.breached)], ["staff_online", live.online], ["staff", len(live.staff)],
             ["conversations_today", live.conversations_today], ["tickets_today", live.today.tickets_opened],
             ["messages_today", sum(v["in"] + v["out"] for v in live.today.messages_by_channel.values())]])


def staff_rows(session: Session, settings: Settings, period: Period, *, now: datetime, vip_only: bool,
               viewer_id: int) -> Rows:
    live = dashboard_live.snapshot(session, settings, viewer_id=viewer_id, now=now)
    return (["staff", "role", "availability", "can_answer_now", "last_seen_at", "holding"],
            [[p.name, p.role, p.availability, p.present, p.last_seen_at, p.holding] for p in live.staff])


TABLES: dict[str, Callable[..., Rows]] = {
    "summary": summary_rows,
    "conversations": conversation_series_rows,
    "messages": message_series_rows,
    "trend": trend_rows,
    "sla": sla_rows,
    "escalations": escalation_rows,
    "categories": breakdown("by_category"),
    "channels": breakdown("by_channel"),
    "tiers": breakdown("by_tier"),
    "root_causes": root_cause_rows,
    "agents": agent_rows,
    "findings": findings_rows,
    "conversation_list": conversation_list_rows,
    "live": live_rows,
    "staff": staff_rows,
}
