"""CRM-4.2: the loyalty ledger: points earned from transactions, adjusted, redeemed for rewards and expired.

Invariants, kept by every function here inside the caller's transaction:
- `loyalty_accounts.balance` equals the sum of the customer's ledger rows and equals the sum of `remaining`
  over their positive rows (redemptions, negative adjustments and expiry consume the oldest-expiring rows
  first), so "points expiring soon" can be told exactly.
- The balance never goes negative and a reward's stock never below zero, also with two redemptions at once
  on PostgreSQL: both are decremented by a conditional UPDATE whose row count says whether it happened (the
  row lock it takes serialises every change to one account; the CHECK constraints are only the last line).
- A transaction earns once: the ledger's unique `transaction_id` turns a repeat or a race into None.
"""

from __future__ import annotations

import calendar
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.models import (
    BroadcastRecipient,
    LoyaltyAccount,
    LoyaltyEntry,
    OutboxItem,
    Redemption,
    Reward,
    Transaction,
)

if TYPE_CHECKING:  # store imports no other package at run time; the settings are only read (duck-typed)
    from bot.config import LoyaltyTier, Settings

# Readable voucher codes: no 0/O, 1/I/L that people misread at a till. 12 of 31 symbols: about 59 bits.
VOUCHER_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
VOUCHER_GROUPS = 3
VOUCHER_GROUP_LENGTH = 4

ErrorReason = str  # unknown_reward, inactive, tier_too_low, out_of_stock, insufficient_points, invalid


class LoyaltyError(Exception):
    """A redemption or adjustment that cannot happen, with the facts a clear message needs."""

    def __init__(self, reason: ErrorReason, message: str, *, reward: Reward | None = None, balance: int = 0,
                 cost: int = 0, min_tier: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.reward = reward
        self.balance = balance
        self.cost = cost
        self.min_tier = min_tier


@dataclass(frozen=True)
class Summary:
    """What a customer (or an agent) is told about an account."""

    customer_id: int
    balance: int
    tier: str
    benefits: dict[str, str]
    tier_since: datetime | None
    tier_points: int  # earned within tier_window_days: what the tier is computed from
    lifetime_points: int
    next_tier: str | None
    points_to_next: int | None
    expiring_points: int  # within expiring_notice_days
    expiring_on: datetime | None  # the earliest of those


# --- dates and tiers -------------------------------------------------------------------------------------


def add_months(moment: datetime, months: int) -> datetime:
    """The same day `months` later (the month's last day if it is shorter: 31 Jan + 1 month = 28/29 Feb)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def expires_at(settings: Settings, earned: datetime) -> datetime | None:
    months = settings.loyalty.expiry_months
    return None if months == 0 else add_months(earned, months)


def tier_named(settings: Settings, name: str) -> LoyaltyTier:
    for tier in settings.loyalty.tiers:
        if tier.name == name:
            return tier
    return settings.loyalty.tiers[0]  # a tier removed from the config: treat as the first until recomputed


def tier_rank(settings: Settings, name: str | None) -> int:
    names = [tier.name for tier in settings.loyalty.tiers]
    return names.index(name) if name in names else 0


def tier_for(settings: Settings, points: int) -> LoyaltyTier:
    """The highest tier whose threshold `points` reach (tiers are validated as ordered by min_points)."""
    reached = settings.loyalty.tiers[0]
    for tier in settings.loyalty.tiers:
        if points >= tier.min_points:
            reached = tier
    return reached


def points_for(settings: Settings, amount: int, multiplier: float) -> int:
    """Whole points for `amount` rupiah: amount // rupiah_per_point, times the tier's multiplier, floored.

    Decimal, so 1.1 x 30 is 33 and not 33.000000000000004 (or 28.999... for other pairs) floored wrongly.
    """
    base = amount // settings.loyalty.rupiah_per_point
    return int((Decimal(base) * Decimal(str(multiplier))).to_integral_value(rounding=ROUND_FLOOR))


# --- the account -----------------------------------------------------------------------------------------


def get_account(session: Session, settings: Settings, customer_id: int, now: datetime) -> LoyaltyAccount:
    """The customer's account, created at the first tier on first use (two first uses at once: one row)."""
    found = session.get(LoyaltyAccount, customer_id)
    if found is not None:
        return found
    account = LoyaltyAccount(customer_id=customer_id, balance=0, lifetime_points=0,
                             tier=settings.loyalty.tiers[0].name, tier_since=now, created_at=now, updated_at=now)
    try:
        with session.begin_nested():
            session.add(account)
            session.flush()
    except IntegrityError:
        return session.execute(select(LoyaltyAccount).where(LoyaltyAccount.customer_id == customer_id)
                               .execution_options(populate_existing=True)).scalar_one()
    return account


def _refresh(session: Session, customer_id: int) -> None:
    """Forget the loaded account after a statement-level UPDATE, so attributes are read again."""
    loaded = session.identity_map.get(session.identity_key(LoyaltyAccount, customer_id))
    if loaded is not None:
        session.expire(loaded)


def _change_balance(session: Session, customer_id: int, delta: int, now: datetime, *,
                    earned: int = 0) -> int | None:
    """Add `delta` to the balance in one conditional UPDATE; the new balance, or None if it would go negative.

    The UPDATE takes the account's row lock until commit, so concurrent changes to one account queue here and
    each sees the balance the previous one left (PostgreSQL re-checks the WHERE after the wait).
    """
    statement = update(LoyaltyAccount).where(LoyaltyAccount.customer_id == customer_id)
    if delta < 0:
        statement = statement.where(LoyaltyAccount.balance >= -delta)
    values: dict[str, Any] = {"balance": LoyaltyAccount.balance + delta, "updated_at": now}
    if earned:
        values["lifetime_points"] = LoyaltyAccount.lifetime_points + earned
    new_balance = session.execute(statement.values(**values).returning(LoyaltyAccount.balance),
                                  execution_options={"synchronize_session": False}).scalar_one_or_none()
    _refresh(session, customer_id)
    return None if new_balance is None else int(new_balance)


def _consume(session: Session, customer_id: int, points: int) -> None:
    """Spend `points` from the positive rows that expire first (never-expiring ones last)."""
    rows = session.execute(
        select(LoyaltyEntry).where(LoyaltyEntry.customer_id == customer_id, LoyaltyEntry.points > 0,
                                   LoyaltyEntry.remaining > 0)
        .order_by(LoyaltyEntry.expires_at.is_(None), LoyaltyEntry.expires_at, LoyaltyEntry.id)
        .execution_options(populate_existing=True)).scalars()
    left = points
    for row in rows:
        if left <= 0:
            break
        taken = min(row.remaining, left)
        row.remaining -= taken
        left -= taken


def tier_points(session: Session, settings: Settings, customer_id: int, now: datetime) -> int:
    """Points earned from purchases made within tier_window_days (positive earn rows; adjustments do not count)."""
    since = now - timedelta(days=settings.loyalty.tier_window_days)
    total = session.execute(
        select(func.coalesce(func.sum(LoyaltyEntry.points), 0))
        .join(Transaction, Transaction.id == LoyaltyEntry.transaction_id)
        .where(LoyaltyEntry.customer_id == customer_id, LoyaltyEntry.kind == "earn", LoyaltyEntry.points > 0,
               Transaction.occurred_at > since)).scalar_one()
    return int(total)


def recompute_tier(session: Session, settings: Settings, customer_id: int, now: datetime) -> str:
    """Set the tier from the points in the window; `tier_since` moves only when the tier changes."""
    account = get_account(session, settings, customer_id, now)
    tier = tier_for(settings, tier_points(session, settings, customer_id, now)).name
    if tier != account.tier:
        account.tier, account.tier_since, account.updated_at = tier, now, now
    return tier


# --- earning and adjusting ---------------------------------------------------------------------------------


def earn(session: Session, settings: Settings, customer_id: int, transaction: Transaction,
         now: datetime) -> LoyaltyEntry | None:
    """Points for one transaction, once: None if it earned before (or a concurrent call is earning it now),
    if the programme is off, or if the amount is below one point."""
    if not settings.loyalty.enabled:
        return None
    if session.execute(select(LoyaltyEntry.id).where(LoyaltyEntry.transaction_id == transaction.id)).first():
        return None
    account = get_account(session, settings, customer_id, now)
    points = points_for(settings, transaction.amount, tier_named(settings, account.tier).earn_multiplier)
    if points <= 0:
        return None
    try:
        with session.begin_nested():
            balance = _change_balance(session, customer_id, points, now, earned=points)
            assert balance is not None, "adding points cannot be refused"
            entry = LoyaltyEntry(
                customer_id=customer_id, kind="earn", points=points, balance_after=balance, remaining=points,
                expires_at=expires_at(settings, transaction.occurred_at), transaction_id=transaction.id,
                reason=f"transaction {transaction.external_id}"[:300], actor="system", created_at=now)
            session.add(entry)
            session.flush()
    except IntegrityError:  # the same transaction earned at the same moment elsewhere: the savepoint undid ours
        _refresh(session, customer_id)
        return None
    recompute_tier(session, settings, customer_id, now)
    return entry


def adjust(session: Session, settings: Settings, customer_id: int, points: int, reason: str, actor: str,
           now: datetime) -> LoyaltyEntry:
    """A manual correction with its reason and actor. Adding points: they expire like earned ones. Taking
    points: at most the balance (LoyaltyError `insufficient_points`), spent from the oldest rows first."""
    if points == 0:
        raise LoyaltyError("invalid", "an adjustment needs a number of points other than 0, e.g. +100 or -50")
    if not reason.strip():
        raise LoyaltyError("invalid", "an adjustment needs a reason")
    get_account(session, settings, customer_id, now)
    with session.begin_nested():
        balance = _change_balance(session, customer_id, points, now)
        if balance is None:
            current = session.get_one(LoyaltyAccount, customer_id).balance
            raise LoyaltyError("insufficient_points", f"cannot take {-points} points: the balance is {current}",
                               balance=current, cost=-points)
        if points < 0:
            _consume(session, customer_id, -points)
        entry = LoyaltyEntry(
            customer_id=customer_id, kind="adjust", points=points, balance_after=balance,
            remaining=max(points, 0), expires_at=expires_at(settings, now) if points > 0 else None,
            reason=reason.strip()[:300], actor=actor[:80], created_at=now)
        session.add(entry)
        session.flush()
    return entry


# --- rewards -----------------------------------------------------------------------------------------------


def sync_rewards(session: Session, settings: Settings, now: datetime) -> int:
    """Add the config's rewards whose code is not in the catalogue yet; existing ones (and their stock, which
    redemptions and `sapa loyalty rewards stock` change) are left alone. Returns how many were added."""
    known = set(session.execute(select(Reward.code)).scalars())
    added = 0
    for item in settings.loyalty.rewards:
        if item.code in known:
            continue
        try:
            with session.begin_nested():
                session.add(Reward(code=item.code, names=dict(item.names), points_cost=item.points, stock=item.stock,
                                   min_tier=item.min_tier, active=True, created_at=now, updated_at=now))
                session.flush()
            added += 1
        except IntegrityError:  # another process added it at the same moment
            continue
    return added


def find_reward(session: Session, code: str) -> Reward | None:
    return session.execute(select(Reward).where(Reward.code == code.strip().upper())).scalar_one_or_none()


def catalogue(session: Session) -> list[Reward]:
    """Every reward, active first, cheapest first."""
    return list(session.execute(select(Reward).order_by(Reward.active.desc(), Reward.points_cost, Reward.code))
                .scalars())


def rewards_for(session: Session, settings: Settings, customer_id: int, now: datetime) -> list[Reward]:
    """Active, in-stock rewards the customer's tier allows, cheapest first (affordability is not checked)."""
    sync_rewards(session, settings, now)
    account = session.get(LoyaltyAccount, customer_id)
    rank = tier_rank(settings, account.tier if account else None)
    return [reward for reward in catalogue(session)
            if reward.active and (reward.stock is None or reward.stock > 0)
            and tier_rank(settings, reward.min_tier) <= rank]


def reward_name(reward: Reward, language: str, default_language: str) -> str:
    names = reward.names or {}
    return str(names.get(language) or names.get(default_language) or next(iter(names.values()), reward.code))


# --- redeeming -----------------------------------------------------------------------------------------------


def new_voucher_code(seed: bytes | None = None) -> str:
    """XXXX-XXXX-XXXX from VOUCHER_ALPHABET: random (secrets), or derived from a secret `seed` (a request key)."""
    if seed is None:
        symbols = [secrets.choice(VOUCHER_ALPHABET) for _ in range(VOUCHER_GROUPS * VOUCHER_GROUP_LENGTH)]
    else:
        digest = hashlib.sha256(b"sapa-loyalty-voucher:" + seed).digest()
        symbols = [VOUCHER_ALPHABET[byte % len(VOUCHER_ALPHABET)] for byte in digest[:VOUCHER_GROUPS *
                                                                                     VOUCHER_GROUP_LENGTH]]
    text = "".join(symbols)
    return "-".join(text[i:i + VOUCHER_GROUP_LENGTH] for i in range(0, len(text), VOUCHER_GROUP_LENGTH))


def redemption_for_request(session: Session, customer_id: int, request_key: str) -> Redemption | None:
    """The redemption a request key (the chat's confirmation) already produced, if any."""
    found = session.execute(select(Redemption).where(
        Redemption.voucher_code == new_voucher_code(request_key.encode()))).scalar_one_or_none()
    return found if found is not None and found.customer_id == customer_id else None


def attributed_broadcast(session: Session, settings: Settings, customer_id: int, now: datetime) -> int | None:
    """CRM-4.4: the latest broadcast whose message reached this customer within attribution_days before now."""
    since = now - timedelta(days=settings.loyalty.attribution_days)
    found = session.execute(
        select(BroadcastRecipient.broadcast_id).join(OutboxItem, OutboxItem.id == BroadcastRecipient.outbox_id)
        .where(BroadcastRecipient.customer_id == customer_id, OutboxItem.status == "sent",
               OutboxItem.sent_at >= since, OutboxItem.sent_at <= now)
        .order_by(OutboxItem.sent_at.desc(), BroadcastRecipient.id.desc()).limit(1)).scalar_one_or_none()
    return None if found is None else int(found)


def check_redeemable(session: Session, settings: Settings, customer_id: int, reward_code: str,
                     now: datetime) -> Reward:
    """The reward if this customer may redeem it now, else LoyaltyError naming why (for a clear message).

    A read-only pre-check: `redeem` decides again atomically.
    """
    reward = find_reward(session, reward_code)
    if reward is None:
        sync_rewards(session, settings, now)
        reward = find_reward(session, reward_code)
    if reward is None:
        raise LoyaltyError("unknown_reward", f"no reward {reward_code.strip().upper()!r} in the catalogue")
    if not reward.active:
        raise LoyaltyError("inactive", f"reward {reward.code} is not offered any more", reward=reward)
    account = get_account(session, settings, customer_id, now)
    if tier_rank(settings, reward.min_tier) > tier_rank(settings, account.tier):
        raise LoyaltyError("tier_too_low", f"reward {reward.code} needs tier {reward.min_tier} (customer is "
                           f"{account.tier})", reward=reward, min_tier=reward.min_tier, balance=account.balance)
    if reward.stock is not None and reward.stock <= 0:
        raise LoyaltyError("out_of_stock", f"reward {reward.code} is out of stock", reward=reward)
    if account.balance < reward.points_cost:
        raise LoyaltyError("insufficient_points", f"reward {reward.code} costs {reward.points_cost} points; the "
                           f"balance is {account.balance}", reward=reward, balance=account.balance,
                           cost=reward.points_cost)
    return reward


def redeem(session: Session, settings: Settings, customer_id: int, reward_code: str, channel: str, actor: str,
           now: datetime, *, request_key: str | None = None) -> Redemption:
    """Exchange points for a reward: a Redemption with its voucher code, or LoyaltyError (unknown_reward,
    inactive, tier_too_low, out_of_stock, insufficient_points). Nothing changes on an error.

    With `request_key` (a secret the chat's confirmation carries) the voucher code is derived from it, so the
    same request redeems at most once: a repeat returns the first redemption.
    """
    if request_key is not None:
        earlier = redemption_for_request(session, customer_id, request_key)
        if earlier is not None:
            return earlier
    reward = check_redeemable(session, settings, customer_id, reward_code, now)
    cost = reward.points_cost
    voucher = new_voucher_code(request_key.encode() if request_key is not None else None)
    try:
        with session.begin_nested():  # an error below undoes the balance and stock changes already made
            balance = _change_balance(session, customer_id, -cost, now)  # account row lock first, always
            if balance is None:
                current = session.get_one(LoyaltyAccount, customer_id).balance
                raise LoyaltyError("insufficient_points", f"reward {reward.code} costs {cost} points; the balance "
                                   f"is {current}", reward=reward, balance=current, cost=cost)
            taken = session.execute(
                update(Reward).where(Reward.id == reward.id, Reward.active.is_(True),
                                     (Reward.stock.is_(None)) | (Reward.stock > 0))
                .values(stock=Reward.stock - 1, updated_at=now),
                execution_options={"synchronize_session": False})
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                raise LoyaltyError("out_of_stock", f"reward {reward.code} is out of stock", reward=reward)
            redemption = Redemption(
                customer_id=customer_id, reward_id=reward.id, points=cost, voucher_code=voucher, status="issued",
                channel=channel[:32], actor=actor[:80],
                broadcast_id=attributed_broadcast(session, settings, customer_id, now), created_at=now)
            session.add(redemption)
            session.flush()
            _consume(session, customer_id, cost)
            session.add(LoyaltyEntry(
                customer_id=customer_id, kind="redeem", points=-cost, balance_after=balance, remaining=0,
                redemption_id=redemption.id, reason=f"reward {reward.code}", actor=actor[:80], created_at=now))
            session.flush()
    except IntegrityError:
        # The voucher code is taken: the same request key redeemed at the same moment elsewhere (a random
        # code colliding is a 1 in 2^59 event). Ours was undone with the savepoint.
        _refresh(session, customer_id)
        session.expire(reward)
        if request_key is not None:
            earlier = redemption_for_request(session, customer_id, request_key)
            if earlier is not None:
                return earlier
        raise
    session.expire(reward)  # its stock changed underneath the loaded object
    return redemption


# --- expiry ----------------------------------------------------------------------------------------------------


def expire(session: Session, settings: Settings, now: datetime) -> dict[int, int]:
    """Expire every positive row with points left whose expires_at has come: one `expire` ledger row per
    customer, the balance lowered (never below zero), the tier recomputed. Returns {customer_id: points}."""
    customers = list(session.execute(
        select(LoyaltyEntry.customer_id).where(LoyaltyEntry.points > 0, LoyaltyEntry.remaining > 0,
                                               LoyaltyEntry.expires_at <= now)
        .distinct().order_by(LoyaltyEntry.customer_id)).scalars())
    expired: dict[int, int] = {}
    for customer_id in customers:
        # The account's row lock first, like every other change, so a redemption cannot spend these meanwhile.
        account = session.execute(select(LoyaltyAccount).where(LoyaltyAccount.customer_id == customer_id)
                                  .with_for_update().execution_options(populate_existing=True)).scalar_one()
        rows = list(session.execute(
            select(LoyaltyEntry).where(LoyaltyEntry.customer_id == customer_id, LoyaltyEntry.points > 0,
                                       LoyaltyEntry.remaining > 0, LoyaltyEntry.expires_at <= now)
            .order_by(LoyaltyEntry.expires_at, LoyaltyEntry.id).execution_options(populate_existing=True)).scalars())
        points = min(sum(row.remaining for row in rows), account.balance)
        for row in rows:
            row.remaining = 0
        if points <= 0:
            continue
        balance = _change_balance(session, customer_id, -points, now)
        assert balance is not None, "never more than the balance"
        first = min(row.expires_at for row in rows if row.expires_at is not None)
        session.add(LoyaltyEntry(
            customer_id=customer_id, kind="expire", points=-points, balance_after=balance, remaining=0,
            reason=f"points earned up to {first.date().isoformat()} expired", actor="system", created_at=now))
        session.flush()
        recompute_tier(session, settings, customer_id, now)
        expired[customer_id] = points
    return expired


def refresh_tiers(session: Session, settings: Settings, now: datetime) -> int:
    """Recompute every account's tier from its points in the window (the window slides daily); how many changed."""
    since = now - timedelta(days=settings.loyalty.tier_window_days)
    in_window: dict[int, int] = {int(customer_id): int(total) for customer_id, total in session.execute(
        select(LoyaltyEntry.customer_id, func.coalesce(func.sum(LoyaltyEntry.points), 0))
        .join(Transaction, Transaction.id == LoyaltyEntry.transaction_id)
        .where(LoyaltyEntry.kind == "earn", LoyaltyEntry.points > 0, Transaction.occurred_at > since)
        .group_by(LoyaltyEntry.customer_id))}
    changed = 0
    for account in session.execute(select(LoyaltyAccount).order_by(LoyaltyAccount.customer_id)).scalars():
        tier = tier_for(settings, int(in_window.get(account.customer_id, 0))).name
        if tier != account.tier:
            account.tier, account.tier_since, account.updated_at = tier, now, now
            changed += 1
    return changed


# --- reading ----------------------------------------------------------------------------------------------------


def summary(session: Session, settings: Settings, customer_id: int, now: datetime) -> Summary:
    """Balance, tier and benefits, points to the next tier, points expiring within expiring_notice_days.

    Read-only: a customer without an account is shown the first tier and 0 points (nothing is created).
    """
    account = session.get(LoyaltyAccount, customer_id)
    earned = tier_points(session, settings, customer_id, now)
    tier = tier_named(settings, account.tier) if account else settings.loyalty.tiers[0]
    tiers = settings.loyalty.tiers
    index = [t.name for t in tiers].index(tier.name) if tier in tiers else 0
    following = tiers[index + 1] if index + 1 < len(tiers) else None
    horizon = now + timedelta(days=settings.loyalty.expiring_notice_days)
    expiring, first = session.execute(
        select(func.coalesce(func.sum(LoyaltyEntry.remaining), 0), func.min(LoyaltyEntry.expires_at))
        .where(LoyaltyEntry.customer_id == customer_id, LoyaltyEntry.points > 0, LoyaltyEntry.remaining > 0,
               LoyaltyEntry.expires_at > now, LoyaltyEntry.expires_at <= horizon)).one()
    return Summary(
        customer_id=customer_id, balance=account.balance if account else 0, tier=tier.name,
        benefits=dict(tier.benefits), tier_since=account.tier_since if account else None, tier_points=earned,
        lifetime_points=account.lifetime_points if account else 0,
        next_tier=following.name if following else None,
        points_to_next=max(following.min_points - earned, 0) if following else None,
        expiring_points=int(expiring), expiring_on=first if int(expiring) else None)


def ledger(session: Session, customer_id: int, limit: int = 10) -> list[LoyaltyEntry]:
    """The customer's latest ledger rows, newest first."""
    return list(session.execute(select(LoyaltyEntry).where(LoyaltyEntry.customer_id == customer_id)
                                .order_by(LoyaltyEntry.id.desc()).limit(limit)).scalars())


def ledger_total(session: Session, customer_id: int) -> int:
    """The sum of the customer's ledger rows: always equal to the account's balance."""
    return int(session.execute(select(func.coalesce(func.sum(LoyaltyEntry.points), 0))
                               .where(LoyaltyEntry.customer_id == customer_id)).scalar_one())
