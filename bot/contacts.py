"""Normalising contact data: phones to E.164 (Indonesia by default), emails lower-cased and checked."""

from __future__ import annotations

import re

import phonenumbers

_PHONE_CHARS = re.compile(r"^\+?[\d\s().\-/]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalise_phone(raw: str, region: str = "ID") -> str | None:
    """'0812-3456-7890' -> '+6281234567890'; None if it is not a valid number."""
    raw = raw.strip()
    # phonenumbers reads letters as keypad digits ("08123-CALL-ME"); in customer data they are typos.
    if not raw or not _PHONE_CHARS.match(raw):
        return None
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(raw: str) -> str | None:
    raw = raw.strip().lower()
    return raw if _EMAIL.match(raw) and len(raw) <= 320 else None


def mask_phone(phone: str) -> str:
    """For logs: keep the first 2 and the last 3 digits ('+6281234567890' -> '+62********890')."""
    plus = "+" if phone.startswith("+") else ""
    digits = phone.lstrip("+")
    if len(digits) <= 5:
        return "***"
    return f"{plus}{digits[:2]}{'*' * (len(digits) - 5)}{digits[-3:]}"
