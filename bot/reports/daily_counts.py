"""Messages and conversations per local day and channel (the dashboard's charts, issue 17), with completed days
kept in `daily_counts` so a year is not a scan of a million index entries per page view.

Days are the company's local days. A live count is one grouped query per stretch of the period with a constant UTC
offset (PostgreSQL converts each timestamp itself; SQLite has no time zones, so the offset is added to the stored
UTC time): a year costs two index range scans, not a query a day.

What is kept, and why it stays right: a *completed* local day (ended at least SETTLE ago) has its counts for
everyone stored once (`fill`: the console's dashboard before it reads, and the nightly `report.daily_counts` task).
Those counts cannot change afterwards: messages and conversations are never deleted, their channel, direction and
time never change, and a message is stamped when it is written (an import of backdated history would have to
delete the days it adds to). Erasure (store/privacy.py) anonymises the rows but keeps them, so the counts stay
as they were; a merge (store/merge.py) moves rows to another customer, which changes no count for everyone.
What *can* change is who is a VIP (the rules, the console, a merge): so the VIP share is never stored, but
counted live for the period from the VIPs' own index entries (`customer_id IN (the VIPs)`, a few per VIP).
Today, and any day not complete yet, is counted live. Every number equals a live count (tests/reports).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, func, literal, select
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.reports import management
from store.models import Conversation, DailyCount, Message

WHAT = ("messages", "conversations")
SETTLE = timedelta(hours=1)  # a local day is complete this long after it ended (a message written at 23:59:59)
MARK = ""  # the channel of the row that marks a day as computed, so a day with nothing still counts as stored

Counts = dict[tuple[date, str, str, bool], int]  # (local day, channel, direction or "", VIP now) -> how many


# --- live counts ------------------------------------------------------------------------------------------------


def conversations_opened(query: Any, start: datetime, end: datetime, vip_only: bool) -> Any:
    """`query` narrowed to the conversations opened in [start, end) (VIP customers' only with vip_only)."""
    query = query.where(Conversation.opened_at >= start, Conversation.opened_at < end)
    return query.where(Conversation.customer_id.in_(management.vip_customers())) if vip_only else query


def _offset_stretches(settings: Settings, start: datetime, end: datetime) -> list[tuple[datetime, datetime, int]]:
    """[start, end) cut where the company's UTC offset changes (daylight saving); each with its offset in seconds."""
    stretches: list[tuple[datetime, datetime, int]] = []
    day = start.astimezone(settings.tz).date()
    while True:
        moment = datetime.combine(day, datetime.min.time(), settings.tz)
        if moment >= end:
            break
        offset = int((moment.utcoffset() or timedelta()).total_seconds())
        following = datetime.combine(day + timedelta(days=1), datetime.min.time(), settings.tz)
        if stretches and stretches[-1][2] == offset:
            stretches[-1] = (stretches[-1][0], min(following, end), offset)
        else:
            stretches.append((max(moment, start), min(following, end), offset))
        day += timedelta(days=1)
    return stretches


def _local_day(session: Session, settings: Settings, column: Any, offset: int) -> ColumnElement[Any]:
    """What to group by for local days: the day itself, or on SQLite with a whole-hour offset the stored UTC day
    with a mark for the hours that belong to the next (+) or previous (-) local day, cut from the stored text
    ("YYYY-MM-DD HH:MM:SS"): no date parsing per row, which halves a year's scan. _as_date reads either."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone(settings.company.timezone, column))
    hours = offset // 3600
    if offset % 3600 or not -23 <= hours <= 23:
        return func.date(column, f"{offset:+d} seconds")
    day = func.substr(column, 1, 10)
    if hours == 0:
        return day
    hour = func.substr(column, 12, 2)
    shifted = case((hour >= f"{24 - hours:02d}", "+"), else_="") if hours > 0 else \
        case((hour < f"{-hours:02d}", "-"), else_="")
    return day.concat(shifted)


def _as_date(value: Any) -> date:
    if isinstance(value, date):
        return value
    text = str(value)
    if text.endswith("+"):
        return date.fromisoformat(text[:-1]) + timedelta(days=1)
    if text.endswith("-"):
        return date.fromisoformat(text[:-1]) - timedelta(days=1)
    return date.fromisoformat(text)


def live(session: Session, settings: Settings, start: datetime, end: datetime, what: str, *,
         vip_only: bool = False) -> Counts:
    """Counted now from the rows: the messages the report counts (management.counted_messages) or the
    conversations opened, in [start, end), everyone's and VIPs' together (VIP rows flagged), or VIPs' only."""
    counts: Counts = defaultdict(int)
    messages = what == "messages"
    column, channel_of, customer = ((Message.created_at, Message.channel, Message.customer_id) if messages else
                                    (Conversation.opened_at, Conversation.channel, Conversation.customer_id))
    direction = Message.direction if messages else literal("")
    vip = literal(True).label("vip") if vip_only else customer.in_(management.vip_customers()).label("vip")
    for first, last, offset in _offset_stretches(settings, start, end):
        day = _local_day(session, settings, column, offset)
        query = select(day, channel_of, direction, vip, func.count())
        query = (management.counted_messages(query, first, last, vip_only) if messages
                 else conversations_opened(query, first, last, vip_only))
        keys = [day, channel_of] + ([direction] if messages else []) + ([] if vip_only else [vip])
        for when, channel, way, is_vip, n in session.execute(query.group_by(*keys)):
            counts[(_as_date(when), channel, way, bool(is_vip))] += int(n)
    return dict(counts)


# --- completed days, kept ---------------------------------------------------------------------------------------


def completed_days(settings: Settings, start: datetime, end: datetime, now: datetime) -> tuple[date, date] | None:
    """The first and last whole local day inside [start, end) that ended SETTLE or more before `now`."""
    tz = settings.tz
    first = start.astimezone(tz).date()
    if datetime.combine(first, datetime.min.time(), tz) < start:
        first += timedelta(days=1)
    last = end.astimezone(tz).date() - timedelta(days=1)  # the day ending at or before `end`
    done = (now - SETTLE).astimezone(tz).date() - timedelta(days=1)
    last = min(last, done)
    return (first, last) if first <= last else None


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _stored(session: Session, what: str, first: date, last: date) -> dict[date, dict[tuple[str, str], int]]:
    kept: dict[date, dict[tuple[str, str], int]] = {}
    for day, channel, direction, n in session.execute(
            select(DailyCount.day, DailyCount.channel, DailyCount.direction, DailyCount.count)
            .where(DailyCount.what == what, DailyCount.day >= first, DailyCount.day <= last)):
        counts = kept.setdefault(day, {})
        if channel != MARK:
            counts[(channel, direction)] = int(n)
    return kept


def missing(session: Session, settings: Settings, first: date, last: date, now: datetime) -> bool:
    """Whether a completed day of first..last is not stored yet (for either count)."""
    done = completed_days(settings, *management.local_period(settings, first, last), now)
    if done is None:
        return False
    wanted = len(_days(*done))
    return any(len(_stored(session, what, *done)) < wanted for what in WHAT)


def fill(session: Session, settings: Settings, first: date, last: date, now: datetime) -> int:
    """Store the counts of the completed days of first..last not stored yet (one range query per count for all
    of them); returns how many were added (a day once per count). In a writing unit of work."""
    done = completed_days(settings, *management.local_period(settings, first, last), now)
    if done is None:
        return 0
    added = 0
    for what in WHAT:
        kept = _stored(session, what, *done)
        wanted = [d for d in _days(*done) if d not in kept]
        if not wanted:
            continue
        start, end = management.local_period(settings, wanted[0], wanted[-1])
        totals: dict[date, dict[tuple[str, str], int]] = {d: defaultdict(int) for d in wanted}
        for (day, channel, direction, _), n in live(session, settings, start, end, what).items():
            if day in totals:
                totals[day][(channel, direction)] += n
        for day, counts in totals.items():
            session.add(DailyCount(day=day, what=what, channel=MARK, direction=MARK, count=0, computed_at=now))
            session.add_all(DailyCount(day=day, what=what, channel=channel, direction=direction, count=n,
                                       computed_at=now) for (channel, direction), n in counts.items())
        added += len(wanted)
        session.flush()
    return added


def per_day(session: Session, settings: Settings, start: datetime, end: datetime, what: str, now: datetime
            ) -> Counts:
    """The counts of [start, end) per local day, channel, direction and VIP flag: stored days from the table
    (their VIP share counted live), missing completed days and the rest counted live. Equal to live(...)."""
    done = completed_days(settings, start, end, now)
    if done is None:
        return live(session, settings, start, end, what)
    kept_start, kept_end = management.local_period(settings, *done)
    kept = _stored(session, what, *done)
    out: Counts = defaultdict(int)

    def add(counts: Counts, only: set[date] | None = None) -> None:
        for key, n in counts.items():
            if only is None or key[0] in only:
                out[key] += n

    for lo, hi in ((start, kept_start), (kept_end, end)):
        if lo < hi:
            add(live(session, settings, lo, hi, what))
    absent = [d for d in _days(*done) if d not in kept]
    if absent:
        lo, hi = management.local_period(settings, absent[0], absent[-1])
        add(live(session, settings, lo, hi, what), set(absent))
    if kept:
        lo, hi = management.local_period(settings, min(kept), max(kept))
        vip = live(session, settings, lo, hi, what, vip_only=True)
        for day, counts in kept.items():
            for (channel, direction), n in counts.items():
                of_vips = vip.get((day, channel, direction, True), 0)
                if of_vips:
                    out[(day, channel, direction, True)] += of_vips
                if n - of_vips:
                    out[(day, channel, direction, False)] += n - of_vips
    return dict(out)
