"""CRM-4.2: the loyalty programme in chat and in Slack, and its daily expiry job (the ledger: store/loyalty.py).

Chat: `loyalty_points` answers with the balance, tier and benefits, points to the next tier and points
expiring soon, with a "Tukar poin" button. Wanting to redeem ("tukar poin", "redeem", a press of that button)
shows the rewards the customer can afford as buttons (numbered options on SMS/WhatsApp, or the reward's name
in words: pending question `loyalty_reward`), then asks for confirmation with the cost and the balance left
(pending `loyalty_confirm`, Ya/Batal). The confirmation carries a secret request key the voucher code is
derived from, so pressing "Ya" twice redeems once and the second press is told the same voucher.

Slack (`/sapa`): `points CUSTOMER`, `points adjust CUSTOMER +100|-50 REASON`, `redeem CUSTOMER CODE`, `rewards`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from bot.config import Settings
from bot.limits import is_ascii_number
from bot.messages import Button
from handlers import fallback
from handlers.customer_lookup import find_customers_by_key
from handlers.turn import Reply, Route, Turn
from scheduler.clock import PeriodicTask
from store import loyalty
from store.audit import record
from store.loyalty import LoyaltyError
from store.models import Agent, Customer, Reward, Task

EXPIRE = "loyalty.expire"
PAYLOAD = "loyalty:"
REWARDS_PAYLOAD = "loyalty:rewards"
REDEEM_PAYLOAD = "loyalty:redeem:"
YES_PAYLOAD = "loyalty:yes:"
NO_PAYLOAD = "loyalty:no"
CHOOSE = "loyalty_reward"
CONFIRM = "loyalty_confirm"
MAX_OPTIONS = 10  # buttons shown at once (numbered options on SMS/WhatsApp stay readable)
# "cek poin" asks for the balance; these ask to spend it.
_REDEEM = re.compile(
    r"\b(tukar\w*|tuker\w*|ditukar\w*|dituker\w*|menukar\w*|nuker\w*|redeem\w*|diredeem|pakai poin|pake poin|"
    r"pakai point|use my points?|spend my points?|exchange my points?)\b", re.IGNORECASE)
_YES = {"ya", "iya", "y", "yes", "ok", "oke", "okay", "jadi", "lanjut", "setuju", "boleh", "yup", "sure"}
_NO = {"batal", "tidak", "gak", "ga", "nggak", "engga", "enggak", "no", "cancel", "jangan", "gajadi", "nope"}
_MONTHS_ID = ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September", "Oktober",
              "November", "Desember")
# Words too common in reward names to pick one by ("Rp", "poin", "1x", "gratis" alone still counts).
_NAME_NOISE = {"rp", "poin", "points", "point", "yang", "the", "mau", "saya", "aku", "dong", "one", "1x"}

ADJUST_ROLES = ("supervisor", "management", "marketing")
REDEEM_ROLES = ("customer_service", "account_manager", "supervisor", "management")


# --- wording -------------------------------------------------------------------------------------------------


def number(value: int, language: str) -> str:
    """1.500 in Indonesian, 1,500 in English."""
    grouped = f"{value:,}"
    return grouped.replace(",", ".") if language == "id" else grouped


def day(settings: Settings, moment: datetime, language: str) -> str:
    """4 Februari 2027 / 4 February 2027, in the company's time zone."""
    local = moment.astimezone(settings.tz)
    month = _MONTHS_ID[local.month - 1] if language == "id" else local.strftime("%B")
    return f"{local.day} {month} {local.year}"


def tier_label(name: str) -> str:
    return name.replace("_", " ").title()


def _name(turn: Turn, reward: Reward) -> str:
    return loyalty.reward_name(reward, turn.language, turn.settings.default_language)


# --- chat ---------------------------------------------------------------------------------------------------


def points(turn: Turn) -> list[Reply] | None:
    """`loyalty_points`: the balance answer, or the rewards when the customer says they want to redeem."""
    if not turn.settings.loyalty.enabled:
        return fallback.needs_agent(turn)
    if _REDEEM.search(turn.message.text):
        return show_rewards(turn)
    settings, language, now = turn.settings, turn.language, turn.clock.now()
    summary = loyalty.summary(turn.session, settings, turn.customer.id, now)
    tier = loyalty.tier_named(settings, summary.tier)
    benefits = tier.benefits.get(language) or tier.benefits.get(settings.default_language) or ""
    offered = loyalty.rewards_for(turn.session, settings, turn.customer.id, now)
    # The button only when it leads somewhere: with too few points, "tukar poin" in words still explains why.
    affordable = any(reward.points_cost <= summary.balance for reward in offered)
    buttons = (turn.button("loyalty_button_redeem", REWARDS_PAYLOAD),) if affordable else ()
    return [turn.reply(
        "loyalty_balance", buttons=buttons, name=turn.customer.name or "", balance=number(summary.balance, language),
        tier=tier_label(summary.tier), benefits=benefits,
        next_tier=tier_label(summary.next_tier) if summary.next_tier else "",
        to_next=number(summary.points_to_next or 0, language),
        expiring=number(summary.expiring_points, language) if summary.expiring_points else "",
        expiring_on=day(settings, summary.expiring_on, language) if summary.expiring_on else "")]


def show_rewards(turn: Turn) -> list[Reply]:
    """The rewards the customer can afford, as buttons; or why there are none."""
    settings, language, now = turn.settings, turn.language, turn.clock.now()
    turn.clear_question()
    balance = loyalty.summary(turn.session, settings, turn.customer.id, now).balance
    offered = loyalty.rewards_for(turn.session, settings, turn.customer.id, now)
    if not offered:
        return [turn.reply("loyalty_no_rewards")]
    affordable = [reward for reward in offered if reward.points_cost <= balance][:MAX_OPTIONS]
    if not affordable:
        cheapest = offered[0]
        return [turn.reply("loyalty_rewards_none", balance=number(balance, language), reward=_name(turn, cheapest),
                           cost=number(cheapest.points_cost, language),
                           short=number(cheapest.points_cost - balance, language))]
    turn.ask(CHOOSE, {"codes": [reward.code for reward in affordable]})
    buttons = tuple(Button(turn.text("loyalty_reward_option", reward=_name(turn, reward),
                                     cost=number(reward.points_cost, language)), f"{REDEEM_PAYLOAD}{reward.code}")
                    for reward in affordable)
    return [turn.reply("loyalty_rewards", buttons=buttons, balance=number(balance, language))]


def _refused(turn: Turn, error: LoyaltyError) -> Reply:
    language = turn.language
    reward = _name(turn, error.reward) if error.reward is not None else ""
    if error.reason == "insufficient_points":
        return turn.reply("loyalty_not_enough", reward=reward, cost=number(error.cost, language),
                          balance=number(error.balance, language),
                          short=number(max(error.cost - error.balance, 0), language))
    if error.reason == "out_of_stock":
        return turn.reply("loyalty_out_of_stock", reward=reward)
    if error.reason == "tier_too_low":
        return turn.reply("loyalty_tier_too_low", reward=reward, tier=tier_label(error.min_tier or ""))
    return turn.reply("loyalty_reward_unavailable")


def confirm_step(turn: Turn, code: str) -> list[Reply]:
    """The chosen reward: checked, then "redeem N points for X? M left" with Ya/Batal."""
    settings, language, now = turn.settings, turn.language, turn.clock.now()
    turn.clear_question()
    try:
        reward = loyalty.check_redeemable(turn.session, settings, turn.customer.id, code, now)
    except LoyaltyError as error:
        return [_refused(turn, error)]
    balance = loyalty.summary(turn.session, settings, turn.customer.id, now).balance
    key = secrets.token_hex(12)  # the request key: the voucher code is derived from it (redeemed at most once)
    turn.ask(CONFIRM, {"code": reward.code, "key": key})
    return [turn.reply("loyalty_confirm", buttons=(turn.button("button_yes", f"{YES_PAYLOAD}{key}"),
                                                   turn.button("loyalty_button_cancel", NO_PAYLOAD)),
                       cost=number(reward.points_cost, language), reward=_name(turn, reward),
                       remaining=number(balance - reward.points_cost, language))]


def confirmed(turn: Turn, key: str) -> list[Reply]:
    """"Ya": redeem the reward the pending confirmation names, once per request key."""
    settings, language, now = turn.settings, turn.language, turn.clock.now()
    data = turn.conversation.pending_data or {}
    if turn.conversation.pending_question != CONFIRM or data.get("key") != key:
        # A second press of the same "Ya" (the question is gone), or an old confirmation.
        earlier = loyalty.redemption_for_request(turn.session, turn.customer.id, key)
        if earlier is not None:
            return [turn.reply("loyalty_already_redeemed", voucher=earlier.voucher_code)]
        return [turn.reply("loyalty_confirm_stale")]
    turn.clear_question()
    try:
        redemption = loyalty.redeem(turn.session, settings, turn.customer.id, str(data.get("code", "")),
                                    turn.message.channel, "customer", now, request_key=key)
    except LoyaltyError as error:
        return [_refused(turn, error)]
    reward = turn.session.get_one(Reward, redemption.reward_id)
    balance = loyalty.summary(turn.session, settings, turn.customer.id, now).balance
    return [turn.reply("loyalty_redeemed", name=turn.customer.name or "", reward=_name(turn, reward),
                       voucher=redemption.voucher_code, balance=number(balance, language))]


def cancelled(turn: Turn) -> list[Reply]:
    turn.clear_question()
    balance = loyalty.summary(turn.session, turn.settings, turn.customer.id, turn.clock.now()).balance
    return [turn.reply("loyalty_cancelled", balance=number(balance, turn.language))]


def pressed(turn: Turn) -> list[Reply] | None:
    """A loyalty button (or its number on SMS/WhatsApp)."""
    if not turn.settings.loyalty.enabled:
        turn.clear_question()
        return fallback.needs_agent(turn)
    payload = turn.message.button_payload or ""
    if payload == REWARDS_PAYLOAD:
        return show_rewards(turn)
    if payload.startswith(REDEEM_PAYLOAD) and len(payload) > len(REDEEM_PAYLOAD):
        return confirm_step(turn, payload[len(REDEEM_PAYLOAD):])
    if payload.startswith(YES_PAYLOAD) and len(payload) > len(YES_PAYLOAD):
        return confirmed(turn, payload[len(YES_PAYLOAD):])
    if payload == NO_PAYLOAD:
        return cancelled(turn)
    return None


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def chosen_in_words(turn: Turn) -> list[Reply] | None:
    """An answer to "choose a reward" typed: its number, its code or words of its name."""
    codes = [str(code) for code in (turn.conversation.pending_data or {}).get("codes", [])]
    said = _words(turn.message.text)
    if said and said[0] in _NO and len(said) <= 3:
        return cancelled(turn)
    if len(said) == 1 and is_ascii_number(said[0]) and 1 <= int(said[0]) <= len(codes):
        return confirm_step(turn, codes[int(said[0]) - 1])
    upper = turn.message.text.upper()
    by_code = [code for code in codes if re.search(rf"(?<![A-Z0-9_]){re.escape(code)}(?![A-Z0-9_])", upper)]
    if len(by_code) == 1:
        return confirm_step(turn, by_code[0])
    wanted = {word for word in said if len(word) >= 3 and word not in _NAME_NOISE}
    scores: dict[str, int] = {}
    for code in codes:
        reward = loyalty.find_reward(turn.session, code)
        if reward is None:
            continue
        names = {word for name in (reward.names or {}).values() for word in _words(str(name))}
        scores[code] = len(wanted & names)
    best = max(scores.values(), default=0)
    winners = [code for code, score in scores.items() if score == best]
    if best > 0 and len(winners) == 1:
        return confirm_step(turn, winners[0])
    turn.clear_question()  # not a choice: route the message as usual
    return None


def confirmed_in_words(turn: Turn) -> list[Reply] | None:
    """"ya" / "batal" typed to the confirmation."""
    said = _words(turn.message.text)
    intent = turn.interpretation.intent
    if said and len(said) <= 4 and (said[0] in _NO or intent == "deny"):
        return cancelled(turn)
    if said and len(said) <= 4 and (said[0] in _YES or intent == "affirm"):
        return confirmed(turn, str((turn.conversation.pending_data or {}).get("key", "")))
    turn.clear_question()  # something else: nothing is redeemed, the message is routed as usual
    return None


# Pending and payload routes go with the other answers to our own questions; the intent among the intents.
ROUTES = [Route(pressed, payload_prefix=PAYLOAD), Route(chosen_in_words, pending=CHOOSE),
          Route(confirmed_in_words, pending=CONFIRM)]
INTENT_ROUTES = [Route(points, intent="loyalty_points")]


# --- the daily job ------------------------------------------------------------------------------------------


def expiry_task(settings: Settings) -> PeriodicTask:
    """Once per local day: the config's rewards added to the catalogue (new codes only), points past their
    expiry date expired, and tiers recomputed as the window slides. Checked hourly; the day is the dedupe key."""

    def bucket(now: datetime) -> tuple[str, dict[str, Any]] | None:
        if not settings.loyalty.enabled:
            return None
        return f"{EXPIRE}:{now.astimezone(settings.tz).date().isoformat()}", {}

    def run(session: Session, task: Task, now: datetime) -> None:
        if not settings.loyalty.enabled:
            return
        loyalty.sync_rewards(session, settings, now)
        loyalty.expire(session, settings, now)
        loyalty.refresh_tiers(session, settings, now)

    return PeriodicTask(run, check_every=timedelta(hours=1), bucket=bucket)


def task_kinds(settings: Settings) -> dict[str, Callable[[Session, Task, datetime], None]]:
    return {EXPIRE: expiry_task(settings)}


# --- Slack ---------------------------------------------------------------------------------------------------

USAGE = ("Loyalty commands: `points CUSTOMER` · `points adjust CUSTOMER +100|-50 REASON` (supervisors, "
         "management, marketing) · `redeem CUSTOMER CODE` · `rewards`")


def _one_customer(session: Session, key: str) -> Customer | str:
    found = find_customers_by_key(session, key)
    if len(found) != 1:
        return (f"No customer matches `{key}`." if not found
                else f"`{key}` matches {len(found)} customers; use a phone number or #id.")
    return found[0]


def describe_account(session: Session, settings: Settings, customer: Customer, now: datetime) -> str:
    """Balance, tier, next tier, expiring points and the last 10 ledger rows, for agents (Slack, CLI)."""
    summary = loyalty.summary(session, settings, customer.id, now)
    lines = [f"*#{customer.id} {customer.name or '(name not known)'}* — {summary.balance:,} points · tier "
             f"{summary.tier}" + (f" since {summary.tier_since.astimezone(settings.tz):%Y-%m-%d}"
                                  if summary.tier_since else "")
             + f" · {summary.tier_points:,} earned in the last {settings.loyalty.tier_window_days} days"]
    if summary.next_tier:
        lines.append(f"next tier {summary.next_tier} in {summary.points_to_next or 0:,} points")
    if summary.expiring_points and summary.expiring_on:
        lines.append(f"{summary.expiring_points:,} points expire on "
                     f"{summary.expiring_on.astimezone(settings.tz):%Y-%m-%d}")
    entries = loyalty.ledger(session, customer.id, 10)
    lines.append("Last ledger rows:" if entries else "No ledger rows yet.")
    for entry in entries:
        lines.append(f"  {entry.created_at.astimezone(settings.tz):%Y-%m-%d %H:%M} {entry.kind} {entry.points:+,} "
                     f"→ {entry.balance_after:,} · {entry.reason} · {entry.actor}")
    return "\n".join(lines)


def describe_rewards(session: Session, settings: Settings, now: datetime) -> str:
    loyalty.sync_rewards(session, settings, now)
    rewards = loyalty.catalogue(session)
    if not rewards:
        return "No rewards in the catalogue."
    lines = ["*Rewards* (code · points · stock · tier):"]
    for reward in rewards:
        stock = "unlimited" if reward.stock is None else f"{reward.stock} left"
        lines.append(f"• `{reward.code}` {loyalty.reward_name(reward, 'en', settings.default_language)} · "
                     f"{reward.points_cost:,} points · {stock} · {reward.min_tier or 'all tiers'}"
                     + ("" if reward.active else " · disabled"))
    return "\n".join(lines)


def slack_command(session: Session, settings: Settings, agent: Agent, verb: str, rest: list[str],
                  now: datetime) -> str:
    """`/sapa points|redeem|rewards ...`: any agent may look; adjusting and redeeming depend on the role."""
    if not settings.loyalty.enabled:
        return "The loyalty programme is off (loyalty.enabled in config.yml)."
    if verb == "rewards" and not rest:
        return describe_rewards(session, settings, now)
    if verb == "points" and rest and rest[0].lower() == "adjust":
        return _adjust(session, settings, agent, rest[1:], now)
    if verb == "points" and rest:
        found = _one_customer(session, " ".join(rest))
        return found if isinstance(found, str) else describe_account(session, settings, found, now)
    if verb == "redeem" and len(rest) >= 2:
        return _redeem(session, settings, agent, " ".join(rest[:-1]), rest[-1], now)
    return USAGE


def _adjust(session: Session, settings: Settings, agent: Agent, rest: list[str], now: datetime) -> str:
    if agent.role not in ADJUST_ROLES:
        return "Only supervisors, management and marketing can adjust points."
    if len(rest) < 3 or not re.fullmatch(r"[+-]?\d{1,9}", rest[1]):
        return "Usage: `points adjust CUSTOMER +100|-50 REASON` (a reason is required)."
    found = _one_customer(session, rest[0])
    if isinstance(found, str):
        return found
    change, reason = int(rest[1]), " ".join(rest[2:])
    try:
        entry = loyalty.adjust(session, settings, found.id, change, f"{reason} (by {agent.name})",
                               f"agent:{agent.id}", now)
    except LoyaltyError as error:
        return f"Not adjusted: {error}."
    record(session, actor=f"agent:{agent.id}", action="loyalty.adjust", subject_type="customer", subject_id=found.id,
           now=now, detail={"points": change, "reason": reason, "balance_after": entry.balance_after})
    return (f"#{found.id} {found.name or ''}: {change:+,} points ({reason}). Balance now {entry.balance_after:,}. "
            f"Recorded in the audit log.")


def _redeem(session: Session, settings: Settings, agent: Agent, key: str, code: str, now: datetime) -> str:
    if agent.role not in REDEEM_ROLES:
        return "Only customer service, account managers, supervisors and management can redeem for a customer."
    found = _one_customer(session, key)
    if isinstance(found, str):
        return found
    try:
        redemption = loyalty.redeem(session, settings, found.id, code, "slack", f"agent:{agent.id}", now)
    except LoyaltyError as error:
        return f"Not redeemed: {error}."
    reward = session.get_one(Reward, redemption.reward_id)
    balance = loyalty.summary(session, settings, found.id, now).balance
    record(session, actor=f"agent:{agent.id}", action="loyalty.redeem", subject_type="customer", subject_id=found.id,
           now=now, detail={"reward": reward.code, "points": redemption.points, "redemption_id": redemption.id})
    return (f"#{found.id} {found.name or ''} redeemed {reward.code} "
            f"({loyalty.reward_name(reward, 'en', settings.default_language)}) for {redemption.points:,} points. "
            f"Voucher code: *{redemption.voucher_code}*. Balance now {balance:,}.")
