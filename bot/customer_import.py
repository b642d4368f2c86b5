"""Bulk customer import from CSV (name, phone, email, language, and optionally timezone).

Rows are checked and normalised; bad rows are reported with their line numbers and skipped;
good rows create customers or update the one already known by phone or email (never a double).
Work goes in batches: one lookup query per batch, not per row.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.clock import Clock
from bot.contacts import normalise_email, normalise_phone
from store import Database
from store.audit import record
from store.customers import customers_by_keys
from store.duplicates import find_duplicates
from store.models import Customer

COLUMNS = ("name", "phone", "email", "language")  # plus optional "timezone" (IANA, for broadcast quiet hours)
BATCH = 2000


@dataclass(frozen=True)
class ImportRow:
    line: int
    name: str | None
    phone: str | None
    email: str | None
    language: str | None
    timezone: str | None = None  # CRM-4.3: quiet hours of broadcasts follow the customer's zone


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

    @property
    def good(self) -> int:
        return self.created + self.updated + self.duplicates_in_file


def read_rows(path: Path, languages: tuple[str, ...], report: ImportReport) -> Iterator[ImportRow]:
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
            if not phone and not email and not problems:
                problems.append("a row needs a phone or an email")
            if problems:
                report.errors.append((line, "; ".join(problems)))
                continue
            yield ImportRow(line, name, phone, email, language, timezone)


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
) -> ImportReport:
    report = ImportReport()
    batch: list[ImportRow] = []
    for row in read_rows(path, languages, report):
        batch.append(row)
        if len(batch) >= BATCH:
            _import_batch(database, clock, batch, report)
            progress(len(batch))
            batch = []
    if batch:
        _import_batch(database, clock, batch, report)
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
                    "look_like_existing": report.look_like_existing},
        )
    return report


def _import_batch(database: Database, clock: Clock, rows: list[ImportRow], report: ImportReport) -> None:
    now = clock.now()
    created: list[Customer] = []
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
