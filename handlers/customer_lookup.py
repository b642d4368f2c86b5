"""Which customer or record an agent means by what they typed: "#12", a phone, an email, a name, "TKT-000012".

Shared by the Slack commands (handlers/desk_commands.py) and the loyalty commands (handlers/loyalty.py), which
both take a customer key; neither imports the other.
"""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from bot.contacts import normalise_email, normalise_phone
from store.customers import find_customers, get_customer
from store.models import Customer


def number(key: str) -> int | None:
    """The id an agent typed: "12", "#12", "TKT-000012". ASCII digits that fit a BIGINT only: str.isdigit() also
    says yes to "²", which int() refuses, and a number past 64 bits is no row's id."""
    digits = key.strip().upper().removeprefix("TKT-").lstrip("#")
    return int(digits) if re.fullmatch(r"[0-9]{1,18}", digits) else None



def find_customers_by_key(session: Session, key: str) -> list[Customer]:
    key = key.strip()
    if key.startswith("#") and key[1:].isdigit():  # "#²" too: no customer, rather than a crash in int()
        customer_id = number(key)
        found = get_customer(session, customer_id) if customer_id is not None else None
        return [found] if found else []
    phone = normalise_phone(key)
    email = normalise_email(key) if "@" in key else None
    if phone or email:
        return find_customers(session, phone=phone, email=email)
    return find_customers(session, name=key, limit=5)
