"""The managers' dashboard (issue 17, CRM-5, VIP-5.2): a period's numbers, as charts and tables, for all and VIPs.

The headline numbers, breakdowns, comparison with the previous period and findings are `sapa report`'s own
(`management.build_report`), not a second computation; this module adds only what a chart needs on top: counts per
channel per day (or week, or month), CSAT and NPS per bucket, root causes of the cohort's tickets and each agent's
workload. Every series adds up to the report's total for the period (tests/reports/test_dashboard_report.py).

Days are the company's local days; the counts per day come from bot/reports/daily_counts.py (completed days kept
in a table, the rest counted live, the same numbers either way).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.reports import daily_counts, management
from bot.reports.daily_counts import conversations_opened
from bot.reports.management import NONE_LABEL, CsatSummary, NpsSummary, Report, SurveyFacts
from store.models import Conversation, Message

PRESETS = (7, 30, 90, 365)
DEFAULT_DAYS = 7
LONGEST_DAYS = 731  # a custom period of two years at most: the page stays one page
CHANNEL_ORDER = ("whatsapp", "telegram", "sms", "webchat")


class PeriodError(ValueError):
    """A period the dashboard cannot show; the message says why (shown as a 400)."""


@dataclass(frozen=True)
class Period:
    """Whole local days first..last (inclusive) and the period of the same length just before (CRM-5.5)."""

    first: date
    last: date
    preset: int | None  # days of a preset, None for a custom from/to
    start: datetime
    end: datetime
    previous_first: date
    previous_last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def previous(self) -> tuple[datetime, datetime]:
        return management.previous_period(self.start, self.end)

    def query(self, *, previous: bool = False) -> dict[str, str]:
        """The URL parameters that name this period (or the previous one) exactly."""
        first, last = (self.previous_first, self.previous_last) if previous else (self.first, self.last)
        return {"from": first.isoformat(), "to": last.isoformat()}


def _day(raw: str, name: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise PeriodError(f"{name}: use a date written YYYY-MM-DD") from None


def choose_period(settings: Settings, now: datetime, *, days: str | None = None, first: str | None = None,
                  last: str | None = None) -> Period:
    """The period a request asks for: `from`/`to` (custom, inclusive), else a preset of `days` (7, 30, 90, 365)
    ending yesterday, else the last 7 completed days."""
    today = now.astimezone(settings.tz).date()
    if first or last:
        if not (first and last):
            raise PeriodError("from and to: give both dates, or neither")
        first_day, last_day, preset = _day(first, "from"), _day(last, "to"), None
        if first_day > last_day:
            raise PeriodError(f"from {first_day} is after to {last_day}")
        if last_day > today:
            raise PeriodError(f"to {last_day} is in the future")
        if (last_day - first_day).days + 1 > LONGEST_DAYS:
            raise PeriodError(f"a period of {LONGEST_DAYS} days at most")
    else:
        try:
            preset = int(days) if days else DEFAULT_DAYS
        except ValueError:
            preset = 0
        if preset not in PRESETS:
            raise PeriodError(f"days: use one of {', '.join(map(str, PRESETS))}")
        last_day = today - timedelta(days=1)
        first_day = last_day - timedelta(days=preset - 1)
    start, end = management.local_period(settings, first_day, last_day)
    length = timedelta(days=(last_day - first_day).days + 1)
    return Period(first_day, last_day, preset, start, end, first_day - length, first_day - timedelta(days=1))


# --- counts per local day ---------------------------------------------------------------------------------------


def _per_day(session: Session, settings: Settings, start: datetime, end: datetime, what: str, now: datetime,
             vip_only: bool) -> dict[tuple[date, str], int]:
    """Counts per local day and channel of the messages the report counts (what="messages",
    management.counted_messages) or the conversations opened (what="conversations"), everyone's and VIPs' read
    together (daily_counts.per_day: completed days from the table, the rest live) and remembered while
    management.memoized is on, so the page's two sections read them once."""
    def count() -> dict[tuple[date, str, str, bool], int]:
        counts = daily_counts.per_day(session, settings, start, end, what, now)
        totals: dict[tuple[str, str, bool], int] = defaultdict(int)
        for (_, channel, way, is_vip), n in counts.items():
            totals[(channel, way, is_vip)] += n
        # The same counts give the report's totals for the period (management.message_totals).
        management.remember(session, (what, start, end), lambda: dict(totals))
        return counts

    flagged = management.remember(session, ("per_day", what, start, end), count)
    out: dict[tuple[date, str], int] = defaultdict(int)
    for (day, channel, _, is_vip), n in flagged.items():
        if is_vip or not vip_only:
            out[(day, channel)] += n
    return out


def message_counts(session: Session, settings: Settings, start: datetime, end: datetime, *, now: datetime,
                   vip_only: bool) -> dict[tuple[date, str], int]:
    """Messages the report counts (management.counted_messages), per local day and channel."""
    return _per_day(session, settings, start, end, "messages", now, vip_only)


def conversation_counts(session: Session, settings: Settings, start: datetime, end: datetime, *, now: datetime,
                        vip_only: bool) -> dict[tuple[date, str], int]:
    """Conversations opened, per local day and channel."""
    return _per_day(session, settings, start, end, "conversations", now, vip_only)


# --- buckets ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bucket:
    label: str
    first: date
    last: date


def buckets(first: date, last: date) -> tuple[str, list[Bucket]]:
    """Days for a period up to 31 days, ISO weeks up to 120 days, months beyond: a chart stays readable on a phone."""
    span = (last - first).days + 1
    out: list[Bucket] = []
    if span <= 31:
        return "day", [Bucket(d.isoformat(), d, d) for d in (first + timedelta(days=i) for i in range(span))]
    day = first
    if span <= 120:
        while day <= last:
            end = min(day + timedelta(days=6 - day.weekday()), last)
            out.append(Bucket(day.isoformat(), day, end))
            day = end + timedelta(days=1)
        return "week", out
    while day <= last:
        following = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
        end = min(following - timedelta(days=1), last)
        out.append(Bucket(f"{day:%Y-%m}", day, end))
        day = end + timedelta(days=1)
    return "month", out


@dataclass(frozen=True)
class Series:
    """Counts per channel per bucket: rows[i][channel]; totals per channel over the whole period."""

    unit: str  # day, week, month
    buckets: list[Bucket]
    channels: list[str]
    rows: list[dict[str, int]]
    totals: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.totals.values())


def _ordered_channels(found: Iterable[str]) -> list[str]:
    names = set(found)
    return [c for c in CHANNEL_ORDER if c in names] + sorted(names - set(CHANNEL_ORDER))


def series(counts: dict[tuple[date, str], int], first: date, last: date) -> Series:
    unit, parts = buckets(first, last)
    channels = _ordered_channels(channel for _, channel in counts)
    rows = [dict.fromkeys(channels, 0) for _ in parts]
    index = _bucket_index(parts)
    for (day, channel), n in counts.items():
        if day in index:
            rows[index[day]][channel] += n
    totals = {c: sum(n for (_, ch), n in counts.items() if ch == c) for c in channels}
    return Series(unit, parts, channels, rows, totals)


def _bucket_index(parts: list[Bucket]) -> dict[date, int]:
    """day -> the position of its bucket."""
    return {b.first + timedelta(days=d): i for i, b in enumerate(parts) for d in range((b.last - b.first).days + 1)}


@dataclass(frozen=True)
class TrendPoint:
    bucket: Bucket
    csat: CsatSummary
    nps: NpsSummary


def trend(settings: Settings, csat: list[SurveyFacts], nps: list[SurveyFacts], first: date, last: date
          ) -> list[TrendPoint]:
    """CSAT and NPS per bucket, from the very answers the report counts (management.surveys_answered)."""
    _, parts = buckets(first, last)
    index = _bucket_index(parts)

    def scores(answers: list[SurveyFacts]) -> list[list[int]]:
        found: list[list[int]] = [[] for _ in parts]
        for s in answers:
            at = index.get(s.answered_at.astimezone(settings.tz).date()) if s.answered_at else None
            if at is not None:
                found[at].append(s.score or 0)
        return found

    detractor_max = settings.surveys.nps.detractor_max
    return [TrendPoint(b, CsatSummary.of(c), NpsSummary.of(n, detractor_max))
            for b, c, n in zip(parts, scores(csat), scores(nps), strict=True)]


# --- agents' workload -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """An agent's period: replies written, conversations they wrote in, and the report's numbers for their tickets."""

    agent_id: int | None
    name: str
    replies: int
    conversations: int
    breakdown: management.Breakdown | None


def agent_replies(query: Any, start: datetime, end: datetime, vip_only: bool) -> Any:
    """`query` narrowed to the replies agents wrote to customers in [start, end)."""
    return management.counted_messages(query, start, end, vip_only).where(Message.sender == "agent",
                                                                          Message.direction == "out")


def workload(session: Session, report: Report, start: datetime, end: datetime, *, vip_only: bool,
             names: dict[int, str]) -> list[Workload]:
    written = {agent_id: (int(n), int(c)) for agent_id, n, c in session.execute(
        agent_replies(select(Message.agent_id, func.count(), func.count(distinct(Message.conversation_id))),
                      start, end, vip_only).group_by(Message.agent_id))}
    by_name = {b.key: b for b in report.current.by_agent}
    ids_by_name = {name: agent_id for agent_id, name in names.items()}
    keys = {names.get(a or 0, management.UNASSIGNED) for a in written} | set(by_name)
    out = []
    for name in sorted(keys, key=lambda k: (k == management.UNASSIGNED, k.lower())):
        agent_id = ids_by_name.get(name)
        replies, conversations = written.get(agent_id, (0, 0)) if agent_id is not None else (0, 0)
        out.append(Workload(agent_id, name, replies, conversations, by_name.get(name)))
    return out


# --- one scope: everyone, or VIPs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    vip_only: bool
    report: Report  # `sapa report`'s numbers, deltas and findings for the period
    conversations: Series
    messages: Series
    previous_conversations: int
    previous_messages: int
    trend: list[TrendPoint]
    root_causes: list[tuple[str, int]]
    workload: list[Workload]


@dataclass(frozen=True)
class Dashboard:
    period: Period
    generated_at: datetime
    everyone: Section
    vip: Section
    notes: list[str] = field(default_factory=list)


def _conversation_totals(session: Session, start: datetime, end: datetime) -> dict[tuple[str, str, bool], int]:
    """Conversations opened in [start, end) per channel (and "", for the shape of message_totals) and VIP flag."""
    vip = Conversation.customer_id.in_(management.vip_customers()).label("vip")

    def count() -> dict[tuple[str, str, bool], int]:
        query = conversations_opened(select(Conversation.channel, vip, func.count()), start, end, False)
        return {(channel, "", bool(is_vip)): int(n)
                for channel, is_vip, n in session.execute(query.group_by(Conversation.channel, vip))}

    return management.remember(session, ("conversations", start, end), count)


def section(session: Session, settings: Settings, period: Period, *, now: datetime, vip_only: bool,
            names: dict[int, str]) -> Section:
    # The messages per day first, of this period and the one before: they also answer the report's message totals
    # (management.memoized), read from the completed days kept in daily_counts rather than a scan of the period.
    before_start, before_end = period.previous
    messages = series(message_counts(session, settings, period.start, period.end, now=now, vip_only=vip_only),
                      period.first, period.last)
    message_counts(session, settings, before_start, before_end, now=now, vip_only=vip_only)
    conversation_counts(session, settings, before_start, before_end, now=now, vip_only=vip_only)
    report = management.build_report(session, settings, period.start, period.end, vip_only=vip_only,
                                     compare_to=period.previous, now=now)
    conversations = series(conversation_counts(session, settings, period.start, period.end, now=now,
                                               vip_only=vip_only), period.first, period.last)
    previous_messages = sum(n for (_, _, vip), n in management.message_totals(session, before_start, before_end).items()
                            if vip or not vip_only)
    previous_conversations = sum(n for (_, _, vip), n in _conversation_totals(session, before_start, before_end).items()
                                 if vip or not vip_only)
    csat, _ = management.surveys_answered(session, period.start, period.end, vip_only)
    nps, _ = management.surveys_answered(session, period.start, period.end, vip_only, kind="nps")
    rows = management.ticket_rows(session, period.start, period.end, vip_only, names)
    causes = Counter(r.ticket.root_cause or NONE_LABEL for r in rows if r.ticket.kind == "complaint")
    return Section(
        vip_only=vip_only, report=report, conversations=conversations, messages=messages,
        previous_conversations=previous_conversations, previous_messages=previous_messages,
        trend=trend(settings, csat, nps, period.first, period.last),
        root_causes=sorted(causes.items(), key=lambda kv: (-kv[1], kv[0])),
        workload=workload(session, report, period.start, period.end, vip_only=vip_only, names=names))


def build(session: Session, settings: Settings, period: Period, *, now: datetime) -> Dashboard:
    """Everything the dashboard shows for `period`, as the data stands at `now`."""
    names = management.agent_names(session)
    with management.memoized(session):
        return Dashboard(period=period, generated_at=now,
                         everyone=section(session, settings, period, now=now, vip_only=False, names=names),
                         vip=section(session, settings, period, now=now, vip_only=True, names=names))
