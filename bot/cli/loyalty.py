"""`sapa loyalty ...`: the loyalty programme (CRM-4.2) from the command line: accounts, adjustments, expiry,
the rewards catalogue and redemptions. Every change is in the ledger (actor "cli") and the audit log."""

from __future__ import annotations

import re
import sys
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from bot.cli.common import settings_and_session

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from bot.config import Settings
    from store.models import Customer, Reward

_CODE = re.compile(r"[A-Z0-9_]{2,40}")


def _session(config: str | None) -> AbstractContextManager[tuple[Settings, Session]]:

    return settings_and_session(config)


def _now() -> datetime:
    return datetime.now(UTC)


def _customer(session: Session, key: str) -> Customer:
    """By id, phone or email (as `sapa customers show`); exactly one, else a clear error and exit 1."""
    from bot.cli.customer_view import find_for_cli

    found = find_for_cli(session, key.lstrip("#"))
    if len(found) != 1:
        click.echo(f"no customer matches {key!r}" if not found
                   else f"{key!r} matches {len(found)} customers; use the id, phone or email", err=True)
        sys.exit(1)
    return found[0]


@click.group()
def loyalty() -> None:
    """The loyalty programme: points, tiers, rewards (CRM-4.2)."""


@loyalty.command("show")
@click.argument("customer")
@click.pass_obj
def show(config: str | None, customer: str) -> None:
    """A customer's balance, tier, next tier, expiring points and last 10 ledger rows."""
    from handlers.loyalty import describe_account

    with _session(config) as (settings, session):
        click.echo(describe_account(session, settings, _customer(session, customer), _now()).replace("*", ""))


# "-50" is a number here, not an option: unknown "options" are taken as the POINTS argument.
@loyalty.command("adjust", context_settings={"ignore_unknown_options": True})
@click.argument("customer")
@click.argument("points")
@click.option("--reason", required=True, help="Why (kept in the ledger and the audit log).")
@click.pass_obj
def adjust(config: str | None, customer: str, points: str, reason: str) -> None:
    """Add (+100) or take (-50) points; taking is limited to the balance."""
    from store import loyalty as ledger
    from store.audit import record

    if not re.fullmatch(r"[+-]?\d{1,9}", points.strip()):
        raise click.BadParameter(f"{points!r} is not a whole number of points such as +100 or -50",
                                 param_hint="POINTS")
    with _session(config) as (settings, session):
        found, now = _customer(session, customer), _now()
        try:
            entry = ledger.adjust(session, settings, found.id, int(points), reason, "cli", now)
        except ledger.LoyaltyError as error:
            raise click.ClickException(f"not adjusted: {error}") from error
        record(session, actor="cli", action="loyalty.adjust", subject_type="customer", subject_id=found.id, now=now,
               detail={"points": int(points), "reason": reason, "balance_after": entry.balance_after})
    click.echo(f"customer #{found.id}: {int(points):+,} points ({reason}); balance now {entry.balance_after:,}")


@loyalty.command("expire")
@click.pass_obj
def expire(config: str | None) -> None:
    """Expire points past their date now (the daily job does the same), and recompute tiers."""
    from store import loyalty as ledger

    with _session(config) as (settings, session):
        now = _now()
        expired = ledger.expire(session, settings, now)
        changed = ledger.refresh_tiers(session, settings, now)
    for customer_id, points in sorted(expired.items()):
        click.echo(f"customer #{customer_id}: {points:,} points expired")
    click.echo(f"{sum(expired.values()):,} points expired for {len(expired)} customers; {changed} tiers changed")


@loyalty.command("redeem")
@click.argument("customer")
@click.argument("code")
@click.pass_obj
def redeem(config: str | None, customer: str, code: str) -> None:
    """Redeem a reward for a customer; prints the voucher code."""
    from store import loyalty as ledger
    from store.audit import record
    from store.models import Reward

    with _session(config) as (settings, session):
        found, now = _customer(session, customer), _now()
        try:
            redemption = ledger.redeem(session, settings, found.id, code, "cli", "cli", now)
        except ledger.LoyaltyError as error:
            raise click.ClickException(f"not redeemed: {error}") from error
        reward = session.get_one(Reward, redemption.reward_id)
        balance = ledger.summary(session, settings, found.id, now).balance
        record(session, actor="cli", action="loyalty.redeem", subject_type="customer", subject_id=found.id, now=now,
               detail={"reward": reward.code, "points": redemption.points, "redemption_id": redemption.id})
        reward_code, voucher, cost = reward.code, redemption.voucher_code, redemption.points
    click.echo(f"customer #{found.id} redeemed {reward_code} for {cost:,} points: voucher {voucher}; "
               f"balance now {balance:,}")


@loyalty.group("rewards")
def rewards() -> None:
    """The rewards catalogue (config rewards are added on first use; existing codes are never overwritten)."""


@rewards.command("list")
@click.pass_obj
def rewards_list(config: str | None) -> None:
    """Every reward with its cost, stock and lowest tier."""
    from handlers.loyalty import describe_rewards

    with _session(config) as (settings, session):
        click.echo(describe_rewards(session, settings, _now()).replace("*", "").replace("`", ""))


def _reward_code(code: str) -> str:
    upper = code.strip().upper()
    if not _CODE.fullmatch(upper):
        raise click.BadParameter(f"{code!r}: use 2 to 40 of A-Z, 0-9 and _", param_hint="CODE")
    return upper


@rewards.command("add")
@click.argument("code")
@click.option("--points", "cost", type=click.IntRange(min=1), required=True, help="Points it costs.")
@click.option("--name-id", required=True, help="Its name in Indonesian.")
@click.option("--name-en", required=True, help="Its name in English.")
@click.option("--stock", type=click.IntRange(min=0), default=None, help="Units available (default: unlimited).")
@click.option("--min-tier", default=None, help="The lowest tier that may redeem it (default: everyone).")
@click.pass_obj
def rewards_add(config: str | None, code: str, cost: int, name_id: str, name_en: str, stock: int | None,
                min_tier: str | None) -> None:
    """Add a reward to the catalogue."""
    from store import loyalty as ledger
    from store.audit import record
    from store.models import Reward

    upper = _reward_code(code)
    with _session(config) as (settings, session):
        tiers = [tier.name for tier in settings.loyalty.tiers]
        if min_tier is not None and min_tier not in tiers:
            raise click.BadParameter(f"{min_tier!r} is not a tier; tiers: {', '.join(tiers)}",
                                     param_hint="--min-tier")
        now = _now()
        ledger.sync_rewards(session, settings, now)  # a config code is the config's: not added twice
        if ledger.find_reward(session, upper) is not None:
            raise click.ClickException(f"reward {upper} already exists; change its stock with "
                                       f"`sapa loyalty rewards stock {upper} N`")
        session.add(Reward(code=upper, names={"id": name_id.strip(), "en": name_en.strip()}, points_cost=cost,
                           stock=stock, min_tier=min_tier, active=True, created_at=now, updated_at=now))
        record(session, actor="cli", action="loyalty.reward_added", subject_type="reward", subject_id=upper, now=now,
               detail={"points": cost, "stock": stock, "min_tier": min_tier})
    click.echo(f"reward {upper} added: {cost:,} points, "
               f"{'unlimited' if stock is None else f'{stock} in stock'}, {min_tier or 'all tiers'}")


def _existing_reward(session: Session, settings: Settings, code: str, now: datetime) -> Reward:
    """The catalogue's reward CODE (config rewards added first), or a clear error."""
    from store import loyalty as ledger

    ledger.sync_rewards(session, settings, now)
    reward = ledger.find_reward(session, code)
    if reward is None:
        raise click.ClickException(f"no reward {code}; see `sapa loyalty rewards list`")
    return reward


@rewards.command("stock")
@click.argument("code")
@click.argument("stock", type=click.IntRange(min=0))
@click.pass_obj
def rewards_stock(config: str | None, code: str, stock: int) -> None:
    """Set the units left of a reward."""
    from store.audit import record

    upper = _reward_code(code)
    with _session(config) as (settings, session):
        now = _now()
        reward = _existing_reward(session, settings, upper, now)
        before, reward.stock, reward.updated_at = reward.stock, stock, now
        record(session, actor="cli", action="loyalty.reward_stock", subject_type="reward", subject_id=upper, now=now,
               detail={"from": before, "to": stock})
    click.echo(f"reward {upper}: stock {'unlimited' if before is None else before} -> {stock}")


@rewards.command("disable")
@click.argument("code")
@click.pass_obj
def rewards_disable(config: str | None, code: str) -> None:
    """Stop offering a reward (vouchers already issued stay valid)."""
    from store.audit import record

    upper = _reward_code(code)
    with _session(config) as (settings, session):
        now = _now()
        reward = _existing_reward(session, settings, upper, now)
        reward.active, reward.updated_at = False, now
        record(session, actor="cli", action="loyalty.reward_disabled", subject_type="reward", subject_id=upper,
               now=now)
    click.echo(f"reward {upper} disabled; it is no longer offered")


COMMANDS: list[click.Command] = [loyalty]
