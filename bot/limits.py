"""The field limits every endpoint enforces at the edge, and a JSON reader that refuses what a database would.

A leaf module (standard library only), so channel adapters may use it as they use bot.messages.

Issue 15: hostile requests reached the database with values PostgreSQL refuses but SQLite stores (NUL bytes,
strings longer than their column, integers past 64 bits) or crashed Python before that (JSON nested 100,000
deep, lone UTF-16 surrogates that cannot be encoded, dates outside the calendar, "²" passing str.isdigit()).
Each is now refused at the edge with a 4xx that says why, the same on both databases. The lengths below are
the column sizes of store/models.py; where the column is TEXT the limit is a documented choice:

- MAX_TEXT, 10,000 characters, for a customer's message (messages.text is TEXT). Providers send far less
  (Telegram 4,096, a Twilio SMS 1,600, WhatsApp 4,096; the web chat's own limit, channels.webchat.
  max_text_length, is at most this), so a longer text is not a provider's: it is refused (413), never cut,
  because a silently shortened message could change its meaning.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any

MAX_TEXT = 10_000  # characters of a customer's message (messages.text: TEXT; see above)
MAX_ID = 200  # provider message ids and channel addresses (messages.provider_message_id, channel_identities.address)
MAX_NAME = 200  # a display name (channel_identities.display_name, customers.name)
MAX_PAYLOAD = 200  # a button's payload (messages.button_payload)
MAX_LANGUAGE = 8  # a language code (messages.language, channel_identities.language_hint)
MAX_PHONE = 20  # an E.164 number (customers.phone)
MAX_EMAIL = 320  # customers.email
MAX_DELIVERY_ERROR = 300  # messages.delivery_error: a provider's error text longer than this is shortened
MAX_EXTERNAL_ID = 120  # transactions.external_id
MAX_AMOUNT = 10**15  # rupiah in one transaction (BIGINT): so far past any purchase that sums of them still fit
MAX_BROADCAST_NAME = 120  # broadcasts.name
MAX_SEGMENT_NAME = 80  # segments.name
MAX_AGENT_ID = 40  # agents.slack_user_id
MAX_FIELD = MAX_TEXT  # any other string a request carries (form field, JSON string)
MAX_JSON_DEPTH = 32  # nesting of objects and arrays; a Telegram update nests about 6 deep
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # BIGINT: every integer column and id
MIN_DATE = datetime(1900, 1, 1, tzinfo=UTC)  # dates a request may carry (a purchase, a schedule, a message)
MAX_DATE = datetime(2200, 1, 1, tzinfo=UTC)

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # NUL (PostgreSQL refuses it) and lone surrogates (not UTF-8)
_DIGITS = re.compile(r"^[0-9]{1,19}$")  # ASCII only: str.isdigit() also says yes to "²" and "١"


class Refused(ValueError):
    """A request value past the limits; `reason` is for the client, `status` the answer (400, 413 or 422)."""

    def __init__(self, reason: str, status: int = 422) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def unstorable(text: str) -> str | None:
    """What makes `text` unstorable on every database (a NUL byte, a lone surrogate), or None."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    return "a NUL character" if found.group() == "\x00" else "a lone UTF-16 surrogate"


def text_problem(value: Any, name: str, max_length: int = MAX_FIELD) -> str | None:
    """Why the string `value` cannot be stored as field `name` (at most `max_length` characters), or None."""
    if not isinstance(value, str):
        return f"{name} must be a string"
    if len(value) > max_length:
        return f"{name} is longer than {max_length} characters"
    bad = unstorable(value)
    return f"{name} contains {bad}" if bad else None


def check_text(value: Any, name: str, max_length: int = MAX_FIELD, *, too_long: int = 422) -> str:
    """`value`, a storable string of at most `max_length` characters; else Refused (422, or `too_long` when the
    string is only too long: 413 for a message's text)."""
    problem = text_problem(value, name, max_length)
    if problem is not None:
        raise Refused(problem, too_long if isinstance(value, str) and len(value) > max_length else 422)
    return str(value)


def in_int64(value: int) -> bool:
    return INT64_MIN <= value <= INT64_MAX


def parse_id(text: str) -> int | None:
    """A positive row id written in ASCII digits that fits a BIGINT, or None ("²", "-1", "1e3", 2**63: None)."""
    if not _DIGITS.match(text):
        return None
    number = int(text)
    return number if 0 < number <= INT64_MAX else None


def is_ascii_number(text: str) -> bool:
    """ASCII digits only, any length: str.isdigit() is also true of "²", "١" and "１"."""
    return text.isascii() and text.isdigit()


def date_in_range(moment: datetime) -> bool:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    try:
        return MIN_DATE <= aware <= MAX_DATE
    except OverflowError:  # a zone offset pushing year 1 or 9999 past the calendar
        return False


def iso_date_problem(value: Any, name: str) -> str | None:
    """Why an ISO date or date-time string is not one Sapa can store, or None (also None for non-strings,
    which the endpoint's own reader refuses with its usual message)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None  # not a date at all: the endpoint says so in its own words
    if not date_in_range(moment):
        return f"{name} {value.strip()[:40]!r} is outside {MIN_DATE.year}-{MAX_DATE.year - 1}"
    return None


# --- JSON ------------------------------------------------------------------------------------------------------


def _number(text: str) -> int:
    if len(text.lstrip("-")) > 19:  # before int(): 5,000 digits would raise, 400,000 would take a while
        raise Refused(f"a number in the JSON is beyond 64 bits: {text[:24]}…")
    number = int(text)
    if not in_int64(number):
        raise Refused(f"a number in the JSON is beyond 64 bits: {text}")
    return number


def _float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise Refused(f"a number in the JSON is out of range: {text[:24]}")
    return number


def _constant(text: str) -> Any:
    raise Refused(f"{text} is not JSON")


def loads(raw: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """json.loads that refuses, with Refused (a ValueError) naming why: invalid JSON or not UTF-8 (400), nesting
    deeper than `max_depth`, an integer beyond 64 bits, NaN or Infinity, a NUL or a lone surrogate in any string
    or key (422). A body that parses under these rules is safe to walk, store and serialise again."""
    try:
        data = json.loads(raw, parse_int=_number, parse_float=_float, parse_constant=_constant)
    except Refused:
        raise
    except RecursionError:
        raise Refused(f"JSON nested deeper than {max_depth} levels") from None
    except UnicodeDecodeError:
        raise Refused("body is not UTF-8", 400) from None
    except ValueError:  # json.JSONDecodeError and friends
        raise Refused("body is not valid JSON", 400) from None
    check_json(data, max_depth=max_depth)
    return data


def check_json(data: Any, *, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refused for a value nested deeper than `max_depth` or holding an unstorable string (iteratively: a deep
    value must not exhaust the stack here either)."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if bad := unstorable(value):
                raise Refused(f"a string in the JSON contains {bad}")
        elif isinstance(value, dict | list):
            if depth >= max_depth:
                raise Refused(f"JSON nested deeper than {max_depth} levels")
            if isinstance(value, dict):
                stack.extend((key, depth + 1) for key in value)
                stack.extend((item, depth + 1) for item in value.values())
            else:
                stack.extend((item, depth + 1) for item in value)
