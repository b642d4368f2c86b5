"""The periodic NPS survey (CRM-5.2, VIP-5.1): "how likely are you to recommend us?" 0..10, then the main reason.

Once per `surveys.nps.every_days` period, a round (`survey.nps`, dedupe key = the period's first day, so
replicas and restarts queue one round) picks who is asked: customers who wrote within `active_within_days`,
not merged, not erased, not opted out (STOP or consent withdrawn), not asked an NPS within
`min_days_between`; a random `sample_percent` of the regular ones (seeded by the period key, so a rerun picks
the same people) plus every VIP. Each gets a `survey.nps.ask` task (dedupe key per period and customer), due
at the next business hour, that re-checks them and asks on their most recent channel, unless an agent is
talking with them right then. Answers are stored on a `surveys` row (kind `nps`) with agent, channel, category
and tier for the reports; a VIP detractor alerts their account manager in Slack.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.limits import is_ascii_number
from handlers import sla, surveys
from handlers.desk import card
from handlers.slack_text import escape_slack
from handlers.turn import Reply, Route, Turn
from store.messages import add_desk_post
from store.models import (
    Agent,
    AuditEntry,
    ChannelIdentity,
    Consent,
    Conversation,
    Customer,
    Message,
    Survey,
    Task,
    Ticket,
)
from store.tasks import schedule

ROUND = "survey.nps"
ASK = "survey.nps.ask"
QUESTION = "nps"
REASON = "nps_reason"
PAYLOAD = "nps:"
SCALE = range(0, 11)
# SMS and WhatsApp show buttons as numbered options ("1. 0" … "11. 10"), which would put every option number
# one above its score: there the question asks for the number itself, without options.
NUMBERED_CHANNELS = ("sms", "whatsapp")
# Answers in words ("sepuluh", "nilai delapan deh") count only when this short: "no one answered" is not a 1.
WORDS_WITHIN = 4
WITHDRAWN = ("marketing", "data_processing")  # STOP withdraws marketing; refusing processing withdraws all


# --- the round ----------------------------------------------------------------------------------------------


def period_start(settings: Settings, now: datetime) -> datetime:
    """The current period's first moment: periods of `every_days` local days counted from 1 January of year 1."""
    every = settings.surveys.nps.every_days
    today = now.astimezone(settings.tz).date()
    return datetime.combine(date.fromordinal(today.toordinal() - (today.toordinal() - 1) % every), time(),
                            settings.tz)


def period_key(settings: Settings, now: datetime) -> str:
    return f"{ROUND}:{settings.surveys.nps.every_days}d:{period_start(settings, now).date().isoformat()}"


def round_bucket(settings: Settings) -> Callable[[datetime], tuple[str, dict[str, Any]] | None]:
    def bucket(now: datetime) -> tuple[str, dict[str, Any]] | None:
        if not settings.surveys.nps.enabled:
            return None
        key = period_key(settings, now)
        return key, {"period": key, "start": period_start(settings, now).isoformat()}

    return bucket


def eligible(session: Session, settings: Settings, now: datetime, *, only: list[int] | None = None,
             asked_before: datetime | None = None) -> list[Customer]:
    """Who may be asked now, by id: active recently (or VIP), not merged, erased, opted out or asked recently.

    With `asked_before`, only NPS questions asked before then count as recent: a round drawn again keeps the
    people it already asked in the draw, so it draws the same people (their tasks exist once).
    """
    rules = settings.surveys.nps
    active = select(Message.customer_id).where(
        Message.direction == "in", Message.created_at >= now - timedelta(days=rules.active_within_days))
    asked = select(Survey.customer_id).where(
        Survey.kind == "nps", Survey.asked_at >= now - timedelta(days=rules.min_days_between))
    if asked_before is not None:
        asked = asked.where(Survey.asked_at < asked_before)
    # VIP-5.1: VIPs are always asked, however long ago they last wrote (their last channel still reaches them).
    query = (select(Customer).where(or_(Customer.id.in_(active), Customer.is_vip), Customer.id.not_in(asked),
                                    Customer.merged_into_id.is_(None)).order_by(Customer.id))
    if only is not None:
        query = query.where(Customer.id.in_(only))
    customers = list(session.execute(query).scalars())
    ids = [c.id for c in customers]
    erased = {int(subject) for subject in session.execute(
        select(AuditEntry.subject_id).where(AuditEntry.action == "customer.erased",
                                            AuditEntry.subject_type == "customer")).scalars() if subject}
    latest: dict[tuple[int, str], bool] = {}
    for customer_id, purpose, granted in session.execute(
            select(Consent.customer_id, Consent.purpose, Consent.granted)
            .where(Consent.customer_id.in_(ids), Consent.purpose.in_(WITHDRAWN))
            .order_by(Consent.recorded_at, Consent.id)):
        latest[(customer_id, purpose)] = granted
    return [c for c in customers if c.id not in erased
            and not any(latest.get((c.id, purpose)) is False for purpose in WITHDRAWN)]


def sample(settings: Settings, customers: list[Customer], seed: str) -> list[int]:
    """Every VIP plus `sample_percent` of the others: those first in an order shuffled by `seed` (the period).

    Each customer's place depends only on the seed and their id, so the same period draws the same people,
    and a customer more or less moves the draw only at its edge.
    """
    vips = [c.id for c in customers if c.is_vip]
    regulars = [c.id for c in customers if not c.is_vip]
    count = int(len(regulars) * settings.surveys.nps.sample_percent / 100 + 0.5)
    shuffled = sorted(regulars, key=lambda customer_id: hashlib.sha256(f"{seed}:{customer_id}".encode()).digest())
    return sorted(vips + shuffled[:count])


def round_task(settings: Settings) -> Callable[[Session, Task, datetime], None]:
    """The round: one `survey.nps.ask` task per chosen customer, due at the next business hour."""

    def run(session: Session, task: Task, now: datetime) -> None:
        if not settings.surveys.nps.enabled:
            return
        key = str(task.payload["period"])
        start = datetime.fromisoformat(task.payload["start"]) if "start" in task.payload else None
        due = sla.calendar(settings).add(now, 0)  # no survey at 3 a.m.
        for customer_id in sample(settings, eligible(session, settings, now, asked_before=start), key):
            schedule(session, ASK, due_at=due, now=now, payload={"customer_id": customer_id, "period": key},
                     dedupe_key=f"nps:{key}:{customer_id}")

    return run


# --- asking one customer ---------------------------------------------------------------------------------


def _latest_identity(session: Session, customer_id: int) -> tuple[ChannelIdentity, Conversation] | None:
    """Where the customer last wrote from, if that address still reaches them."""
    found = session.execute(
        select(ChannelIdentity, Conversation).join(Conversation, Conversation.identity_id == ChannelIdentity.id)
        .join(Message, Message.conversation_id == Conversation.id)
        .where(Message.customer_id == customer_id, Message.direction == "in",
               ChannelIdentity.customer_id == customer_id, ChannelIdentity.undeliverable_reason.is_(None))
        .order_by(Message.id.desc()).limit(1)).first()
    return None if found is None else (found[0], found[1])


def ask_task(settings: Settings) -> Callable[[Session, Task, datetime], None]:
    def run(session: Session, task: Task, now: datetime) -> None:
        customer_id = int(task.payload["customer_id"])
        if not settings.surveys.nps.enabled or not eligible(session, settings, now, only=[customer_id]):
            return  # opted out, erased, merged or asked since the round chose them
        latest = _latest_identity(session, customer_id)
        if latest is None:
            return
        identity, earlier = latest
        customer = session.get_one(Customer, customer_id)
        conversation = sla.follow_up_on(session, settings, identity, customer, language=earlier.language, now=now)
        if conversation is None:
            return  # an agent is talking with them now: not this round
        last_ticket = session.execute(select(Ticket).where(Ticket.customer_id == customer_id)
                                      .order_by(Ticket.id.desc()).limit(1)).scalar_one_or_none()
        agent_id = last_ticket.assigned_agent_id if last_ticket else None
        if customer.is_vip and customer.account_manager_id:
            agent_id = customer.account_manager_id
        survey = Survey(kind="nps", customer_id=customer.id, conversation_id=conversation.id, agent_id=agent_id,
                        channel=identity.channel, category=last_ticket.category if last_ticket else None,
                        tier=sla.tier_of(customer), status="asked", asked_at=now)
        surveys.ask(session, settings, conversation, identity, customer, survey, question=QUESTION,
                    template="nps_question", scores=None if identity.channel in NUMBERED_CHANNELS else SCALE,
                    payload=PAYLOAD, now=now, purpose="nps_survey")

    return run


# --- answers -------------------------------------------------------------------------------------------


def parse_score(text: str, settings: Settings) -> int | None:
    """0..10 from "9", "nilai 10", "sepuluh", "ten", "nilai 7 deh"; None if there is none."""
    return surveys.parse_score(text, settings.surveys.nps.words, SCALE, words_within=WORDS_WITHIN)


def _record(turn: Turn, survey_id: int, score: int) -> list[Reply]:
    turn.clear_question()
    survey = turn.session.get(Survey, survey_id)
    name = turn.customer.name or ""
    if survey is None or survey.kind != "nps" or survey.customer_id != turn.customer.id or survey.status != "asked":
        return [turn.reply("thanks", name=name)]
    survey.status, survey.score, survey.answered_at = "answered", score, turn.clock.now()
    if _vip_detractor(turn, survey):
        _alert_account_manager(turn, survey)
    turn.ask(REASON, {"survey_id": survey.id})
    return [turn.reply("nps_reason", name=name)]


def _vip_detractor(turn: Turn, survey: Survey) -> bool:
    return survey.tier == "vip" and (survey.score or 0) <= turn.settings.surveys.nps.detractor_max


def _alert_account_manager(turn: Turn, survey: Survey) -> None:
    """VIP-5.1: a VIP detractor's card in the VIP channel, their account manager (else every one) mentioned."""
    settings, session = turn.settings, turn.session
    if not settings.slack.enabled:
        return
    data = card(session, settings, turn.conversation, title=f"VIP detractor: NPS {survey.score}/10")
    if data["mention"] is None:
        managers = session.execute(select(Agent).where(Agent.role == "account_manager", Agent.active.is_(True))
                                   .order_by(Agent.id)).scalars()
        data["mention"] = " ".join(f"<@{a.slack_user_id}>" for a in managers if a.slack_user_id) or None
    name = escape_slack(turn.customer.name or turn.identity.display_name or "A VIP")
    add_desk_post(session, recipient=settings.slack.vip_channel or settings.slack.queue_channel,
                  text=f"📉 VIP detractor: {name} ({turn.customer.vip_tier or 'vip'}) gave NPS {survey.score}/10 "
                       f"on {survey.channel}. {data['mention'] or ''}".strip(),
                  now=turn.clock.now(), conversation_id=turn.conversation.id, options={"card": data})


def answered_by_button(turn: Turn) -> list[Reply] | None:
    parts = (turn.message.button_payload or "").split(":")
    if len(parts) != 3 or not is_ascii_number(parts[1]) or not is_ascii_number(parts[2]) or int(parts[2]) not in SCALE:
        return None
    typed = turn.message.text.strip()
    # A typed "9" is mapped by the pipeline to the 9th option (score 8): the number written is the score.
    score = int(typed) if is_ascii_number(typed) and int(typed) in SCALE else int(parts[2])
    return _record(turn, int(parts[1]), score)


def answered_in_words(turn: Turn) -> list[Reply] | None:
    score = parse_score(turn.message.text, turn.settings)
    if score is None:
        turn.clear_question()  # not an answer: route the message as usual
        return None
    return _record(turn, int(turn.conversation.pending_data.get("survey_id", 0)), score)


def _something_else(turn: Turn) -> bool:
    """The reply to "why?" is clearly another matter (a request, a new complaint, wanting an agent)."""
    if turn.message.button_payload:
        return True
    rules, understood = turn.settings.surveys.nps, turn.interpretation
    if understood.intent not in rules.reason_other_intents or understood.confidence < rules.reason_other_confidence:
        return False
    if understood.intent == "complaint":  # "pengirimannya telat" is a reason; "saya mau komplain ..." is not
        lowered = turn.message.text.lower()
        return any(word in lowered for word in rules.complaint_words)
    return True


def reason_given(turn: Turn) -> list[Reply] | None:
    survey = turn.session.get(Survey, int(turn.conversation.pending_data.get("survey_id", 0)))
    turn.clear_question()
    if survey is None or survey.customer_id != turn.customer.id or _something_else(turn):
        return None  # route it as usual; no reason stored
    survey.comment = turn.message.text[:1000]
    if _vip_detractor(turn, survey) and turn.settings.slack.enabled:
        name = escape_slack(turn.customer.name or turn.identity.display_name or "A VIP")
        add_desk_post(turn.session, recipient=turn.settings.slack.vip_channel or turn.settings.slack.queue_channel,
                      text=f"💬 {name}'s reason for NPS {survey.score}/10: "
                           f"“{escape_slack(turn.message.text[:300])}”",
                      now=turn.clock.now(), conversation_id=turn.conversation.id)
    return [turn.reply("nps_thanks", name=turn.customer.name or "")]


ROUTES = [Route(answered_by_button, payload_prefix=PAYLOAD, feedback=True),
          Route(answered_in_words, pending=QUESTION, feedback=True), Route(reason_given, pending=REASON, feedback=True)]
