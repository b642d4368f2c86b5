"""CRM-4.5: the loyalty programme report for one period, optionally against an earlier one.

Read-only over the points ledger, loyalty accounts, redemptions, transactions, messages, customer scores and
broadcasts. Definitions, so the numbers can be checked:

- Members are loyalty accounts opened before the period ended; per tier by the tier they hold *now* (tiers
  are not kept as history). Tier changes count accounts whose current tier was reached in the period.
- Points earned, redeemed and expired sum the ledger rows of that kind written in the period (redeemed and
  expired as positive numbers); adjustments are the net of `adjust` rows.
- Redemptions count those made in the period, cancelled ones left out. The redemption rate is the share of
  customers who could redeem (points left at the start of the period, or points earned in it) who redeemed.
- Active customers bought something (a transaction) or wrote to us (an inbound message) in the period.
- Segments are the RFM segments as last computed (CRM-4.1), so they describe now, not the period; points and
  redemptions per segment are the period's, by today's segment.
- Broadcasts are those started in the period, each measured as `store.broadcast_stats` defines; the
  totals' rates are percentages of the messages sent.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import distinct, func, select, union
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.reports.management import Delta, csv_table, local_period
from store.broadcast_stats import BroadcastStats, SegmentParticipation, broadcast_stats, percent, segment_participation
from store.models import Broadcast, LoyaltyAccount, LoyaltyEntry, Message, Redemption, Transaction
from store.scores import last_computed_at, segment_counts


@dataclass(frozen=True)
class ProgrammeMetrics:
    """Everything measured for one period [start, end)."""

    start: datetime
    end: datetime
    members: int
    new_members: int
    members_by_tier: dict[str, int]
    tier_changes: int
    points_earned: int
    earners: int
    points_redeemed: int
    points_expired: int
    points_adjusted: int
    redemptions: int
    redeemers: int
    could_redeem: int  # points left at the start, or earned in the period
    active_customers: int
    purchasers: int
    writers: int
    by_segment: list[SegmentParticipation]
    broadcasts: list[BroadcastStats]

    @property
    def redemption_rate(self) -> float | None:
        return percent(self.redeemers, self.could_redeem)

    def broadcast_total(self, name: str) -> int:
        return sum(int(getattr(b, name)) for b in self.broadcasts)

    def broadcast_rate(self, name: str) -> float | None:
        return percent(self.broadcast_total(name), self.broadcast_total("sent"))


@dataclass(frozen=True)
class ProgrammeReport:
    generated_at: datetime
    timezone: str
    current: ProgrammeMetrics
    segments: dict[str, int]  # customers per RFM segment, as last computed
    scores_computed_at: datetime | None
    previous: ProgrammeMetrics | None = None
    deltas: list[Delta] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)

    title = "Loyalty programme report"


# --- measuring ------------------------------------------------------------------------------------------


def _ledger_sums(session: Session, start: datetime, end: datetime) -> dict[str, tuple[int, int]]:
    """kind -> (customers, signed points) of ledger rows written in [start, end)."""
    return {kind: (int(who), int(points or 0)) for kind, who, points in session.execute(
        select(LoyaltyEntry.kind, func.count(distinct(LoyaltyEntry.customer_id)), func.sum(LoyaltyEntry.points))
        .where(LoyaltyEntry.created_at >= start, LoyaltyEntry.created_at < end).group_by(LoyaltyEntry.kind))}


def _could_redeem(session: Session, start: datetime, end: datetime) -> int:
    last_row = (select(func.max(LoyaltyEntry.id).label("id")).where(LoyaltyEntry.created_at < start)
                .group_by(LoyaltyEntry.customer_id).subquery())
    with_points = (select(LoyaltyEntry.customer_id).join(last_row, last_row.c.id == LoyaltyEntry.id)
                   .where(LoyaltyEntry.balance_after > 0))
    earned = select(LoyaltyEntry.customer_id).where(
        LoyaltyEntry.kind == "earn", LoyaltyEntry.created_at >= start, LoyaltyEntry.created_at < end)
    return int(session.execute(select(func.count()).select_from(union(with_points, earned).subquery())).scalar_one())


def measure(session: Session, settings: Settings, start: datetime, end: datetime, *, now: datetime
            ) -> ProgrammeMetrics:
    """The programme's numbers for [start, end), as the data stands at `now`."""
    opened_before_end = LoyaltyAccount.created_at < end
    by_tier = {tier: int(n) for tier, n in session.execute(
        select(LoyaltyAccount.tier, func.count()).where(opened_before_end).group_by(LoyaltyAccount.tier)
        .order_by(LoyaltyAccount.tier))}
    tiers = [t.name for t in settings.loyalty.tiers]
    members_by_tier = {t: by_tier.pop(t, 0) for t in tiers} | by_tier
    new_members = session.execute(select(func.count()).select_from(LoyaltyAccount).where(
        opened_before_end, LoyaltyAccount.created_at >= start)).scalar_one()
    tier_changes = session.execute(select(func.count()).select_from(LoyaltyAccount).where(
        LoyaltyAccount.tier_since >= start, LoyaltyAccount.tier_since < end,
        LoyaltyAccount.tier_since > LoyaltyAccount.created_at)).scalar_one()
    ledger = _ledger_sums(session, start, end)
    redemptions, redeemers = session.execute(
        select(func.count(), func.count(distinct(Redemption.customer_id)))
        .where(Redemption.status != "cancelled", Redemption.created_at >= start, Redemption.created_at < end)).one()
    bought = select(Transaction.customer_id).where(Transaction.occurred_at >= start, Transaction.occurred_at < end)
    wrote = select(Message.customer_id).where(Message.direction == "in", Message.created_at >= start,
                                              Message.created_at < end)

    def count(query: Any) -> int:
        return int(session.execute(select(func.count()).select_from(query.subquery())).scalar_one())

    broadcast_ids = session.execute(
        select(Broadcast.id).where(Broadcast.started_at >= start, Broadcast.started_at < end)
        .order_by(Broadcast.started_at, Broadcast.id)).scalars().all()
    return ProgrammeMetrics(
        start=start, end=end, members=sum(members_by_tier.values()), new_members=int(new_members),
        members_by_tier=members_by_tier, tier_changes=int(tier_changes),
        points_earned=ledger.get("earn", (0, 0))[1], earners=ledger.get("earn", (0, 0))[0],
        points_redeemed=-ledger.get("redeem", (0, 0))[1], points_expired=-ledger.get("expire", (0, 0))[1],
        points_adjusted=ledger.get("adjust", (0, 0))[1], redemptions=int(redemptions), redeemers=int(redeemers),
        could_redeem=_could_redeem(session, start, end),
        active_customers=count(union(bought, wrote)), purchasers=count(bought.distinct()),
        writers=count(wrote.distinct()), by_segment=segment_participation(session, start, end),
        broadcasts=[broadcast_stats(session, settings, b, now) for b in broadcast_ids],
    )


# --- comparing and finding ------------------------------------------------------------------------------

# (metric name, label, getter, a percentage)
_HEADLINES: list[tuple[str, str, Callable[[ProgrammeMetrics], float | None], bool]] = [
    ("members", "Members", lambda m: m.members, False),
    ("new_members", "New members", lambda m: m.new_members, False),
    ("active_customers", "Active customers", lambda m: m.active_customers, False),
    ("points_earned", "Points earned", lambda m: m.points_earned, False),
    ("points_redeemed", "Points redeemed", lambda m: m.points_redeemed, False),
    ("points_expired", "Points expired", lambda m: m.points_expired, False),
    ("redemptions", "Redemptions", lambda m: m.redemptions, False),
    ("redemption_rate", "Redemption rate", lambda m: m.redemption_rate, True),
    ("broadcasts", "Broadcasts", lambda m: len(m.broadcasts), False),
    ("broadcast_sent", "Broadcast messages sent", lambda m: m.broadcast_total("sent"), False),
    ("broadcast_delivery_rate", "Broadcast delivery rate", lambda m: m.broadcast_rate("delivered"), True),
    ("broadcast_read_rate", "Broadcast read rate", lambda m: m.broadcast_rate("read"), True),
    ("broadcast_reply_rate", "Broadcast reply rate", lambda m: m.broadcast_rate("replies"), True),
    ("broadcast_opt_out_rate", "Broadcast opt-out rate", lambda m: m.broadcast_rate("opt_outs"), True),
    ("broadcast_redemption_rate", "Broadcast redemption rate", lambda m: m.broadcast_rate("redeemers"), True),
]
LABELS = {name: label for name, label, _, _ in _HEADLINES}
_PERCENT = {name for name, _, _, is_percent in _HEADLINES if is_percent}


def compare(previous: ProgrammeMetrics, current: ProgrammeMetrics) -> list[Delta]:
    return [Delta(name, get(previous), get(current)) for name, _, get, _ in _HEADLINES]


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def findings(current: ProgrammeMetrics, previous: ProgrammeMetrics | None, segments: dict[str, int],
             scores_computed_at: datetime | None) -> list[str]:
    """Plain-English observations, each computed from the numbers above."""
    found: list[str] = []
    if previous is not None:
        for delta in compare(previous, current):
            before, after = delta.before, delta.after
            if before is None or after is None:
                continue
            is_percent = delta.metric in _PERCENT
            # Percentages are compared as people read them, whole points; counts exactly.
            if (round(before) == round(after)) if is_percent else before == after:
                continue
            show = (lambda v: f"{v:.0f}%") if is_percent else _number
            trend = "rose" if after > before else "fell"
            found.append(f"{LABELS[delta.metric]} {trend} from {show(before)} to {show(after)}")
    if current.points_earned == 0:
        found.append("No points were earned in this period")
    if current.points_expired:
        found.append(f"{_number(current.points_expired)} points expired unused")
    if current.could_redeem and not current.redeemers:
        found.append(f"None of the {current.could_redeem} customers with points redeemed any")
    replied = [b for b in current.broadcasts if b.rates.get("reply") is not None]
    if len(replied) >= 2:
        best = max(replied, key=lambda b: (b.rates["reply"] or 0, -b.broadcast_id))
        found.append(f"Broadcast #{best.broadcast_id} {best.name} had the best reply rate "
                     f"({best.rates['reply']:.0f}%)")
    worst = [b for b in current.broadcasts if b.opt_outs]
    if worst:
        most = max(worst, key=lambda b: (b.opt_outs, -b.broadcast_id))
        found.append(f"Broadcast #{most.broadcast_id} {most.name} made {most.opt_outs} "
                     f"{'customer' if most.opt_outs == 1 else 'customers'} opt out of marketing")
    if scores_computed_at is None:
        found.append("Customer segments have not been computed yet (sapa analysis scores --recompute)")
    elif segments.get("at_risk"):
        found.append(f"{segments['at_risk']} customers are at risk: they bought often, but not lately")
    return found


def build_programme_report(session: Session, settings: Settings, start: datetime, end: datetime, *,
                           compare_to: tuple[datetime, datetime] | None = None, now: datetime | None = None
                           ) -> ProgrammeReport:
    """The programme report for [start, end), optionally against an earlier period (CRM-4.5)."""
    now = now or datetime.now(UTC)
    current = measure(session, settings, start, end, now=now)
    previous = measure(session, settings, compare_to[0], compare_to[1], now=now) if compare_to else None
    segments = segment_counts(session)
    computed_at = last_computed_at(session)
    return ProgrammeReport(generated_at=now, timezone=settings.company.timezone, current=current,
                           segments=segments, scores_computed_at=computed_at, previous=previous,
                           deltas=compare(previous, current) if previous else [],
                           findings=findings(current, previous, segments, computed_at))


def completed_month(settings: Settings, now: datetime) -> tuple[datetime, datetime]:
    """The last whole calendar month before `now`, in the company time zone."""
    first_of_this = now.astimezone(settings.tz).date().replace(day=1)
    first_of_last = (first_of_this - timedelta(days=1)).replace(day=1)
    return local_period(settings, first_of_last, first_of_this - timedelta(days=1))


def month_before(settings: Settings, start: datetime) -> tuple[datetime, datetime]:
    """The calendar month before the one starting at `start`."""
    first: date = start.astimezone(settings.tz).date()
    return local_period(settings, (first - timedelta(days=1)).replace(day=1), first - timedelta(days=1))


# --- rendering and export -------------------------------------------------------------------------------


def period_label(report: ProgrammeReport, metrics: ProgrammeMetrics) -> str:
    zone = ZoneInfo(report.timezone)
    last = (metrics.end - timedelta(microseconds=1)).astimezone(zone)
    return f"{metrics.start.astimezone(zone):%Y-%m-%d} to {last:%Y-%m-%d}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"


def _summary_lines(m: ProgrammeMetrics, bullet: str) -> list[str]:
    return [
        f"{bullet}Members: {m.members} ({m.new_members} new; tier changes: {m.tier_changes}); "
        f"by tier now: {_counts(m.members_by_tier)}",
        f"{bullet}Points: {m.points_earned} earned by {m.earners} customers, {m.points_redeemed} redeemed, "
        f"{m.points_expired} expired, {m.points_adjusted:+d} adjusted",
        f"{bullet}Redemptions: {m.redemptions} by {m.redeemers} customers; redemption rate "
        f"{_pct(m.redemption_rate)} of {m.could_redeem} customers with points",
        f"{bullet}Active customers: {m.active_customers} ({m.purchasers} bought, {m.writers} wrote)",
        f"{bullet}Broadcasts: {len(m.broadcasts)} started, {m.broadcast_total('sent')} messages sent; delivered "
        f"{_pct(m.broadcast_rate('delivered'))}, read {_pct(m.broadcast_rate('read'))}, replied "
        f"{_pct(m.broadcast_rate('replies'))}, opted out {_pct(m.broadcast_rate('opt_outs'))}, redeemed "
        f"{_pct(m.broadcast_rate('redeemers'))}",
    ]


def _delta_text(delta: Delta) -> str:
    def show(value: float | None) -> str:
        if value is None:
            return "-"
        return f"{value:.1f}%" if delta.metric in _PERCENT else _number(value)

    change = "" if delta.change is None else f" ({'+' if delta.change > 0 else ''}{delta.change:g})"
    return f"{LABELS[delta.metric]}: {show(delta.before)} -> {show(delta.after)}{change}"


def _render(report: ProgrammeReport, *, bold: Callable[[str], str], bullet: str) -> str:
    m = report.current
    lines = [bold(f"{report.title}: {period_label(report, m)}"), "", bold("Summary"), *_summary_lines(m, bullet)]
    if report.findings:
        lines += ["", bold("Findings"), *(f"{bullet}{f}" for f in report.findings)]
    if report.previous is not None:
        lines += ["", bold(f"Compared with {period_label(report, report.previous)}"),
                  *(f"{bullet}{_delta_text(d)}" for d in report.deltas)]
    computed = (f"computed {report.scores_computed_at.astimezone(ZoneInfo(report.timezone)):%Y-%m-%d %H:%M}"
                if report.scores_computed_at else "not computed yet")
    lines += ["", bold(f"Customers per segment ({computed})"),
              f"{bullet}{_counts({k: v for k, v in report.segments.items() if v}) }"]
    if m.by_segment:
        lines += ["", bold("Points and redemptions per segment")]
        lines += [f"{bullet}{s.segment}: {s.customers} customers, {s.points_earned} points earned by {s.earners}, "
                  f"{s.redemptions} redemptions by {s.redeemers} ({s.points_redeemed} points)"
                  for s in m.by_segment if s.customers or s.earners or s.redemptions]
    if m.broadcasts:
        lines += ["", bold("Broadcasts")]
        for b in m.broadcasts:
            lines.append(f"{bullet}#{b.broadcast_id} {b.name}: {b.sent} sent, delivered {_pct(b.rates['delivered'])}, "
                         f"read {_pct(b.rates['read'])}, replied {_pct(b.rates['reply'])}, {b.opt_outs} opt-outs, "
                         f"{b.redemptions} redemptions, {b.failed} failed")
    return "\n".join(lines)


def render_text(report: ProgrammeReport) -> str:
    """Plain text for a terminal."""
    return _render(report, bold=lambda s: s, bullet="- ")


def render_markdown(report: ProgrammeReport) -> str:
    """Slack mrkdwn: *bold* headings and bullets."""
    return _render(report, bold=lambda s: f"*{s}*", bullet="• ")


def _metrics_dict(m: ProgrammeMetrics) -> dict[str, Any]:
    data = {name: getattr(m, name) for name in m.__dataclass_fields__ if name not in ("by_segment", "broadcasts")}
    data.update(start=m.start.isoformat(), end=m.end.isoformat(), redemption_rate=m.redemption_rate,
                by_segment=[asdict(s) for s in m.by_segment], broadcasts=[b.as_dict() for b in m.broadcasts])
    data["broadcast_totals"] = {name: m.broadcast_total(name) for name in
                                ("sent", "delivered", "read", "failed", "replies", "opt_outs", "redemptions")}
    data["broadcast_rates"] = {name: m.broadcast_rate(key) for name, key in
                               (("delivered", "delivered"), ("read", "read"), ("reply", "replies"),
                                ("opt_out", "opt_outs"), ("redemption", "redeemers"))}
    return data


def to_json(report: ProgrammeReport) -> str:
    data = {"title": report.title, "generated_at": report.generated_at.isoformat(), "timezone": report.timezone,
            "current": _metrics_dict(report.current),
            "previous": _metrics_dict(report.previous) if report.previous else None,
            "segments": report.segments,
            "scores_computed_at": report.scores_computed_at.isoformat() if report.scores_computed_at else None,
            "deltas": [{"metric": d.metric, "before": d.before, "after": d.after, "change": d.change}
                       for d in report.deltas],
            "findings": report.findings}
    return json.dumps(data, ensure_ascii=False, indent=2)


def _csv_rows(period: str, m: ProgrammeMetrics) -> Iterable[list[Any]]:
    for name, _, get, _ in _HEADLINES:
        yield [period, "summary", "", name, get(m)]
    for name in ("tier_changes", "earners", "redeemers", "could_redeem", "purchasers", "writers",
                 "points_adjusted"):
        yield [period, "summary", "", name, getattr(m, name)]
    for tier, n in m.members_by_tier.items():
        yield [period, "members_by_tier", tier, "members", n]
    for s in m.by_segment:
        for name in ("customers", "earners", "points_earned", "redeemers", "redemptions", "points_redeemed"):
            yield [period, "by_segment", s.segment, name, getattr(s, name)]
    for b in m.broadcasts:
        for name in ("sent", "delivered", "read", "failed", "replies", "opt_outs", "redemptions", "points_earned"):
            yield [period, "broadcasts", f"#{b.broadcast_id} {b.name}", name, getattr(b, name)]
        for name, value in b.rates.items():
            yield [period, "broadcasts", f"#{b.broadcast_id} {b.name}", f"{name}_rate", value]


def table_rows(report: ProgrammeReport) -> Iterable[list[Any]]:
    """One row per number: period (current/previous/now), section, group, metric, value (the console's export)."""
    previous = _csv_rows("previous", report.previous) if report.previous is not None else ()
    segments = (["now", "segments", segment, "customers", n] for segment, n in report.segments.items())
    findings = (["current", "findings", "", "finding", finding] for finding in report.findings)
    return itertools.chain(_csv_rows("current", report.current), previous, segments, findings)


def to_csv(report: ProgrammeReport) -> str:
    """One row per number: period (current/previous/now), section, group, metric, value."""
    return csv_table(table_rows(report))
