"""Customers and their channel identities: find, create, look up."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, contains_eager

from store.models import ChannelIdentity, Customer


def find_identity(session: Session, channel: str, address: str) -> ChannelIdentity | None:
    return session.execute(
        select(ChannelIdentity).where(ChannelIdentity.channel == channel, ChannelIdentity.address == address)
    ).scalar_one_or_none()


def find_identity_locked(session: Session, channel: str, address: str) -> ChannelIdentity | None:
    """The identity, locked so one customer's messages go one at a time.

    SQLite: its writers are already serialised by BEGIN IMMEDIATE, so the customer is read in the same statement
    (one round trip instead of three: find, lock, customer); it lands in the session's identity map and
    `get_customer` then costs no query. PostgreSQL: `SELECT ... FOR UPDATE` on the identity alone, and the customer
    read by the next statement. Joined into the locking statement, the customer would come from the snapshot taken
    before the wait for the lock: stale after the previous message of the same customer committed (a name it just
    gave, a language it chose).
    """
    query = select(ChannelIdentity).where(ChannelIdentity.channel == channel, ChannelIdentity.address == address)
    if session.get_bind().dialect.name == "sqlite":
        # contains_eager: the relationship holds the customer (the identity map keeps only weak references).
        query = query.join(ChannelIdentity.customer).options(contains_eager(ChannelIdentity.customer))
    return session.execute(query.with_for_update()).scalar_one_or_none()


def get_or_create_identity(
    session: Session,
    channel: str,
    address: str,
    *,
    now: datetime,
    display_name: str | None = None,
    language_hint: str | None = None,
    phone: str | None = None,
) -> tuple[ChannelIdentity, bool]:
    """The identity for this address, creating it (and its customer) on first contact.

    A customer with the same phone (E.164) is reused, so SMS and WhatsApp are one person.
    Safe against two first messages at once: the loser of the unique-index race re-reads.
    """
    # Two first messages at once lose a unique-index race: on this address (same channel) or on the phone
    # (the same new number writing on SMS and WhatsApp at once). The loser re-reads; a second pass then finds
    # the customer the winner created and adds its own identity to it.
    for attempt in range(3):
        identity = find_identity_locked(session, channel, address)
        if identity is not None:
            return identity, False
        try:
            with session.begin_nested():
                customer = find_customer_by_phone(session, phone) if phone else None
                if customer is None:
                    customer = Customer(
                        phone=phone, source=channel, language=None, created_at=now, updated_at=now, name=None
                    )
                    session.add(customer)
                    session.flush()
                identity = ChannelIdentity(
                    customer_id=customer.id,
                    channel=channel,
                    address=address,
                    display_name=display_name,
                    language_hint=language_hint,
                    created_at=now,
                )
                session.add(identity)
                session.flush()
        except IntegrityError:
            if attempt == 2:
                raise
            continue
        # Inserted by this transaction: no other one can see the row, let alone lock it, until the commit.
        return identity, True
    raise AssertionError("unreachable: the loop returns or raises")


def get_customer(session: Session, customer_id: int) -> Customer | None:
    """The customer by id, following merges to the surviving record."""
    customer = session.get(Customer, customer_id)
    seen = set()
    while customer is not None and customer.merged_into_id is not None and customer.id not in seen:
        seen.add(customer.id)
        customer = session.get(Customer, customer.merged_into_id)
    return customer


def find_customer_by_phone(session: Session, phone: str) -> Customer | None:
    return session.execute(select(Customer).where(Customer.phone == phone)).scalar_one_or_none()


def find_customers(session: Session, *, phone: str | None = None, email: str | None = None,
                   name: str | None = None, limit: int = 20) -> list[Customer]:
    """Live (not merged-away) customers matching any of the given keys."""
    conditions = []
    if phone:
        conditions.append(Customer.phone == phone)
    if email:
        conditions.append(Customer.email == email.lower())
    if name:
        conditions.append(Customer.name.ilike(f"%{name}%"))
    if not conditions:
        return []
    query = (
        select(Customer)
        .where(or_(*conditions), Customer.merged_into_id.is_(None))
        .order_by(Customer.id)
        .limit(limit)
    )
    return list(session.execute(query).scalars())


def customers_by_keys(
    session: Session, phones: list[str], emails: list[str]
) -> tuple[dict[str, Customer], dict[str, Customer]]:
    """Existing customers for a batch of phones and emails (one query each), for bulk import."""
    by_phone: dict[str, Customer] = {}
    by_email: dict[str, Customer] = {}
    if phones:
        for customer in session.execute(select(Customer).where(Customer.phone.in_(phones))).scalars():
            if customer.phone:
                by_phone[customer.phone] = customer
    if emails:
        query = select(Customer).where(Customer.email.in_(emails), Customer.merged_into_id.is_(None))
        for customer in session.execute(query.order_by(Customer.id)).scalars():
            if customer.email:
                by_email.setdefault(customer.email, customer)
    return by_phone, by_email
