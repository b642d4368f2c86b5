"""Service reports (CRM-5.1, CRM-5.3..5.5, VIP-5.2, VIP-5.3): what the data says about one period.

Read-only over tickets, ticket events, surveys and messages. Definitions, so the numbers can be checked:

- Tickets are counted in the period they were *opened*; their response and resolution times, SLA results
  and breakdowns belong to that period (a cohort), measured as the data stands at `now`. "Resolved" counts
  tickets whose `resolved_at` falls in the period.
- Times are wall-clock minutes from opening (for a reopened ticket, from its latest reopening, where its due
  times start). Resolving counts as the first answer if no agent wrote before, as the product's SLA checks do.
  The SLA verdict uses the due times stored on the ticket (which already count business hours): met if
  answered (resolved) by the due time, breached if later, or if it is still unanswered (unresolved) and the
  due time has passed; otherwise pending, and left out of the percentage.
- p90 is the nearest-rank 90th percentile.
- CSAT counts answers given in the period; satisfied means 4 or 5; a low score is at or below
  `surveys.low_score`. A ticket's tier is its customer's VIP flag now; a survey keeps the tier it was asked in.
- NPS counts answers (0..10) given in the period: promoters 9-10, detractors at or below
  `surveys.nps.detractor_max` (standard: 0-6), passives in between; NPS = promoters % - detractors %, -100..100.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from bot.config import Settings
from handlers.desk import ESCALATION_ROLES, ticket_reference
from store.models import Agent, Conversation, Customer, Message, Survey, Ticket, TicketEvent

NONE_LABEL = "(none)"
UNASSIGNED = "(unassigned)"


@dataclass(frozen=True)
class Durations:
    """Minutes from opening: how many tickets have a value, the median and the 90th percentile."""

    count: int = 0
    median: float | None = None
    p90: float | None = None

    @classmethod
    def of(cls, minutes: list[float]) -> Durations:
        if not minutes:
            return cls()
        ordered = sorted(minutes)
        p90 = ordered[max(math.ceil(0.9 * len(ordered)) - 1, 0)]
        return cls(len(ordered), round(statistics.median(ordered), 1), round(p90, 1))


@dataclass(frozen=True)
class Compliance:
    """SLA results: met by the due time, breached (late, or still open past it), pending (not due yet)."""

    met: int = 0
    breached: int = 0
    pending: int = 0

    @property
    def percent(self) -> float | None:
        judged = self.met + self.breached
        return round(100 * self.met / judged, 1) if judged else None


@dataclass(frozen=True)
class CsatSummary:
    answered: int = 0
    average: float | None = None
    satisfied_percent: float | None = None  # scores 4-5

    @classmethod
    def of(cls, scores: list[int]) -> CsatSummary:
        if not scores:
            return cls()
        satisfied = sum(1 for s in scores if s >= 4)
        return cls(len(scores), round(sum(scores) / len(scores), 2), round(100 * satisfied / len(scores), 1))


@dataclass(frozen=True)
class NpsSummary:
    answered: int = 0
    promoters_percent: float | None = None  # 9-10
    passives_percent: float | None = None
    detractors_percent: float | None = None  # at or below surveys.nps.detractor_max
    score: float | None = None  # promoters % - detractors %

    @classmethod
    def of(cls, scores: list[int], detractor_max: int) -> NpsSummary:
        if not scores:
            return cls()
        promoters = sum(1 for s in scores if s >= 9)
        detractors = sum(1 for s in scores if s <= detractor_max)
        n = len(scores)
        return cls(n, round(100 * promoters / n, 1), round(100 * (n - promoters - detractors) / n, 1),
                   round(100 * detractors / n, 1), round(100 * (promoters - detractors) / n, 1))


@dataclass(frozen=True)
class LowScore:
    survey_id: int
    ticket: str | None
    customer: str
    score: int
    comment: str | None
    channel: str
    agent: str
    tier: str
    answered_at: datetime


@dataclass(frozen=True)
class Breakdown:
    """One group (a category, channel, agent or tier): its tickets and its CSAT."""

    key: str
    tickets_opened: int
    first_response: Durations
    first_response_sla: Compliance
    resolution_sla: Compliance
    csat: CsatSummary
    nps: NpsSummary = field(default_factory=NpsSummary)


@dataclass(frozen=True)
class Metrics:
    """Everything measured for one period [start, end)."""

    start: datetime
    end: datetime
    opened_by_kind: dict[str, int]
    resolved_by_kind: dict[str, int]
    first_response: Durations
    resolution: Durations
    first_response_sla: Compliance
    resolution_sla: Compliance
    unanswered_past_due: int
    escalations_by_level: dict[int, int]
    csat_asked: int
    csat: CsatSummary
    low_scores: list[LowScore]
    by_category: list[Breakdown]
    by_channel: list[Breakdown]
    by_agent: list[Breakdown]
    by_tier: list[Breakdown]
    messages_by_channel: dict[str, dict[str, int]]  # channel -> {"in": n, "out": n}
    nps_asked: int = 0
    nps: NpsSummary = field(default_factory=NpsSummary)
    nps_detractors: list[LowScore] = field(default_factory=list)

    @property
    def tickets_opened(self) -> int:
        return sum(self.opened_by_kind.values())

    @property
    def tickets_resolved(self) -> int:
        return sum(self.resolved_by_kind.values())

    @property
    def escalations(self) -> int:
        return sum(self.escalations_by_level.values())


@dataclass(frozen=True)
class Delta:
    metric: str
    before: float | None
    after: float | None

    @property
    def change(self) -> float | None:
        if self.before is None or self.after is None:
            return None
        return round(self.after - self.before, 2)


@dataclass(frozen=True)
class Report:
    scope: str  # "all" or "vip"
    generated_at: datetime
    timezone: str
    current: Metrics
    previous: Metrics | None = None
    deltas: list[Delta] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return "VIP service report" if self.scope == "vip" else "Service report"


# --- periods --------------------------------------------------------------------------------------------


def local_period(settings: Settings, first: date, last: date) -> tuple[datetime, datetime]:
    """Whole days `first`..`last` (inclusive) in the company time zone, as [start, end)."""
    return (datetime.combine(first, time(), settings.tz),
            datetime.combine(last + timedelta(days=1), time(), settings.tz))


def previous_period(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The period of the same length just before [start, end)."""
    return start - (end - start), start


def completed_period(settings: Settings, now: datetime, every_days: int) -> tuple[datetime, datetime]:
    """The last whole period of `every_days` days that has ended by `now`, in the company time zone.

    Periods are counted from Monday 1 January of year 1, so 7-day periods run Monday to Sunday.
    """
    today = now.astimezone(settings.tz).date()
    end_day = date.fromordinal(today.toordinal() - (today.toordinal() - 1) % every_days)
    return local_period(settings, end_day - timedelta(days=every_days), end_day - timedelta(days=1))


# --- measuring ------------------------------------------------------------------------------------------


class TicketFacts(NamedTuple):
    """What the report reads of a ticket, as a plain row: a year's cohort is 25,000 tickets, and loading them as ORM
    objects cost more than the rest of the page (bench/dashboard.py)."""

    id: int
    customer_id: int
    conversation_id: int | None
    kind: str
    status: str
    category: str | None
    root_cause: str | None
    assigned_agent_id: int | None
    escalation_level: int
    first_response_due_at: datetime | None
    resolution_due_at: datetime | None
    first_responded_at: datetime | None
    resolved_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, ticket: Ticket) -> TicketFacts:
        return cls(*(getattr(ticket, name) for name in cls._fields))


class SurveyFacts(NamedTuple):
    """What the report reads of a survey answer, as a plain row (see TicketFacts)."""

    id: int
    kind: str
    customer_id: int
    ticket_id: int | None
    conversation_id: int | None
    agent_id: int | None
    channel: str
    category: str | None
    tier: str
    score: int | None
    comment: str | None
    asked_at: datetime
    answered_at: datetime | None


_TICKET_COLUMNS = [getattr(Ticket, name) for name in TicketFacts._fields]
_SURVEY_COLUMNS = [getattr(Survey, name) for name in SurveyFacts._fields]


@dataclass
class TicketRow:
    """A ticket of a period's cohort with what the report groups it by; the console's drill-down lists these."""

    ticket: TicketFacts
    channel: str
    tier: str
    agent: str
    started_at: datetime  # opened, or reopened for a ticket's later round (its due times start there)

    @property
    def answered_at(self) -> datetime | None:
        # Resolving answers the customer too; the product cancels the first-response check then.
        return self.ticket.first_responded_at or self.ticket.resolved_at

    def first_response_verdict(self, now: datetime) -> str | None:
        return verdict(self.answered_at, self.ticket.first_response_due_at, now)

    def resolution_verdict(self, now: datetime) -> str | None:
        return verdict(self.ticket.resolved_at, self.ticket.resolution_due_at, now)

    def unanswered_past_due(self, now: datetime) -> bool:
        due = self.ticket.first_response_due_at
        return self.answered_at is None and due is not None and due < now


def _minutes(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() / 60


def verdict(done_at: datetime | None, due_at: datetime | None, now: datetime) -> str | None:
    """met, breached or pending (None: no due time)."""
    if due_at is None:
        return None
    if done_at is not None:
        return "met" if done_at <= due_at else "breached"
    return "breached" if due_at < now else "pending"


def _compliance(verdicts: Iterable[str | None]) -> Compliance:
    counted = Counter(v for v in verdicts if v is not None)
    return Compliance(counted["met"], counted["breached"], counted["pending"])


_MEMO = "sapa.report_memo"
T = TypeVar("T")


@contextmanager
def memoized(session: Session) -> Iterator[None]:
    """Within the block, the period queries below run once per period for everyone and VIPs together (the VIP
    figures are the same rows filtered), and a repeated call returns the rows already read: the dashboard asks for
    one period's cohort, answers and counts from several places. Only for reading: a change made in the block is
    not seen by a query already answered."""
    session.info[_MEMO] = {}
    try:
        yield
    finally:
        session.info.pop(_MEMO, None)


def remember(session: Session, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
    memo: dict[tuple[Any, ...], Any] | None = session.info.get(_MEMO)
    if memo is None:
        return compute()
    if key not in memo:
        memo[key] = compute()
    return memo[key]


def agent_names(session: Session) -> dict[int, str]:
    return {a.id: a.name for a in session.execute(select(Agent)).scalars()}


def ticket_rows(session: Session, start: datetime, end: datetime, vip_only: bool, agents: dict[int, str]
                ) -> list[TicketRow]:
    """The cohort: tickets opened in [start, end), oldest first."""
    if _MEMO in session.info and vip_only:
        return [r for r in ticket_rows(session, start, end, False, agents) if r.tier == "vip"]
    return remember(session, ("tickets", start, end), lambda: _ticket_rows(session, start, end, vip_only, agents))


def _ticket_rows(session: Session, start: datetime, end: datetime, vip_only: bool, agents: dict[int, str]
                 ) -> list[TicketRow]:
    query = (select(*_TICKET_COLUMNS, Customer.is_vip, Conversation.channel)
             .join(Customer, Customer.id == Ticket.customer_id)
             .outerjoin(Conversation, Conversation.id == Ticket.conversation_id)
             .where(Ticket.created_at >= start, Ticket.created_at < end).order_by(Ticket.id))
    if vip_only:
        query = query.where(Customer.is_vip.is_(True))
    width = len(_TICKET_COLUMNS)
    found = [(TicketFacts._make(row[:width]), row[width], row[width + 1]) for row in session.execute(query)]
    reopened: dict[int, datetime] = {}
    if found:  # the cohort's range, not a list of ids: a year's cohort is 25,000 ids
        reopened = {ticket_id: at for ticket_id, at in session.execute(
            select(TicketEvent.ticket_id, func.max(TicketEvent.created_at))
            .where(TicketEvent.kind == "reopened",
                   TicketEvent.ticket_id.in_(select(Ticket.id).where(Ticket.created_at >= start,
                                                                     Ticket.created_at < end)))
            .group_by(TicketEvent.ticket_id))}
    return [TicketRow(ticket, channel or NONE_LABEL, "vip" if is_vip else "regular",
                      agents.get(ticket.assigned_agent_id or 0, UNASSIGNED),
                      reopened.get(ticket.id, ticket.created_at))
            for ticket, is_vip, channel in found]


def surveys_answered(session: Session, start: datetime, end: datetime, vip_only: bool, kind: str = "csat"
                     ) -> tuple[list[SurveyFacts], int]:
    """The `kind` surveys answered in [start, end) and how many were asked in it."""
    def both() -> tuple[list[SurveyFacts], dict[str, int]]:
        answered = select(*_SURVEY_COLUMNS).where(Survey.kind == kind, Survey.status == "answered",
                                        Survey.answered_at >= start, Survey.answered_at < end
                                        ).order_by(Survey.answered_at, Survey.id)
        asked = select(Survey.tier, func.count()).where(Survey.kind == kind, Survey.asked_at >= start,
                                                        Survey.asked_at < end).group_by(Survey.tier)
        return ([SurveyFacts._make(row) for row in session.execute(answered)],
                {t: int(n) for t, n in session.execute(asked)})

    answers, asked = remember(session, ("surveys", kind, start, end), both)
    if vip_only:
        return [s for s in answers if s.tier == "vip"], asked.get("vip", 0)
    return answers, sum(asked.values())


Q = TypeVar("Q", bound=Select[*tuple[Any, ...]])


def resolved_tickets(query: Q, start: datetime, end: datetime, vip_only: bool) -> Q:
    """`query` narrowed to the tickets resolved in [start, end) ("Tickets resolved")."""
    query = query.join(Customer, Customer.id == Ticket.customer_id).where(Ticket.resolved_at >= start,
                                                                          Ticket.resolved_at < end)
    return query.where(Customer.is_vip.is_(True)) if vip_only else query


def escalation_events(query: Q, start: datetime, end: datetime, vip_only: bool) -> Q:
    """`query` narrowed to the escalations (ticket events) made in [start, end); `detail.level` is the level."""
    query = (query.join(Ticket, Ticket.id == TicketEvent.ticket_id).join(Customer, Customer.id == Ticket.customer_id)
             .where(TicketEvent.kind == "escalated", TicketEvent.created_at >= start, TicketEvent.created_at < end))
    return query.where(Customer.is_vip.is_(True)) if vip_only else query


def message_totals(session: Session, start: datetime, end: datetime) -> dict[tuple[str, str, bool], int]:
    """The counted messages of [start, end) per (channel, direction, from or to a VIP): one range scan of
    ix_messages_created_at_channel_direction serves both the report for everyone and the one for VIPs."""
    vip = Message.customer_id.in_(vip_customers()).label("vip")

    def count() -> dict[tuple[str, str, bool], int]:
        query = counted_messages(select(Message.channel, Message.direction, vip, func.count()), start, end, False)
        return {(channel, direction, bool(is_vip)): int(n)
                for channel, direction, is_vip, n in session.execute(query.group_by(Message.channel,
                                                                                     Message.direction, vip))}

    return remember(session, ("messages", start, end), count)


def counted_messages(query: Q, start: datetime, end: datetime, vip_only: bool) -> Q:
    """`query` narrowed to the messages the report counts: customers' and replies (not notes) in [start, end)."""
    query = query.where(Message.created_at >= start, Message.created_at < end, Message.direction.in_(("in", "out")))
    return query.where(Message.customer_id.in_(vip_customers())) if vip_only else query


def vip_customers() -> Select[int]:
    """The VIP customers' ids, for `... IN (...)`: the database reads the few VIPs once and then checks each row of
    an index range scan against them, instead of looking every row's customer up (bench/dashboard.py)."""
    return select(Customer.id).where(Customer.is_vip.is_(True))


class _Judged(NamedTuple):
    """A cohort ticket judged once for all the breakdowns: minutes to the first answer and both SLA verdicts."""

    row: TicketRow
    first_response_minutes: float | None
    first_response: str | None
    resolution: str | None


def _judge(rows: list[TicketRow], now: datetime) -> list[_Judged]:
    out = []
    for r in rows:
        answered = r.answered_at
        out.append(_Judged(r, _minutes(answered, r.started_at) if answered else None,
                           verdict(answered, r.ticket.first_response_due_at, now),
                           verdict(r.ticket.resolved_at, r.ticket.resolution_due_at, now)))
    return out


def _group(judged: list[_Judged], surveys: list[SurveyFacts], ticket_key: Callable[[TicketRow], str],
           survey_key: Callable[[SurveyFacts], str], nps: tuple[list[SurveyFacts], int]) -> list[Breakdown]:
    tickets_by: dict[str, list[_Judged]] = defaultdict(list)
    scores_by: dict[str, list[int]] = defaultdict(list)
    nps_by: dict[str, list[int]] = defaultdict(list)
    for j in judged:
        tickets_by[ticket_key(j.row)].append(j)
    for survey in surveys:
        scores_by[survey_key(survey)].append(survey.score or 0)
    nps_answers, detractor_max = nps
    for survey in nps_answers:
        nps_by[survey_key(survey)].append(survey.score or 0)
    groups = []
    for key in sorted(set(tickets_by) | set(scores_by) | set(nps_by)):
        mine = tickets_by.get(key, [])
        groups.append(Breakdown(
            key=key, tickets_opened=len(mine),
            first_response=Durations.of([j.first_response_minutes for j in mine
                                         if j.first_response_minutes is not None]),
            first_response_sla=_compliance(j.first_response for j in mine),
            resolution_sla=_compliance(j.resolution for j in mine),
            csat=CsatSummary.of(scores_by.get(key, [])),
            nps=NpsSummary.of(nps_by.get(key, []), detractor_max),
        ))
    return groups


def measure(session: Session, settings: Settings, start: datetime, end: datetime, *, now: datetime,
            vip_only: bool = False) -> Metrics:
    """The numbers for one period [start, end), as the data stands at `now`."""
    agents = agent_names(session)
    rows = ticket_rows(session, start, end, vip_only, agents)
    tickets = [r.ticket for r in rows]
    judged = _judge(rows, now)
    resolved_query = (resolved_tickets(select(Ticket.kind, func.count()), start, end, vip_only)
                      .group_by(Ticket.kind))
    escalation_query = escalation_events(select(TicketEvent.detail), start, end, vip_only)
    surveys, asked = surveys_answered(session, start, end, vip_only)
    nps_answers, nps_asked = surveys_answered(session, start, end, vip_only, kind="nps")
    detractor_max = settings.surveys.nps.detractor_max
    nps = (nps_answers, detractor_max)
    detractors = [s for s in nps_answers if (s.score or 0) <= detractor_max]
    messages: dict[str, dict[str, int]] = {}
    for (channel, direction, vip), count in message_totals(session, start, end).items():
        if vip or not vip_only:
            counts = messages.setdefault(channel, {"in": 0, "out": 0})
            counts[direction] += count
    levels = Counter(int(detail.get("level", 0)) for detail in session.execute(escalation_query).scalars())
    low_limit = settings.surveys.low_score
    customers: dict[int, str | None] = {  # names only: a year has thousands of low scores
        customer_id: name for customer_id, name in session.execute(
            select(Customer.id, Customer.name).where(Customer.id.in_({s.customer_id for s in surveys
                                                                      if (s.score or 0) <= low_limit}
                                                                     | {s.customer_id for s in detractors})))}

    def flagged(s: SurveyFacts) -> LowScore:
        return LowScore(s.id, ticket_reference(s.ticket_id) if s.ticket_id else None,
                        customers.get(s.customer_id) or f"customer #{s.customer_id}", s.score or 0, s.comment,
                        s.channel, agents.get(s.agent_id or 0, UNASSIGNED), s.tier, s.answered_at or s.asked_at)

    low = [flagged(s) for s in surveys if (s.score or 0) <= low_limit]
    return Metrics(
        start=start, end=end,
        opened_by_kind=dict(sorted(Counter(t.kind for t in tickets).items())),
        resolved_by_kind={kind: int(n) for kind, n in sorted(session.execute(resolved_query).all())},
        first_response=Durations.of([j.first_response_minutes for j in judged
                                     if j.first_response_minutes is not None]),
        resolution=Durations.of([_minutes(r.ticket.resolved_at, r.started_at) for r in rows if r.ticket.resolved_at]),
        first_response_sla=_compliance(j.first_response for j in judged),
        resolution_sla=_compliance(j.resolution for j in judged),
        unanswered_past_due=sum(1 for r in rows if r.unanswered_past_due(now)),
        escalations_by_level=dict(sorted(levels.items())),
        csat_asked=asked,
        csat=CsatSummary.of([s.score or 0 for s in surveys]),
        low_scores=low,
        by_category=_group(judged, surveys, lambda r: r.ticket.category or NONE_LABEL,
                           lambda s: s.category or NONE_LABEL, nps),
        by_channel=_group(judged, surveys, lambda r: r.channel, lambda s: s.channel, nps),
        by_agent=_group(judged, surveys, lambda r: r.agent, lambda s: agents.get(s.agent_id or 0, UNASSIGNED), nps),
        by_tier=_group(judged, surveys, lambda r: r.tier, lambda s: s.tier, nps),
        messages_by_channel=dict(sorted(messages.items())),
        nps_asked=nps_asked,
        nps=NpsSummary.of([s.score or 0 for s in nps_answers], detractor_max),
        nps_detractors=[flagged(s) for s in detractors],
    )


# --- comparing and finding ------------------------------------------------------------------------------

# (metric name, label, getter, higher is better)
_HEADLINES: list[tuple[str, str, Callable[[Metrics], float | None], bool]] = [
    ("tickets_opened", "Tickets opened", lambda m: m.tickets_opened, False),
    ("tickets_resolved", "Tickets resolved", lambda m: m.tickets_resolved, True),
    ("first_response_median_min", "Median first response (min)", lambda m: m.first_response.median, False),
    ("first_response_p90_min", "p90 first response (min)", lambda m: m.first_response.p90, False),
    ("resolution_median_min", "Median resolution (min)", lambda m: m.resolution.median, False),
    ("resolution_p90_min", "p90 resolution (min)", lambda m: m.resolution.p90, False),
    ("first_response_sla_percent", "First-response SLA compliance (%)", lambda m: m.first_response_sla.percent, True),
    ("resolution_sla_percent", "Resolution SLA compliance (%)", lambda m: m.resolution_sla.percent, True),
    ("escalations", "Escalations", lambda m: m.escalations, False),
    ("csat_answered", "CSAT answers", lambda m: m.csat.answered, True),
    ("csat_average", "Average CSAT", lambda m: m.csat.average, True),
    ("csat_satisfied_percent", "Satisfied (4-5) (%)", lambda m: m.csat.satisfied_percent, True),
    ("low_scores", "Low CSAT scores", lambda m: len(m.low_scores), False),
    ("nps_answered", "NPS answers", lambda m: m.nps.answered, True),
    ("nps", "NPS", lambda m: m.nps.score, True),
    ("nps_detractors_percent", "NPS detractors (%)", lambda m: m.nps.detractors_percent, False),
]
LABELS = {name: label for name, label, _, _ in _HEADLINES}


def compare(previous: Metrics, current: Metrics) -> list[Delta]:
    return [Delta(name, get(previous), get(current)) for name, _, get, _ in _HEADLINES]


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def _pct(value: float) -> str:
    return f"{value:.0f}%"


# The findings in each language the console speaks: `sapa report` prints English, the dashboard the page's language.
# Each sentence is one key; the numbers are formatted once (format_minutes, _pct, _signed) for both.
_FINDINGS: dict[str, dict[str, str]] = {
    "quiet": {"en": "No tickets were opened and no CSAT answers came in during this period.",
              "id": "Tidak ada tiket dibuka dan tidak ada jawaban CSAT pada periode ini."},
    "sla_up": {"en": "{label} SLA compliance rose from {before} to {after}",
               "id": "Kepatuhan SLA {label} naik dari {before} menjadi {after}"},
    "sla_down": {"en": "{label} SLA compliance fell from {before} to {after}",
                 "id": "Kepatuhan SLA {label} turun dari {before} menjadi {after}"},
    "time_better": {"en": "{label} improved: {before} -> {after}", "id": "{label} membaik: {before} -> {after}"},
    "time_worse": {"en": "{label} got slower: {before} -> {after}",
                   "id": "{label} makin lambat: {before} -> {after}"},
    "csat_up": {"en": "Average CSAT rose from {before} to {after}",
                "id": "Rata-rata CSAT naik dari {before} menjadi {after}"},
    "csat_down": {"en": "Average CSAT fell from {before} to {after}",
                  "id": "Rata-rata CSAT turun dari {before} menjadi {after}"},
    "nps_up": {"en": "NPS rose from {before} to {after}", "id": "NPS naik dari {before} menjadi {after}"},
    "nps_down": {"en": "NPS fell from {before} to {after}", "id": "NPS turun dari {before} menjadi {after}"},
    "tickets_up": {"en": "Tickets opened rose from {before} to {after}",
                   "id": "Tiket dibuka naik dari {before} menjadi {after}"},
    "tickets_down": {"en": "Tickets opened fell from {before} to {after}",
                     "id": "Tiket dibuka turun dari {before} menjadi {after}"},
    "first_breached": {"en": "{tickets} missed the first-response SLA",
                       "id": "{n} tiket melewati SLA respons pertama"},
    "unanswered": {"en": "{tickets} still {wait} for a first answer past the due time",
                   "id": "{n} tiket masih menunggu jawaban pertama melewati tenggat"},
    "resolution_breached": {"en": "{tickets} missed the resolution SLA", "id": "{n} tiket melewati SLA penyelesaian"},
    "escalations": {"en": "{escalations}: {parts}", "id": "{n} eskalasi: {parts}"},
    "escalation_part": {"en": "{n} to {role} (level {level})", "id": "{n} ke {role} (tingkat {level})"},
    "lowest_csat": {"en": "{kind} {key} has the lowest CSAT ({score})",
                    "id": "{kind} {key} punya CSAT terendah ({score})"},
    "low_scores": {"en": "{scores} {need} follow-up", "id": "{n} skor CSAT rendah perlu ditindaklanjuti"},
    "vip_detractors": {"en": "{detractors} in the NPS survey", "id": "{n} detraktor VIP dalam survei NPS"},
}
_FINDING_WORDS: dict[str, dict[str, str]] = {
    "First-response": {"en": "First-response", "id": "respons pertama"},
    "Resolution": {"en": "Resolution", "id": "penyelesaian"},
    "Median first response": {"en": "Median first response", "id": "Median respons pertama"},
    "Median resolution time": {"en": "Median resolution time", "id": "Median waktu penyelesaian"},
    "Channel": {"en": "Channel", "id": "Kanal"},
    "Category": {"en": "Category", "id": "Kategori"},
    "Agent": {"en": "Agent", "id": "Agen"},
}
FINDING_LANGUAGES = ("en", "id")


def _say(lang: str, sentence: str, **values: Any) -> str:
    return _FINDINGS[sentence][lang].format(**values)


def _word(lang: str, word: str) -> str:
    return _FINDING_WORDS[word][lang]


def _lowest_csat(kind: str, groups: list[Breakdown], lang: str = "en") -> str | None:
    rated = [g for g in groups if g.csat.average is not None]
    if len(rated) < 2:
        return None
    lowest = min(rated, key=lambda g: (g.csat.average or 0, g.key))
    if all(g.csat.average == lowest.csat.average for g in rated):
        return None
    return _say(lang, "lowest_csat", kind=_word(lang, kind), key=lowest.key, score=f"{lowest.csat.average:.1f}")


def findings(current: Metrics, previous: Metrics | None, lang: str = "en") -> list[str]:
    """Plain observations, each one computed from the numbers above, in English (`sapa report`) or Indonesian
    (the console's dashboard): the same findings, sentence for sentence."""
    if lang not in FINDING_LANGUAGES:
        lang = "en"
    found: list[str] = []
    if current.tickets_opened == 0 and current.csat.answered == 0:
        found.append(_say(lang, "quiet"))
    if previous is not None:
        for name in ("first_response_sla", "resolution_sla"):
            before = getattr(previous, name).percent
            after = getattr(current, name).percent
            label = _word(lang, "First-response" if name == "first_response_sla" else "Resolution")
            if before is not None and after is not None and round(before) != round(after):
                found.append(_say(lang, "sla_up" if after > before else "sla_down", label=label,
                                  before=_pct(before), after=_pct(after)))
        for label, get in (("Median first response", lambda m: m.first_response.median),
                           ("Median resolution time", lambda m: m.resolution.median)):
            before, after = get(previous), get(current)
            if before is not None and after is not None and round(before) != round(after):
                found.append(_say(lang, "time_better" if after < before else "time_worse", label=_word(lang, label),
                                  before=format_minutes(before), after=format_minutes(after)))
        if previous.csat.average is not None and current.csat.average is not None \
                and round(previous.csat.average, 1) != round(current.csat.average, 1):
            found.append(_say(lang, "csat_up" if current.csat.average > previous.csat.average else "csat_down",
                              before=f"{previous.csat.average:.1f}", after=f"{current.csat.average:.1f}"))
        if previous.nps.score is not None and current.nps.score is not None \
                and round(previous.nps.score) != round(current.nps.score):
            found.append(_say(lang, "nps_up" if current.nps.score > previous.nps.score else "nps_down",
                              before=_signed(previous.nps.score), after=_signed(current.nps.score)))
        if previous.tickets_opened != current.tickets_opened:
            found.append(_say(lang, "tickets_up" if current.tickets_opened > previous.tickets_opened
                              else "tickets_down", before=previous.tickets_opened, after=current.tickets_opened))
    if current.first_response_sla.breached:
        n = current.first_response_sla.breached
        found.append(_say(lang, "first_breached", n=n, tickets=_plural(n, "ticket")))
    if current.unanswered_past_due:
        n = current.unanswered_past_due
        found.append(_say(lang, "unanswered", n=n, tickets=_plural(n, "ticket"), wait="waits" if n == 1 else "wait"))
    if current.resolution_sla.breached:
        n = current.resolution_sla.breached
        found.append(_say(lang, "resolution_breached", n=n, tickets=_plural(n, "ticket")))
    if current.escalations:
        parts = ", ".join(_say(lang, "escalation_part", n=n, role=ESCALATION_ROLES.get(level, "level"), level=level)
                          for level, n in current.escalations_by_level.items())
        found.append(_say(lang, "escalations", n=current.escalations,
                          escalations=_plural(current.escalations, "escalation"), parts=parts))
    for kind, groups in (("Channel", current.by_channel), ("Category", current.by_category),
                         ("Agent", current.by_agent)):
        lowest = _lowest_csat(kind, groups, lang)
        if lowest:
            found.append(lowest)
    if current.low_scores:
        n = len(current.low_scores)
        found.append(_say(lang, "low_scores", n=n, scores=_plural(n, "low CSAT score"),
                          need="needs" if n == 1 else "need"))
    vip_detractors = sum(1 for d in current.nps_detractors if d.tier == "vip")
    if vip_detractors:
        found.append(_say(lang, "vip_detractors", n=vip_detractors,
                          detractors=_plural(vip_detractors, "VIP detractor")))
    return found


def build_report(session: Session, settings: Settings, start: datetime, end: datetime, *, vip_only: bool = False,
                 compare_to: tuple[datetime, datetime] | None = None, now: datetime | None = None) -> Report:
    """The report for [start, end), optionally against an earlier period (before/after, CRM-5.5)."""
    now = now or datetime.now(UTC)
    current = measure(session, settings, start, end, now=now, vip_only=vip_only)
    previous = (measure(session, settings, compare_to[0], compare_to[1], now=now, vip_only=vip_only)
                if compare_to else None)
    return Report(scope="vip" if vip_only else "all", generated_at=now, timezone=settings.company.timezone,
                  current=current, previous=previous, deltas=compare(previous, current) if previous else [],
                  findings=findings(current, previous))


# --- rendering and export -------------------------------------------------------------------------------


def format_minutes(minutes: float | None) -> str:
    if minutes is None:
        return "-"
    if minutes < 120:
        return f"{minutes:.0f} min"
    if minutes < 2880:
        return f"{minutes / 60:.1f} h"
    return f"{minutes / 1440:.1f} d"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def _signed(value: float | None) -> str:
    """An NPS as people write it: +40, -12.5, 0."""
    if value is None:
        return "-"
    return "0" if value == 0 else f"{value:+g}"


def _nps_line(nps: NpsSummary, asked: int | None = None) -> str:
    of = f" of {asked} asked" if asked is not None else ""
    return (f"NPS {_signed(nps.score)} ({nps.answered} answered{of}: promoters {_percent(nps.promoters_percent)}, "
            f"passives {_percent(nps.passives_percent)}, detractors {_percent(nps.detractors_percent)})")


def period_label(report: Report, metrics: Metrics) -> str:
    """The period in the company time zone with an inclusive last day, e.g. 2026-01-05 to 2026-01-11."""
    zone = ZoneInfo(report.timezone)
    first = metrics.start.astimezone(zone)
    last = (metrics.end - timedelta(microseconds=1)).astimezone(zone)
    return f"{first:%Y-%m-%d} to {last:%Y-%m-%d}"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"


def _breakdown_lines(title: str, groups: list[Breakdown], bullet: str) -> list[str]:
    if not groups:
        return []
    lines = [title]
    for g in groups:
        csat = f"CSAT {g.csat.average:.1f} ({g.csat.answered})" if g.csat.average is not None else "CSAT -"
        nps = f", NPS {_signed(g.nps.score)} ({g.nps.answered})" if g.nps.answered else ""
        lines.append(f"{bullet}{g.key}: {g.tickets_opened} opened, first response median "
                     f"{format_minutes(g.first_response.median)}, SLA {_percent(g.first_response_sla.percent)} "
                     f"first response / {_percent(g.resolution_sla.percent)} resolution, {csat}{nps}")
    return lines


def _summary_lines(m: Metrics, bullet: str) -> list[str]:
    messages = ", ".join(f"{ch} {d['in']} in / {d['out']} out" for ch, d in m.messages_by_channel.items()) or "none"
    return [
        f"{bullet}Tickets opened: {m.tickets_opened} ({_counts(m.opened_by_kind)}); "
        f"resolved: {m.tickets_resolved} ({_counts(m.resolved_by_kind)})",
        f"{bullet}First response: median {format_minutes(m.first_response.median)}, "
        f"p90 {format_minutes(m.first_response.p90)} ({m.first_response.count} answered)",
        f"{bullet}Resolution: median {format_minutes(m.resolution.median)}, p90 {format_minutes(m.resolution.p90)} "
        f"({m.resolution.count} resolved)",
        f"{bullet}SLA first response: {_percent(m.first_response_sla.percent)} ({m.first_response_sla.met} met, "
        f"{m.first_response_sla.breached} breached, {m.first_response_sla.pending} not due yet)",
        f"{bullet}SLA resolution: {_percent(m.resolution_sla.percent)} ({m.resolution_sla.met} met, "
        f"{m.resolution_sla.breached} breached, {m.resolution_sla.pending} not due yet)",
        f"{bullet}Escalations: {m.escalations}"
        + (f" ({', '.join(f'level {k}: {v}' for k, v in m.escalations_by_level.items())})" if m.escalations else ""),
        f"{bullet}CSAT: {m.csat.answered} answered of {m.csat_asked} asked, average "
        f"{'-' if m.csat.average is None else f'{m.csat.average:.2f}'}, satisfied (4-5) "
        f"{_percent(m.csat.satisfied_percent)}",
        f"{bullet}{_nps_line(m.nps, m.nps_asked)}",
        f"{bullet}Messages: {messages}",
    ]


def _delta_text(delta: Delta) -> str:
    def show(value: float | None) -> str:
        return "-" if value is None else f"{value:g}"

    change = "" if delta.change is None else f" ({'+' if delta.change > 0 else ''}{delta.change:g})"
    return f"{LABELS[delta.metric]}: {show(delta.before)} -> {show(delta.after)}{change}"


def _render(report: Report, *, bold: Callable[[str], str], bullet: str) -> str:
    m = report.current
    lines = [bold(f"{report.title}: {period_label(report, m)}")]
    lines += ["", bold("Summary"), *_summary_lines(m, bullet)]
    if report.findings:
        lines += ["", bold("Findings"), *(f"{bullet}{f}" for f in report.findings)]
    if report.previous is not None:
        lines += ["", bold(f"Compared with {period_label(report, report.previous)}"),
                  *(f"{bullet}{_delta_text(d)}" for d in report.deltas)]
    if m.low_scores:
        lines += ["", bold("Low CSAT scores to follow up")]
        for low in m.low_scores:
            comment = f': "{low.comment[:200]}"' if low.comment else ""
            lines.append(f"{bullet}{low.score}/5 {low.ticket or '-'} {low.customer} ({low.tier}, {low.channel}, "
                         f"{low.agent}){comment}")
    if m.nps_detractors:
        lines += ["", bold("NPS detractors")]
        for low in m.nps_detractors:
            comment = f': "{low.comment[:200]}"' if low.comment else ""
            lines.append(f"{bullet}{low.score}/10 {low.customer} ({low.tier}, {low.channel}, {low.agent}){comment}")
    for title, groups in (("By category", m.by_category), ("By channel", m.by_channel), ("By agent", m.by_agent),
                          ("By tier", m.by_tier)):
        part = _breakdown_lines(bold(title), groups, bullet)
        if part:
            lines += ["", *part]
    return "\n".join(lines)


def render_text(report: Report) -> str:
    """Plain text for a terminal."""
    return _render(report, bold=lambda s: s, bullet="- ")


def render_markdown(report: Report) -> str:
    """Slack mrkdwn: *bold* headings and bullets."""
    return _render(report, bold=lambda s: f"*{s}*", bullet="• ")


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _metrics_dict(metrics: Metrics) -> dict[str, Any]:
    data = asdict(metrics)
    data.update(tickets_opened=metrics.tickets_opened, tickets_resolved=metrics.tickets_resolved,
                escalations=metrics.escalations)
    data["first_response_sla"]["percent"] = metrics.first_response_sla.percent
    data["resolution_sla"]["percent"] = metrics.resolution_sla.percent
    for name in ("by_category", "by_channel", "by_agent", "by_tier"):
        for row, group in zip(data[name], getattr(metrics, name), strict=True):
            row["first_response_sla"]["percent"] = group.first_response_sla.percent
            row["resolution_sla"]["percent"] = group.resolution_sla.percent
    return data


def to_json(report: Report) -> str:
    data = {"title": report.title, "scope": report.scope, "generated_at": report.generated_at,
            "timezone": report.timezone, "current": _metrics_dict(report.current),
            "previous": _metrics_dict(report.previous) if report.previous else None,
            "deltas": [{"metric": d.metric, "before": d.before, "after": d.after, "change": d.change}
                       for d in report.deltas],
            "findings": report.findings}
    return json.dumps(_jsonable(data), ensure_ascii=False, indent=2)


def _csv_rows(period: str, m: Metrics) -> Iterable[list[Any]]:
    for name, _, get, _ in _HEADLINES:
        yield [period, "summary", "", name, get(m)]
    for kind, n in m.opened_by_kind.items():
        yield [period, "opened_by_kind", kind, "tickets", n]
    for kind, n in m.resolved_by_kind.items():
        yield [period, "resolved_by_kind", kind, "tickets", n]
    for level, n in m.escalations_by_level.items():
        yield [period, "escalations_by_level", level, "escalations", n]
    for section in ("by_category", "by_channel", "by_agent", "by_tier"):
        for g in getattr(m, section):
            yield [period, section, g.key, "tickets_opened", g.tickets_opened]
            yield [period, section, g.key, "first_response_median_min", g.first_response.median]
            yield [period, section, g.key, "first_response_sla_percent", g.first_response_sla.percent]
            yield [period, section, g.key, "resolution_sla_percent", g.resolution_sla.percent]
            yield [period, section, g.key, "csat_answered", g.csat.answered]
            yield [period, section, g.key, "csat_average", g.csat.average]
            yield [period, section, g.key, "nps_answered", g.nps.answered]
            yield [period, section, g.key, "nps", g.nps.score]
    for channel, counts in m.messages_by_channel.items():
        yield [period, "messages", channel, "in", counts["in"]]
        yield [period, "messages", channel, "out", counts["out"]]
    for low in m.low_scores:
        yield [period, "low_scores", low.ticket or "", "score", low.score]
    yield [period, "nps", "", "asked", m.nps_asked]
    for name in ("promoters_percent", "passives_percent", "detractors_percent"):
        yield [period, "nps", "", name, getattr(m.nps, name)]
    for low in m.nps_detractors:
        yield [period, "nps_detractors", low.customer, "score", low.score]


def csv_table(rows: Iterable[list[Any]]) -> str:
    """The one CSV shape of every report: period, section, group, metric, value."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["period", "section", "group", "metric", "value"])
    writer.writerows(rows)
    return out.getvalue()


def to_csv(report: Report) -> str:
    """One row per number: period (current/previous), section, group, metric, value."""
    previous = _csv_rows("previous", report.previous) if report.previous is not None else ()
    findings = (["current", "findings", "", "finding", finding] for finding in report.findings)
    return csv_table(itertools.chain(_csv_rows("current", report.current), previous, findings))
