"""Many customers quickly, for broadcast tests and benchmarks (CRM-4.3): bulk inserts, no per-row ORM objects.

`populate(database, 100_000, now=...)` makes a mixed population in about ten seconds on SQLite: each customer has
a phone and one channel identity (WhatsApp, SMS, Telegram in turn), a marketing consent (granted; every
`opted_out_every`-th later withdrew it with STOP; every `no_consent_every`-th never gave one), and on WhatsApp
every second one wrote within 24 hours (window open) while the others did not (the approved template is needed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert

from store import Database
from store.models import ChannelIdentity, Consent, Customer

CHUNK = 5000
CHANNELS = ("whatsapp", "sms", "telegram")


@dataclass
class Population:
    customer_ids: list[int] = field(default_factory=list)
    by_channel: dict[str, list[int]] = field(default_factory=dict)
    opted_out: set[int] = field(default_factory=set)
    no_consent: set[int] = field(default_factory=set)
    window_closed: set[int] = field(default_factory=set)  # WhatsApp customers who did not write within 24 h
    addresses: dict[int, tuple[str, str]] = field(default_factory=dict)  # customer -> (channel, address)
    index_of: dict[int, int] = field(default_factory=dict)  # customer -> i of "Pelanggan i"
    english: set[int] = field(default_factory=set)  # profile language "en"

    def merge(self, other: Population) -> None:
        """Add another call's customers (numbered apart with `start`)."""
        self.customer_ids.extend(other.customer_ids)
        for channel, ids in other.by_channel.items():
            self.by_channel.setdefault(channel, []).extend(ids)
        for mine, theirs in ((self.opted_out, other.opted_out), (self.no_consent, other.no_consent),
                             (self.window_closed, other.window_closed), (self.english, other.english)):
            mine |= theirs
        self.addresses.update(other.addresses)
        self.index_of.update(other.index_of)

    @property
    def eligible(self) -> list[int]:
        return [c for c in self.customer_ids if c not in self.opted_out and c not in self.no_consent]


def phone_of(index: int) -> str:
    return f"+62811{index:08d}"


def populate(database: Database, count: int, *, now: datetime, start: int = 0,
             channels: tuple[str, ...] = CHANNELS, opted_out_every: int = 10, no_consent_every: int = 25,
             language: str | None = None, timezone: str | None = None) -> Population:
    """`count` customers numbered from `start` (so several calls do not collide)."""
    population = Population(by_channel={c: [] for c in channels})
    for first in range(start, start + count, CHUNK):
        indexes = list(range(first, min(first + CHUNK, start + count)))
        with database.unit_of_work() as session:
            ids = list(session.execute(
                insert(Customer).returning(Customer.id, sort_by_parameter_order=True),
                [{"name": f"Pelanggan {i}", "phone": phone_of(i), "language": language, "is_vip": False,
                  "timezone": timezone, "source": "import", "created_at": now, "updated_at": now}
                 for i in indexes]).scalars())
            identities: list[dict[str, Any]] = []
            consents: list[dict[str, Any]] = []
            for i, customer_id in zip(indexes, ids, strict=True):
                channel = channels[i % len(channels)]
                address = str(700_000_000 + i) if channel == "telegram" else phone_of(i)
                closed = channel == "whatsapp" and (i // len(channels)) % 2 == 1
                inbound = now - timedelta(days=3) if closed else now - timedelta(hours=1)
                identities.append({"customer_id": customer_id, "channel": channel, "address": address,
                                   "created_at": now - timedelta(days=30), "last_inbound_at": inbound})
                population.by_channel[channel].append(customer_id)
                population.addresses[customer_id] = (channel, address)
                population.index_of[customer_id] = i
                if language == "en":
                    population.english.add(customer_id)
                if closed:
                    population.window_closed.add(customer_id)
                if i % no_consent_every == no_consent_every - 1:
                    population.no_consent.add(customer_id)
                    continue
                consents.append({"customer_id": customer_id, "purpose": "marketing", "granted": True,
                                 "channel": channel, "evidence": "ya", "recorded_at": now - timedelta(days=20)})
                if i % opted_out_every == opted_out_every - 1:
                    population.opted_out.add(customer_id)
                    consents.append({"customer_id": customer_id, "purpose": "marketing", "granted": False,
                                     "channel": channel, "evidence": "STOP", "recorded_at": now - timedelta(days=2)})
            session.execute(insert(ChannelIdentity), identities)
            session.execute(insert(Consent), consents)
            population.customer_ids.extend(ids)
    return population


# --- settings for broadcast tests ------------------------------------------------------------------------------

BROADCAST_TEMPLATE = "HX" + "b" * 32
MARKETING_AGENT = {"slack_user_id": "U0MKT", "name": "Maya", "role": "marketing"}


def broadcast_settings(db_url: str, fakes: Any, *, api_token: str | None = None, **broadcasts: Any) -> Any:
    """config.yml on the fake providers, with the Slack desk (plus a marketing agent), the approved WhatsApp
    `broadcast` template (id and en: name, text) and `broadcasts:` overrides."""
    from pathlib import Path

    import yaml

    from bot.config import settings_from_mapping
    from tests.support.providers import REPLY_TEMPLATE, channel_config
    from tests.support.slack import AGENTS, SECRETS

    raw = yaml.safe_load((Path(__file__).resolve().parents[2] / "config.yml").read_text())
    raw["server"]["public_base_url"] = "https://sapa.example.test"
    raw["channels"].update(channel_config(fakes))
    raw["channels"]["whatsapp"]["templates"] = {
        "reply": {"id": {"content_sid": REPLY_TEMPLATE, "variables": ["name"]}},
        "broadcast": {lang: {"content_sid": BROADCAST_TEMPLATE, "variables": ["name", "text"]}
                      for lang in ("id", "en")},
    }
    raw["slack"] = {"enabled": True, "api_base_url": fakes.slack_base_url, "queue_channel": "C0QUEUE",
                    "vip_channel": "C0VIP", "escalation_channel": "C0ESC", "agents": [*AGENTS, MARKETING_AGENT]}
    raw["broadcasts"] = {**raw["broadcasts"], **broadcasts}
    raw["database"]["url"] = db_url
    environ = {**SECRETS, **({"SAPA_API_TOKEN": api_token} if api_token else {})}
    return settings_from_mapping(raw, environ, "test")


def api_sapa(db_url: str, fakes: Any, clock: Any, interpreter: Any, database: Any, api_token: str) -> Any:
    """The body of a module's `sapa` fixture for the HTTP API tests: `yield from api_sapa(...)` — every channel
    on the fakes, the Slack desk and the bearer token."""
    from bot.app import build

    sapa = build(broadcast_settings(db_url, fakes, api_token=api_token), clock=clock, interpreter=interpreter,
                 database=database, model_cache=None)
    yield sapa
    sapa.stop_background()

