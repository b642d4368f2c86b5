"""Possible duplicate customers (CRM-1.4): pairs of live records that are probably one person.

The unique `customers.phone` column keeps two records from holding one number, so a person ends up
twice when the number lives somewhere else on one of them: the SMS/WhatsApp address of a channel
identity (the profile phone was changed later), a Telegram contact they shared while their record
already had another phone, or a number or email they typed in chat (a profile change that was refused
because another record holds it, or a message that is nothing but the number). Those are the *keys*.

Rules, strongest first:
- same phone held by two records (channel address, profile, shared contact or typed by the customer): strong;
- same email: strong, or possible when both records have their own, different profile phones
  (a family or an office sharing one mailbox);
- same normalised name plus the same last digits of the profile phone, or the same email name
  (the part before @): possible.

Merged-away records (`merged_into_id`), erased ones (audit `customer.erased`) and pairs an agent
dismissed (`duplicate_dismissals`, lower id first) are never listed. Phone and email keys are grouped in
SQL (one pass over customers, identities and the inbound messages that carry a phone or an email); names
are grouped in one linear pass. Nothing compares every record with every other.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import combinations
from typing import Any

from sqlalchemy import Select, String, Text, case, cast, distinct, func, literal, or_, select, true, union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.audit import record
from store.models import AuditEntry, ChannelIdentity, Customer, DuplicateDismissal, Message

STRONG, POSSIBLE = "strong", "possible"
# Channels whose address is the customer's phone number (E.164).
PHONE_CHANNELS = ("sms", "whatsapp")
# A key shared by more records than this is a shop counter, an office line or a shared mailbox, not a person.
LARGE_GROUP = 20
# Same name plus this many matching last digits of the phone makes a weak match.
PHONE_SUFFIX_DIGITS = 6
MIN_EMAIL_NAME = 4  # "cs@", "me@": too short to say anything
_CHUNK = 500
_HONORIFICS = {"pak", "bapak", "bu", "ibu", "mas", "mbak", "kak", "bang", "dik", "sdr", "sdri", "tn", "ny", "nn"}
LABELS = {
    "phone": "same phone",
    "email": "same email",
    "name_phone": "same name, phone ending",
    "name_email": "same name, email name",
}


@dataclass(frozen=True)
class Match:
    rule: str  # phone, email, name_phone, name_email
    key: str  # the phone, email, phone ending or email name both records share

    @property
    def label(self) -> str:
        return LABELS[self.rule]


@dataclass(frozen=True)
class CustomerBrief:
    id: int
    name: str | None
    phone: str | None
    email: str | None
    source: str


@dataclass
class DuplicatePair:
    """Two records that look like one person; `keep` is the older one, `duplicate` the newer."""

    keep: CustomerBrief
    duplicate: CustomerBrief
    confidence: str
    matches: list[Match] = field(default_factory=list)

    @property
    def ids(self) -> tuple[int, int]:
        return self.keep.id, self.duplicate.id

    @property
    def reason(self) -> str:
        """'same phone', 'same phone, same email': what an agent reads next to the pair."""
        return ", ".join(dict.fromkeys(m.label for m in self.matches))

    @property
    def merge_command(self) -> str:
        """Fold the newer record into the older one; `/sapa merge DUPLICATE KEEP`."""
        return f"/sapa merge #{self.duplicate.id} #{self.keep.id}"

    @property
    def dismiss_command(self) -> str:
        return f"/sapa duplicates dismiss #{self.keep.id} #{self.duplicate.id}"

    def other(self, customer_id: int) -> CustomerBrief:
        return self.duplicate if customer_id == self.keep.id else self.keep

    def as_dict(self) -> dict[str, Any]:
        return {
            "keep": self.keep.__dict__, "duplicate": self.duplicate.__dict__, "confidence": self.confidence,
            "reason": self.reason, "matches": [{"rule": m.rule, "key": m.key} for m in self.matches],
            "merge_command": self.merge_command, "dismiss_command": self.dismiss_command,
        }


# --- keys: (customer, kind, key) rows from every place a phone or an email is kept ------------------

def _key_selects(session: Session, *, customer_id: int | None = None,
                 keys: Collection[str] | None = None) -> list[Select[Any]]:
    """One SELECT (customer_id, kind, key) per source, each filtered before the union.

    `customer_id` limits to one customer's keys; `keys` to rows holding one of those phones/emails.
    """
    def where(column: Any, owner: Any) -> list[Any]:
        conditions = []
        if customer_id is not None:
            conditions.append(owner == customer_id)
        if keys is not None:
            conditions.append(column.in_(sorted(keys)))
        return conditions

    kind_phone, kind_email = literal("phone", String).label("kind"), literal("email", String).label("kind")
    selects: list[Any] = [
        select(Customer.id.label("customer_id"), kind_phone, Customer.phone.label("key"))
        .where(Customer.phone.is_not(None), *where(Customer.phone, Customer.id)),
        select(Customer.id.label("customer_id"), kind_email, Customer.email.label("key"))
        .where(Customer.email.is_not(None), *where(Customer.email, Customer.id)),
        # An address that is also the profile phone adds nothing: leaving it out halves what is grouped.
        select(ChannelIdentity.customer_id.label("customer_id"), kind_phone, ChannelIdentity.address.label("key"))
        .join(Customer, Customer.id == ChannelIdentity.customer_id)
        .where(ChannelIdentity.channel.in_(PHONE_CHANNELS), ChannelIdentity.address.like("+%"),
               or_(Customer.phone.is_(None), Customer.phone != ChannelIdentity.address),
               *where(ChannelIdentity.address, ChannelIdentity.customer_id)),
    ]
    # The customer's own words: only a message that carries a phone or an email is parsed.
    inbound = [Message.direction == "in"]
    if customer_id is not None:
        inbound.append(Message.customer_id == customer_id)
    meta = cast(Message.meta, Text)
    shared = Message.meta["shared_phone"].as_string()
    selects.append(
        select(Message.customer_id.label("customer_id"), kind_phone, shared.label("key"))
        .where(*inbound, meta.like("%shared_phone%"), shared.is_not(None),
               *([shared.in_(sorted(keys))] if keys is not None else []))
    )
    entity: Any
    value: Any
    span: Any
    if session.get_bind().dialect.name == "postgresql":
        items = func.json_array_elements(Message.meta["nlu"]["entities"]).table_valued("value").lateral("e")
        entity, value, span = (items.c.value.op("->>")(literal(name, String)) for name in ("entity", "value", "text"))
    else:
        items = func.json_each(Message.meta, "$.nlu.entities").table_valued("value").alias("e")
        entity, value, span = (func.json_extract(items.c.value, f"$.{name}") for name in ("entity", "value", "text"))
    # A number or an address they gave as theirs: in a profile change, or as the whole message
    # ("0812-3456-7890" answering a question). One mentioned in passing may be the courier's.
    selects.append(
        select(Message.customer_id.label("customer_id"), entity.label("kind"), value.label("key"))
        .select_from(Message).join(items, true())
        .where(*inbound, or_(meta.like("%phone%"), meta.like("%@%")), entity.in_(("phone", "email")),
               or_(Message.intent == "update_profile", span == func.trim(Message.text)),
               *([value.in_(sorted(keys))] if keys is not None else []))
    )
    return selects


def _grouped_keys(session: Session) -> dict[tuple[str, str], set[int]]:
    """Phones and emails held by two or more customers, with who holds them (grouped in SQL).

    Merged-away holders are still in; the caller drops them (they are few, and a join here costs more).
    """
    keys = union_all(*_key_selects(session)).cte("k")
    shared = (
        select(keys.c.key).group_by(keys.c.key)
        .having(func.count(distinct(keys.c.customer_id)) > 1)
        .subquery("shared")
    )
    rows = session.execute(
        select(keys.c.kind, keys.c.key, keys.c.customer_id).distinct().join(shared, shared.c.key == keys.c.key)
    )
    groups: dict[tuple[str, str], set[int]] = defaultdict(set)
    for kind, key, customer_id in rows:
        groups[(kind, key)].add(int(customer_id))
    return groups


# --- names ------------------------------------------------------------------------------------------

def normalise_name(name: str | None) -> str | None:
    """'Bu  Siti Rahmä.' -> 'siti rahma': accents, case, punctuation and a leading honorific dropped."""
    if not name:
        return None
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    words = re.sub(r"[^\w]+", " ", text).split()
    while len(words) > 1 and words[0] in _HONORIFICS:
        words = words[1:]
    return " ".join(words) or None


def email_name(email: str | None) -> str | None:
    """'Budi.Santoso+toko@gmail.com' -> 'budisantoso': the part before @, without tags and dots."""
    if not email or "@" not in email:
        return None
    local = email.lower().split("@", 1)[0].split("+", 1)[0].replace(".", "")
    return local if len(local) >= MIN_EMAIL_NAME else None


def _name_candidates(session: Session) -> list[tuple[int, str | None, str | None, str | None]]:
    """Named live customers whose phone ending or email name someone else has too (grouped in SQL)."""
    if session.get_bind().dialect.name == "postgresql":
        ending: Any = func.right(Customer.phone, PHONE_SUFFIX_DIGITS)
        local: Any = func.split_part(func.split_part(Customer.email, "@", 1), "+", 1)
    else:
        ending = func.substr(Customer.phone, -PHONE_SUFFIX_DIGITS)
        before_at = func.substr(Customer.email, 1, func.instr(Customer.email, "@") - 1)
        local = case((func.instr(before_at, "+") > 0, func.substr(before_at, 1, func.instr(before_at, "+") - 1)),
                     else_=before_at)
    local = func.lower(func.replace(local, ".", ""))
    named = [Customer.merged_into_id.is_(None), Customer.name.is_not(None)]
    found: dict[int, tuple[int, str | None, str | None, str | None]] = {}
    for expression, present in ((ending, Customer.phone.is_not(None)), (local, Customer.email.is_not(None))):
        shared = select(expression).where(*named, present).group_by(expression).having(func.count() > 1)
        for row in session.execute(select(Customer.id, Customer.name, Customer.phone, Customer.email)
                                   .where(*named, present, expression.in_(shared))):
            found[row[0]] = (row[0], row[1], row[2], row[3])
    return list(found.values())


def _name_matches(rows: Iterable[tuple[int, str | None, str | None, str | None]]) -> Iterator[tuple[int, int, Match]]:
    """Same normalised name and the same phone ending or email name: linear in the number of rows."""
    by_name: dict[str, list[tuple[int, str | None, str | None]]] = defaultdict(list)
    for customer_id, name, phone, email in rows:
        normalised = normalise_name(name)
        if normalised:
            by_name[normalised].append((customer_id, phone, email))
    for members in by_name.values():
        if len(members) < 2:
            continue
        buckets: dict[tuple[str, str], list[int]] = defaultdict(list)
        for customer_id, phone, email in members:
            if phone and len(phone) > PHONE_SUFFIX_DIGITS:
                buckets[("name_phone", phone[-PHONE_SUFFIX_DIGITS:])].append(customer_id)
            if local := email_name(email):
                buckets[("name_email", local)].append(customer_id)
        for (rule, key), ids in buckets.items():
            if 2 <= len(ids) <= LARGE_GROUP:
                for a, b in combinations(sorted(set(ids)), 2):
                    yield a, b, Match(rule, key)


# --- pairs ------------------------------------------------------------------------------------------

def _excluded(session: Session) -> tuple[set[int], set[tuple[int, int]]]:
    erased = {int(s) for s in session.execute(
        select(AuditEntry.subject_id).where(AuditEntry.action == "customer.erased",
                                            AuditEntry.subject_type == "customer")).scalars() if s and s.isdigit()}
    dismissed = {(int(a), int(b)) for a, b in session.execute(
        select(DuplicateDismissal.customer_a_id, DuplicateDismissal.customer_b_id))}
    return erased, dismissed


def _briefs(session: Session, ids: Collection[int]) -> dict[int, CustomerBrief]:
    found: dict[int, CustomerBrief] = {}
    ordered = sorted(ids)
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start:start + _CHUNK]
        for row in session.execute(
                select(Customer.id, Customer.name, Customer.phone, Customer.email, Customer.source)
                .where(Customer.id.in_(chunk), Customer.merged_into_id.is_(None))):
            found[row.id] = CustomerBrief(row.id, row.name, row.phone, row.email, row.source)
    return found


def _pairs(session: Session, matches: Iterable[tuple[int, int, Match]],
           briefs: dict[int, CustomerBrief] | None = None) -> list[DuplicatePair]:
    erased, dismissed = _excluded(session)
    found: dict[tuple[int, int], list[Match]] = defaultdict(list)
    for a, b, match in matches:
        pair = (min(a, b), max(a, b))
        if a != b and pair not in dismissed and a not in erased and b not in erased and match not in found[pair]:
            found[pair].append(match)
    if briefs is None:
        briefs = _briefs(session, {i for pair in found for i in pair})
    pairs = []
    for (a, b), pair_matches in found.items():
        if a not in briefs or b not in briefs:
            continue  # merged away
        if any(m.rule in ("phone", "email") for m in pair_matches):
            pair_matches = [m for m in pair_matches if m.rule in ("phone", "email")]  # the name adds nothing
        pairs.append(DuplicatePair(briefs[a], briefs[b], _confidence(briefs[a], briefs[b], pair_matches),
                                   sorted(pair_matches, key=lambda m: list(LABELS).index(m.rule))))
    pairs.sort(key=lambda p: (p.confidence != STRONG, p.keep.id, p.duplicate.id))
    return pairs


def _confidence(a: CustomerBrief, b: CustomerBrief, matches: list[Match]) -> str:
    rules = {m.rule for m in matches}
    if "phone" in rules:
        return STRONG
    if "email" in rules and not (a.phone and b.phone and a.phone != b.phone):
        return STRONG
    return POSSIBLE


def _group_matches(groups: dict[tuple[str, str], set[int]],
                   live: Collection[int]) -> Iterator[tuple[int, int, Match]]:
    for (kind, key), holders in groups.items():
        ids = sorted(i for i in holders if i in live)
        if len(ids) <= LARGE_GROUP:
            for a, b in combinations(ids, 2):
                yield a, b, Match(kind, key)


def find_duplicates(session: Session) -> list[DuplicatePair]:
    """Every current pair of probable duplicates, strong ones first."""
    groups = _grouped_keys(session)
    namesakes = _name_candidates(session)
    briefs = _briefs(session, {i for ids in groups.values() for i in ids} | {row[0] for row in namesakes})
    return _pairs(session, [*_group_matches(groups, briefs), *_name_matches(namesakes)], briefs)


def duplicates_of(session: Session, customer_id: int) -> list[DuplicatePair]:
    """The pairs one customer is part of: their own keys, then who else holds them (for a profile view)."""
    own = session.execute(union_all(*_key_selects(session, customer_id=customer_id))).all()
    matches: list[tuple[int, int, Match]] = []
    if own:
        wanted = {(kind, key) for _, kind, key in own}
        others = session.execute(union_all(*_key_selects(session, keys={key for _, key in wanted}))).all()
        for other_id, kind, key in others:
            if (kind, key) in wanted and other_id != customer_id:
                matches.append((customer_id, int(other_id), Match(kind, key)))
    customer = session.get(Customer, customer_id)
    name = normalise_name(customer.name) if customer is not None else None
    if customer is not None and name:
        longest = max(name.split(), key=len)
        namesakes = session.execute(
            select(Customer.id, Customer.name, Customer.phone, Customer.email)
            .where(Customer.merged_into_id.is_(None), Customer.name.ilike(f"%{longest}%"))
        ).all()
        matches += [(a, b, m) for a, b, m in _name_matches((r[0], r[1], r[2], r[3]) for r in namesakes)
                    if customer_id in (a, b)]
    return [p for p in _pairs(session, matches) if customer_id in p.ids]


def dismiss(session: Session, first_id: int, second_id: int, *, by: str, actor: str, now: datetime) -> bool:
    """Record that two customers are different people; False if that was already recorded."""
    a, b = min(first_id, second_id), max(first_id, second_id)
    exists = session.execute(select(DuplicateDismissal.id).where(
        DuplicateDismissal.customer_a_id == a, DuplicateDismissal.customer_b_id == b)).scalar_one_or_none()
    if exists is not None:
        return False
    try:
        with session.begin_nested():
            session.add(DuplicateDismissal(customer_a_id=a, customer_b_id=b, dismissed_by=by, dismissed_at=now))
            session.flush()
    except IntegrityError:
        return False  # another agent dismissed the same pair at the same moment
    record(session, actor=actor, action="customers.duplicate_dismissed", subject_type="customer", subject_id=a,
           now=now, detail={"other": b, "by": by})
    return True
