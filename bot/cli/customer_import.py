"""Bulk customer import from CSV (name, phone, email, language, and optionally timezone and marketing consent).

Rows are checked and normalised; bad rows are reported with their line numbers and skipped;
good rows create customers or update the one already known by phone or email (never a double).
Work goes in batches: one lookup query per batch, not per row.

Marketing consent comes only with its evidence: `marketing_consent` (yes/no), `consent_source` (where it was
given) and `consent_at` (when) together, written as an append-only consents row (channel "import") dated when
it was given. A customer without it has no marketing consent, so broadcasts skip them until they opt in. An
existing customer's consent changes only when the row's evidence is newer than the latest answer recorded.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.clock import Clock
from bot.contacts import normalise_email, normalise_phone
from store import Database, consents
from store.audit import record
from store.customers import customers_by_keys
from store.duplicates import find_duplicates
from store.models import Consent, Customer

COLUMNS = ("name", "phone", "email", "language")  # plus optional "timezone" (IANA, for broadcast quiet hours)
CONSENT_COLUMNS = ("marketing_consent", "consent_source", "consent_at")  # optional, all three together
CONSENT_WORDS = {"yes": True, "true": True, "1": True, "ya": True, "no": False, "false": False, "0": False,
                 "tidak": False}
BATCH = 2000


@dataclass(frozen=True)
class ImportedConsent:
    """A marketing answer the file carries, with its evidence: where and when the customer gave it."""

    granted: bool
    source: str
    given_at: datetime


@dataclass(frozen=True)
class ImportRow:
    line: int
    name: str | None
    phone: str | None
    email: str | None
    language: str | None
    timezone: str | None = None  # CRM-4.3: quiet hours of broadcasts follow the customer's zone
    consent: ImportedConsent | None = None


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    duplicates_in_file: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set, repr=False)  # phones and emails met in this file
    created_ids: set[int] = field(default_factory=set, repr=False)
    # New customers who look like someone already known (same phone on a channel, same email, ...): CRM-1.4.
    look_like_existing: int = 0
    consents_granted: int = 0  # consents rows written from the file: yes
    consents_refused: int = 0  # ... and no
    consents_older: int = 0  # rows whose evidence is not newer than the answer already recorded: not applied
    marketing: dict[int, bool] = field(default_factory=dict, repr=False)  # customer id -> may get marketing now

    @property
    def without_consent(self) -> int:
        """Customers in this file who may not receive marketing after the import (broadcasts skip them)."""
        return sum(1 for ok in self.marketing.values() if not ok)

    def consent_summary(self) -> list[str]:
        """The import's consent outcome in plain words, for the operator."""
        lines = []
        if self.consents_granted or self.consents_refused:
            lines.append(f"marketing consent recorded from the file for {self.consents_granted} customers "
                         f"(and {self.consents_refused} refusals), with the file, line, source and time as evidence")
        if self.consents_older:
            lines.append(f"{self.consents_older} rows' consent evidence is not newer than what the customer already "
                         "told us: their consent was left as it was")
        if self.without_consent:
            who = "customer" if self.without_consent == 1 else "customers"
            lines.append(f"{self.without_consent} {who} imported without marketing consent: broadcasts will not reach "
                         "them until they opt in (add marketing_consent, consent_source and consent_at columns if "
                         "you hold their consent)")
        return lines

    @property
    def good(self) -> int:
        return self.created + self.updated + self.duplicates_in_file


def read_rows(path: Path, languages: tuple[str, ...], report: ImportReport, *, company_zone: tzinfo = UTC,
              now: datetime | None = None) -> Iterator[ImportRow]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip().lower() for h in reader.fieldnames or []]
        missing = {"name", "phone"} - set(header)
        if missing:
            raise ValueError(
                f"{path}: header must have columns {', '.join(COLUMNS)}; missing {', '.join(sorted(missing))}"
            )
        reader.fieldnames = header
        for row in reader:
            line = reader.line_num
            raw = {k: (v or "").strip() for k, v in row.items() if k}
            problems = []
            phone = normalise_phone(raw.get("phone", "")) if raw.get("phone") else None
            if raw.get("phone") and phone is None:
                problems.append(f"phone {raw['phone']!r} is not a valid phone number")
            email = normalise_email(raw.get("email", "")) if raw.get("email") else None
            if raw.get("email") and email is None:
                problems.append(f"email {raw['email']!r} is not a valid address")
            language = raw.get("language", "").lower() or None
            if language and language not in languages:
                problems.append(f"language {language!r} is not one of {', '.join(languages)}")
            timezone = raw.get("timezone", "") or None
            if timezone and not _known_zone(timezone):
                problems.append(f"timezone {timezone!r} is not an IANA time zone such as Asia/Jayapura")
            name = " ".join(raw.get("name", "").split()) or None
            if name and len(name) > 200:
                problems.append("name is longer than 200 characters")
            consent = _consent(raw, problems, company_zone, now)
            if not phone and not email and not problems:
                problems.append("a row needs a phone or an email")
            if problems:
                report.errors.append((line, "; ".join(problems)))
                continue
            yield ImportRow(line, name, phone, email, language, timezone, consent)


def _consent(raw: dict[str, str], problems: list[str], zone: tzinfo, now: datetime | None) -> ImportedConsent | None:
    """The row's marketing answer with its evidence; consent never comes from a guess, so all three or none."""
    answer, source, when = (raw.get(column, "") for column in CONSENT_COLUMNS)
    if not answer:
        if source or when:
            problems.append("consent_source and consent_at need marketing_consent (yes or no)")
        return None
    granted = CONSENT_WORDS.get(answer.lower())
    if granted is None:
        problems.append(f"marketing_consent {answer!r} is not one of yes, no, true, false, 1, 0, ya, tidak")
    if not source:
        problems.append("marketing_consent needs consent_source: where the customer gave it, e.g. 'signup form 2025'")
    elif len(source) > 300:
        problems.append("consent_source is longer than 300 characters")
    given_at = None
    if not when:
        problems.append("marketing_consent needs consent_at: when the customer gave it, e.g. 2025-03-01 or "
                        "2025-03-01T10:00")
    else:
        try:
            parsed = datetime.fromisoformat(when)
        except ValueError:
            problems.append(f"consent_at {when!r} is not an ISO date or date-time such as 2025-03-01T10:00")
        else:
            given_at = (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)).astimezone(UTC)
            if now is not None and given_at > now:
                problems.append(f"consent_at {when!r} is in the future")
    if granted is None or not source or given_at is None or len(source) > 300:
        return None
    return ImportedConsent(granted, source, given_at)


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _apply(customer: Customer, row: ImportRow) -> None:
    """Imported values fill and correct the profile; an empty cell never erases what we know."""
    if row.name:
        customer.name = row.name
    if row.email:
        customer.email = row.email
    if row.phone and not customer.phone:
        customer.phone = row.phone
    if row.language:
        customer.language = row.language
    if row.timezone:
        customer.timezone = row.timezone


def import_customers(
    database: Database,
    clock: Clock,
    path: Path,
    languages: tuple[str, ...],
    progress: Callable[[int], None] = lambda n: None,
    *,
    timezone: tzinfo = UTC,
) -> ImportReport:
    """`timezone`: the company's, for consent_at values without an offset."""
    report = ImportReport()
    batch: list[ImportRow] = []
    for row in read_rows(path, languages, report, company_zone=timezone, now=clock.now()):
        batch.append(row)
        if len(batch) >= BATCH:
            _import_batch(database, clock, batch, report, path.name)
            progress(len(batch))
            batch = []
    if batch:
        _import_batch(database, clock, batch, report, path.name)
        progress(len(batch))
    if report.created_ids:
        with database.unit_of_work(read_only=True) as session:
            report.look_like_existing = len({
                new for pair in find_duplicates(session) for new, old in (pair.ids, pair.ids[::-1])
                if new in report.created_ids and old not in report.created_ids
            })
    with database.unit_of_work() as session:
        record(
            session, actor="cli", action="customers.import", subject_type="file", subject_id=path.name,
            now=clock.now(),
            detail={"created": report.created, "updated": report.updated, "bad_rows": len(report.errors),
                    "look_like_existing": report.look_like_existing, "consents_granted": report.consents_granted,
                    "consents_refused": report.consents_refused, "consents_older": report.consents_older,
                    "without_marketing_consent": report.without_consent},
        )
    return report


def _import_batch(database: Database, clock: Clock, rows: list[ImportRow], report: ImportReport,
                  file_name: str) -> None:
    now = clock.now()
    created: list[Customer] = []
    touched: list[tuple[Customer, ImportRow]] = []
    with database.unit_of_work() as session:
        by_phone, by_email = customers_by_keys(
            session, sorted({r.phone for r in rows if r.phone}), sorted({r.email for r in rows if r.email})
        )
        for row in rows:
            customer = by_phone.get(row.phone) if row.phone else None
            if customer is None and row.email:
                customer = by_email.get(row.email)
                if customer is not None and row.phone and customer.phone:
                    customer = None  # same email, another phone: a different person sharing an email
            repeated = (row.phone in report.seen) if row.phone else False
            repeated = repeated or ((row.email in report.seen) if row.email else False)
            if customer is None:
                customer = Customer(source="import", is_vip=False, created_at=now, updated_at=now)
                session.add(customer)
                created.append(customer)
                report.created += 1
            elif repeated:
                report.duplicates_in_file += 1
            else:
                report.updated += 1
            _apply(customer, row)
            touched.append((customer, row))
            customer.updated_at = now
            for key in (row.phone, row.email):
                if key:
                    report.seen.add(key)
            if customer.phone:
                by_phone[customer.phone] = customer
            if customer.email:
                by_email.setdefault(customer.email, customer)
        session.flush()
        report.created_ids.update(c.id for c in created)
        _apply_consents(session, touched, report, file_name, now)


def _apply_consents(session: Session, touched: list[tuple[Customer, ImportRow]], report: ImportReport,
                    file_name: str, now: datetime) -> None:
    """Write each row's marketing answer when its evidence is newer than the customer's latest one (one query for
    the batch's latest answers), and note who may receive marketing after it."""
    ids = sorted({customer.id for customer, _ in touched})
    latest: dict[int, tuple[bool, datetime]] = {}
    for customer_id, granted, recorded_at in session.execute(
            select(Consent.customer_id, Consent.granted, Consent.recorded_at)
            .where(Consent.customer_id.in_(ids), Consent.purpose == "marketing")
            .order_by(Consent.customer_id, Consent.recorded_at, Consent.id)):
        latest[customer_id] = (bool(granted), recorded_at)
    for customer, row in touched:
        consent = row.consent
        known = latest.get(customer.id)
        if consent is not None and known is not None and consent.given_at <= known[1]:
            report.consents_older += 1  # never change what the customer told us on older (or equal) evidence
        elif consent is not None:
            consents.record(session, customer.id, "marketing", consent.granted, channel="import",
                            evidence=f"imported from {file_name} line {row.line}: {consent.source}; given "
                                     f"{consent.given_at.isoformat()}, imported {now.isoformat()}",
                            now=consent.given_at)
            latest[customer.id] = (consent.granted, consent.given_at)
            if consent.granted:
                report.consents_granted += 1
            else:
                report.consents_refused += 1
        report.marketing[customer.id] = latest.get(customer.id, (False, now))[0]
