"""CRM-4.1: customer lists marketing defines by filters, saves by name and previews with counts.

Filters are a small dict, validated by `validate` (every error names the bad key). `matching` turns them into
ONE SQL select of customer ids (EXISTS / scalar subqueries, no Python loop over customers) that runs the same
on SQLite and PostgreSQL; broadcasts (store/broadcasts.py) insert recipients straight from it.

Keys (all optional; no filters = every live customer):

- ``loyalty_tier``: loyalty tier names (LoyaltyAccount.tier); ``vip``: true/false; ``vip_tier``: VIP tier names.
  ``tier`` is a shorthand: loyalty tier names, or ``vip`` for ``vip: true``.
- ``segment``: RFM segment names (CustomerScore.segment, store/scores.py SEGMENTS).
- ``channel``: the customer has a reachable identity (not marked undeliverable) on one of these channels.
- ``language``: the language we write to them in (the profile language; no profile language counts as the
  default language).
- ``last_purchase_within_days``: bought within N days; ``last_purchase_before_days``: bought, but not in the last
  N days (lapsed buyers).
- ``min_points`` / ``max_points``: loyalty balance bounds (no account = 0 points).
- ``consent``: ``marketing`` (only customers who may receive marketing now) or ``any`` (the default for a
  segment; a broadcast always requires marketing consent anyway, per recipient).

Merged-away and erased customers never match.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    cast,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session

from store.models import (
    AuditEntry,
    Broadcast,
    ChannelIdentity,
    Consent,
    Customer,
    CustomerScore,
    LoyaltyAccount,
    Segment,
    Transaction,
)
from store.scores import SEGMENTS

LIST_KEYS = ("loyalty_tier", "vip_tier", "segment", "channel", "language")
INT_KEYS = ("last_purchase_within_days", "last_purchase_before_days", "min_points", "max_points")
KEYS = (*LIST_KEYS, *INT_KEYS, "vip", "tier", "consent")
CONSENT_VALUES = ("marketing", "any")
PUSH_CHANNELS = ("whatsapp", "sms", "telegram")  # web chat cannot receive a push: nobody is listening
SAMPLES = 5
# The largest number each key takes: days must stay a date (now minus 10**12 days is no datetime), points a BIGINT.
INT_LIMITS = {"last_purchase_within_days": 36_500, "last_purchase_before_days": 36_500, "min_points": 10**15,
              "max_points": 10**15}


class FilterError(ValueError):
    """A filter that cannot be used; the message names the key and what would be accepted."""


@dataclass(frozen=True)
class Vocabulary:
    """What filter values may be: loyalty tiers and languages come from the settings."""

    loyalty_tiers: tuple[str, ...]
    languages: tuple[str, ...]
    default_language: str
    channels: tuple[str, ...] = PUSH_CHANNELS + ("webchat",)


def vocabulary(settings: Any) -> Vocabulary:
    return Vocabulary(tuple(t.name for t in settings.loyalty.tiers), tuple(settings.languages),
                      settings.default_language)


def _as_list(key: str, value: Any) -> list[str]:
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")]
    elif isinstance(value, list | tuple):
        items = [str(v).strip() for v in value]
    else:
        raise FilterError(f"filter {key!r}: give a name or a list of names, not {value!r}")
    items = [v for v in items if v]
    if not items:
        raise FilterError(f"filter {key!r}: give at least one value")
    return items


def _as_int(key: str, value: Any) -> int:
    if isinstance(value, bool):
        raise FilterError(f"filter {key!r}: give a whole number, not {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise FilterError(f"filter {key!r}: give a whole number, not {value!r}") from None
    if number < 0:
        raise FilterError(f"filter {key!r}: must be 0 or more, not {number}")
    if number > INT_LIMITS.get(key, 10**15):
        raise FilterError(f"filter {key!r}: at most {INT_LIMITS.get(key, 10**15):,}, not {number}")
    return number


def _as_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "ya"):
        return True
    if text in ("false", "no", "0", "tidak"):
        return False
    raise FilterError(f"filter {key!r}: give true or false, not {value!r}")


def _known(key: str, values: list[str], allowed: Iterable[str]) -> list[str]:
    allowed = tuple(allowed)
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise FilterError(f"filter {key!r}: unknown {', '.join(map(repr, unknown))}; use {', '.join(allowed)}")
    return values


def validate(filters: Mapping[str, Any], vocab: Vocabulary) -> dict[str, Any]:
    """The filters normalised (lists as lists, numbers as ints), or FilterError naming the bad key."""
    if not isinstance(filters, Mapping):
        raise FilterError("filters must be an object of key: value")
    clean: dict[str, Any] = {}
    for key, value in filters.items():
        if key not in KEYS:
            raise FilterError(f"unknown filter {key!r}; use one of {', '.join(KEYS)}")
        if key == "tier":
            names = _as_list(key, value)
            if "vip" in names:
                clean["vip"] = True
                names = [n for n in names if n != "vip"]
            if names:
                clean["loyalty_tier"] = _known(key, names, (*vocab.loyalty_tiers, "vip"))
        elif key == "loyalty_tier":
            clean[key] = _known(key, _as_list(key, value), vocab.loyalty_tiers)
        elif key == "segment":
            clean[key] = _known(key, [v.lower() for v in _as_list(key, value)], SEGMENTS)
        elif key == "channel":
            clean[key] = _known(key, [v.lower() for v in _as_list(key, value)], vocab.channels)
        elif key == "language":
            clean[key] = _known(key, [v.lower() for v in _as_list(key, value)], vocab.languages)
        elif key == "vip_tier":
            clean[key] = _as_list(key, value)
        elif key in INT_KEYS:
            clean[key] = _as_int(key, value)
        elif key == "vip":
            clean[key] = _as_bool(key, value)
        elif key == "consent":
            text = str(value).strip().lower()
            if text in ("true", "yes"):
                text = "marketing"
            if text not in CONSENT_VALUES:
                raise FilterError(f"filter 'consent': use {' or '.join(CONSENT_VALUES)}, not {value!r}")
            clean[key] = text
    if "min_points" in clean and "max_points" in clean and clean["min_points"] > clean["max_points"]:
        raise FilterError("filter 'min_points' is above 'max_points': nobody could match")
    return clean


def parse_pairs(pairs: Iterable[str]) -> dict[str, Any]:
    """`key=value` words (CLI --filter, Slack) into a filters dict; a repeated key adds to its list."""
    filters: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().lower().replace("-", "_")
        if not sep or not key or not value.strip():
            raise FilterError(f"filter {pair!r}: write it as key=value, e.g. segment=loyal,champions")
        if key in filters and key in (*LIST_KEYS, "tier"):
            filters[key] = f"{filters[key]},{value.strip()}"
        else:
            filters[key] = value.strip()
    return filters


# --- SQL --------------------------------------------------------------------------------------------------


def latest_consent(purpose: str) -> Any:
    """The customer's latest answer for `purpose` (True, False or NULL), as a correlated scalar subquery."""
    return (select(Consent.granted)
            .where(Consent.customer_id == Customer.id, Consent.purpose == purpose)
            .order_by(Consent.recorded_at.desc(), Consent.id.desc())
            .limit(1).correlate(Customer).scalar_subquery())


def marketing_ok(marketing: Any = None, processing: Any = None) -> ColumnElement[bool]:
    """May receive marketing now: the latest marketing answer is yes and data processing was not refused since
    (refusing processing withdraws everything, as in handlers/nps.py).

    `marketing` / `processing`: those latest answers already selected as columns (broadcast selection reads each
    once per customer); by default the correlated subqueries of `latest_consent`."""
    marketing = latest_consent("marketing") if marketing is None else marketing
    processing = latest_consent("data_processing") if processing is None else processing
    # COALESCE: "never asked" must compare as a definite no / yes, not as NULL (which no CASE branch takes).
    return and_(func.coalesce(marketing, false()) == true(), func.coalesce(processing, true()) == true())


def opted_out(marketing: Any = None, processing: Any = None) -> ColumnElement[bool]:
    """STOP (marketing withdrawn) or data processing refused: the latest answer is no (arguments as in
    `marketing_ok`)."""
    marketing = latest_consent("marketing") if marketing is None else marketing
    processing = latest_consent("data_processing") if processing is None else processing
    return or_(func.coalesce(marketing, true()) == false(), func.coalesce(processing, true()) == false())


def reachable(channels: Iterable[str]) -> ColumnElement[bool]:
    return exists().where(ChannelIdentity.customer_id == Customer.id, ChannelIdentity.channel.in_(tuple(channels)),
                          ChannelIdentity.undeliverable_reason.is_(None),
                          not_(ChannelIdentity.address.like("erased-%")))


def live() -> ColumnElement[bool]:
    """Not merged away and not erased (store/privacy.py leaves an audit entry; the ids are strings there)."""
    erased = select(AuditEntry.subject_id).where(
        AuditEntry.action == "customer.erased", AuditEntry.subject_type == "customer",
        AuditEntry.subject_id.is_not(None))
    return and_(Customer.merged_into_id.is_(None), cast(Customer.id, String(60)).not_in(erased))


def conditions(filters: Mapping[str, Any], vocab: Vocabulary, now: datetime) -> list[ColumnElement[bool]]:
    """The WHERE conditions of validated filters, on the customers table."""
    where: list[ColumnElement[bool]] = [live()]
    if "loyalty_tier" in filters:
        where.append(exists().where(LoyaltyAccount.customer_id == Customer.id,
                                    LoyaltyAccount.tier.in_(filters["loyalty_tier"])))
    if "vip" in filters:
        where.append(Customer.is_vip == (true() if filters["vip"] else false()))
    if "vip_tier" in filters:
        where.append(Customer.vip_tier.in_(filters["vip_tier"]))
    if "segment" in filters:
        where.append(exists().where(CustomerScore.customer_id == Customer.id,
                                    CustomerScore.segment.in_(filters["segment"])))
    if "channel" in filters:
        where.append(reachable(filters["channel"]))
    if "language" in filters:
        languages = filters["language"]
        language = Customer.language.in_(languages)
        where.append(or_(language, Customer.language.is_(None)) if vocab.default_language in languages else language)
    if "last_purchase_within_days" in filters:
        since = now - timedelta(days=filters["last_purchase_within_days"])
        where.append(exists().where(Transaction.customer_id == Customer.id, Transaction.occurred_at >= since))
    if "last_purchase_before_days" in filters:
        since = now - timedelta(days=filters["last_purchase_before_days"])
        where.append(exists().where(Transaction.customer_id == Customer.id, Transaction.occurred_at < since))
        where.append(not_(exists().where(Transaction.customer_id == Customer.id, Transaction.occurred_at >= since)))
    if filters.get("min_points", 0) > 0:
        where.append(exists().where(LoyaltyAccount.customer_id == Customer.id,
                                    LoyaltyAccount.balance >= filters["min_points"]))
    if "max_points" in filters:
        where.append(not_(exists().where(LoyaltyAccount.customer_id == Customer.id,
                                         LoyaltyAccount.balance > filters["max_points"])))
    if filters.get("consent") == "marketing":
        where.append(marketing_ok())
    return where


def matching(filters: Mapping[str, Any], vocab: Vocabulary, now: datetime) -> Select[Any]:
    """SELECT customers.id of everyone the (validated) filters match."""
    return select(Customer.id).where(*conditions(filters, vocab, now))


# --- preview ----------------------------------------------------------------------------------------------


@dataclass
class Preview:
    total: int  # match the filters
    eligible: int  # of those, may receive marketing now
    opted_out: int
    no_consent: int
    reachable: dict[str, int]  # eligible customers by the first channel (in preference order) that reaches them
    unreachable: int  # eligible, but no reachable identity on those channels
    samples: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, "eligible": self.eligible, "opted_out": self.opted_out,
                "no_consent": self.no_consent, "reachable": self.reachable, "unreachable": self.unreachable,
                "samples": self.samples}


def preview(session: Session, settings: Any, filters: Mapping[str, Any], now: datetime,
            channels: Iterable[str] = PUSH_CHANNELS) -> Preview:
    """Counts before use: matching, eligible for marketing, per-channel reachable (first channel in `channels`
    order that has a reachable identity), and a few sample customers."""
    vocab = vocabulary(settings)
    clean = validate(filters, vocab)
    where = conditions(clean, vocab, now)
    order = list(channels)

    def count(*extra: ColumnElement[bool]) -> int:
        return int(session.execute(select(func.count()).select_from(Customer).where(*where, *extra)).scalar_one())

    eligible = marketing_ok()
    by_channel: dict[str, int] = {}
    earlier: list[str] = []
    for channel in order:
        extra = [eligible, reachable([channel])]
        if earlier:
            extra.append(not_(reachable(earlier)))
        by_channel[channel] = count(*extra)
        earlier.append(channel)
    total, eligible_count = count(), count(eligible)
    samples = [{"id": c.id, "name": c.name, "language": c.language or settings.default_language,
                "vip": c.is_vip} for c in session.execute(
        select(Customer).where(*where, eligible).order_by(Customer.id).limit(SAMPLES)).scalars()]
    return Preview(total=total, eligible=eligible_count, opted_out=count(opted_out()),
                   no_consent=count(latest_consent("marketing").is_(None)), reachable=by_channel,
                   unreachable=eligible_count - sum(by_channel.values()), samples=samples)


def render_preview(preview_: Preview) -> str:
    lines = [f"{preview_.total} customers match; {preview_.eligible} may receive marketing "
             f"({preview_.opted_out} opted out, {preview_.no_consent} never gave marketing consent)."]
    reach = ", ".join(f"{channel} {n}" for channel, n in preview_.reachable.items())
    lines.append(f"Reachable by channel (first preferred): {reach or '-'}; no reachable channel: "
                 f"{preview_.unreachable}.")
    if preview_.samples:
        lines.append("Samples: " + "; ".join(f"#{s['id']} {s['name'] or '-'} ({s['language']})"
                                             for s in preview_.samples))
    return "\n".join(lines)


# --- saved segments ---------------------------------------------------------------------------------------


class SegmentError(ValueError):
    """A saved segment that does not exist, or a name that cannot be used."""


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 80 or any(c.isspace() for c in name):
        raise SegmentError(f"segment name {name!r}: use 1-80 characters without spaces, e.g. loyal_jakarta")
    return name


def get(session: Session, name: str) -> Segment | None:
    return session.execute(select(Segment).where(Segment.name == name.strip())).scalar_one_or_none()


def save(session: Session, settings: Any, name: str, filters: Mapping[str, Any], *, created_by: str,
         now: datetime, replace: bool = True) -> tuple[Segment, bool]:
    """Create the segment, or (with `replace`) update its filters; returns (segment, created)."""
    clean = validate(filters, vocabulary(settings))
    name = _check_name(name)
    segment = get(session, name)
    if segment is not None:
        if not replace:
            raise SegmentError(f"a segment named {name!r} already exists")
        segment.filters, segment.updated_at = clean, now
        return segment, False
    segment = Segment(name=name, filters=clean, created_by=created_by, created_at=now, updated_at=now)
    session.add(segment)
    session.flush()
    return segment, True


def list_all(session: Session) -> list[Segment]:
    return list(session.execute(select(Segment).order_by(Segment.name)).scalars())


def delete(session: Session, name: str) -> None:
    """Delete a saved segment. Broadcasts keep the filters they snapshot, so none loses its recipients."""
    segment = get(session, name)
    if segment is None:
        raise SegmentError(f"no segment named {name!r}")
    session.execute(update(Broadcast).where(Broadcast.segment_id == segment.id).values(segment_id=None)
                    .execution_options(synchronize_session=False))
    session.delete(segment)


def describe_filters(filters: Mapping[str, Any]) -> str:
    if not filters:
        return "everyone"
    return " ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in filters.items())
