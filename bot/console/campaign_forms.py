"""What the campaign pages share: the segment filters as form fields (one field per key store/segments.py knows),
read back from a query string or a posted form, and the choices each field offers.

A form is read into the same filters dict the Slack command and the HTTP API build, and checked by the same
`segments.validate`, so the console refuses exactly what they refuse, with the same words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from bot.config import Settings
from store import segments
from store.scores import SEGMENTS


class MultiDict(Protocol):
    """A query string or a form: each name may come several times (checkboxes)."""

    def getlist(self, key: str) -> list[Any]: ...


# The form's name for each key, in the order the form shows them. `tier` is a shorthand of loyalty_tier + vip, so
# the form offers those two instead.
LIST_FIELDS = ("loyalty_tier", "segment", "channel", "language")
NUMBER_FIELDS = ("min_points", "max_points", "last_purchase_within_days", "last_purchase_before_days")


@dataclass(frozen=True)
class Choices:
    """What the filter form offers: loyalty tiers and languages from the settings, RFM segments, channels."""

    loyalty_tier: tuple[str, ...]
    segment: tuple[str, ...]
    channel: tuple[str, ...]
    language: tuple[str, ...]


def choices(settings: Settings) -> Choices:
    vocab = segments.vocabulary(settings)
    return Choices(loyalty_tier=vocab.loyalty_tiers, segment=tuple(SEGMENTS), channel=vocab.channels,
                   language=vocab.languages)


def _first(data: MultiDict, key: str) -> str:
    values = data.getlist(key)
    return str(values[-1]).strip() if values else ""


def filters_from(data: MultiDict) -> dict[str, Any]:
    """The filters a form asked for (empty fields left out), not yet validated: `segments.validate` says what
    is wrong, naming the key."""
    filters: dict[str, Any] = {}
    for key in LIST_FIELDS:
        values = [str(v).strip() for v in data.getlist(key) if str(v).strip()]
        if values:
            filters[key] = values
    vip_tier = _first(data, "vip_tier")
    if vip_tier:
        filters["vip_tier"] = vip_tier
    for key in NUMBER_FIELDS:
        raw = _first(data, key)
        if raw:
            filters[key] = raw
    vip = _first(data, "vip")
    if vip in ("true", "false"):
        filters["vip"] = vip
    elif vip:
        filters["vip"] = vip  # anything else: validate names the key and what it takes
    consent = _first(data, "consent")
    if consent and consent != "any":
        filters["consent"] = consent
    return filters


def form_values(filters: Mapping[str, Any]) -> dict[str, Any]:
    """Filters (saved or typed) as the form shows them again: lists for checkboxes, strings for the rest."""
    values: dict[str, Any] = {key: [] for key in LIST_FIELDS}
    for key, value in filters.items():
        if key in LIST_FIELDS:
            values[key] = [str(v) for v in value] if isinstance(value, list | tuple) else \
                [v.strip() for v in str(value).split(",") if v.strip()]
        elif key == "vip_tier":
            values[key] = ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
        elif key == "vip":
            values[key] = "true" if value in (True, "true") else "false" if value in (False, "false") else str(value)
        else:
            values[key] = str(value)
    return values


def describe(filters: Mapping[str, Any]) -> str:
    """The filters in one line, as the Slack command shows them ("everyone" when none)."""
    return segments.describe_filters(filters)


def preference_order(data: MultiDict, count: int) -> list[str]:
    """Channels in preference order from the selects channel_1..channel_N (blanks and repeats left out)."""
    order: list[str] = []
    for position in range(1, count + 1):
        value = _first(data, f"channel_{position}")
        if value and value not in order:
            order.append(value)
    return order


def hidden_pairs(filters: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Validated filters as (field, value) pairs for hidden inputs: what a save form sends is what was previewed."""
    pairs: list[tuple[str, str]] = []
    for key, value in form_values(filters).items():
        if isinstance(value, list):
            pairs += [(key, item) for item in value]
        elif value != "":
            pairs.append((key, value))
    return pairs
