"""CRM-4.3: segmented marketing broadcasts over WhatsApp, SMS and Telegram (the data side: store/broadcasts.py).

A broadcast goes: draft (create: validated, previewed, tested) -> scheduled (schedule, at a time or now) ->
selecting (the `broadcast.select` task at that time inserts every matching customer as a recipient, pending or
skipped with a reason, one chunk of customers per step, each step scheduling the next) -> sending
(`broadcast.feed` moves up to `broadcasts.queue_batch` due recipients into the outbox per run, one transaction per
batch, and re-schedules itself while there is work) -> done (no pending recipient and none of its outbox rows
unfinished). `paused` stops feeding and parks its unclaimed outbox rows; `cancelled` withdraws what was not sent.
`broadcast.watch` (every minute) restarts the feed of a sending broadcast whose feed chain died with its process.

Only customers whose latest marketing answer is yes get one; STOP (marketing withdrawn) is re-checked when each
batch is queued. Each message ends with the opt-out line (templates.broadcast_opt_out).
"""

from __future__ import annotations

import shlex
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from jinja2 import TemplateError, nodes
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.contacts import normalise_phone
from bot.limits import is_ascii_number
from bot.templating import MAX_OUTPUT_CHARS, compile_template, render, variables_in
from scheduler.clock import PeriodicTask
from store import broadcasts as store
from store import segments
from store.audit import record
from store.broadcast_stats import broadcast_stats, render_stats
from store.broadcasts import BroadcastError, Due, Rendered
from store.customers import get_or_create_identity
from store.models import Agent, Broadcast, Conversation, Customer, LoyaltyAccount, Message, OutboxItem, Task
from store.tasks import schedule as schedule_task

SELECT = "broadcast.select"
FEED = "broadcast.feed"
WATCH = "broadcast.watch"
VARIABLES = ("name", "first_name", "company", "points", "tier")
ROLES = ("marketing", "supervisor", "management")
MAX_TEXT = 1000
IN_FLIGHT_POLL = timedelta(seconds=2)  # while the outbox still sends, look for "done" this often
STALE_FEED = timedelta(seconds=60)  # a feed step takes a second or two: one running this long died


# --- texts ----------------------------------------------------------------------------------------------------


def enabled_channels(settings: Settings) -> tuple[str, ...]:
    channels = settings.channels
    on = {"whatsapp": channels.whatsapp.enabled, "sms": channels.sms.enabled, "telegram": channels.telegram.enabled}
    return tuple(c for c in segments.PUSH_CHANNELS if on[c])


def variables(settings: Settings, name: str | None, points: int, tier: str | None) -> dict[str, Any]:
    """What a broadcast text may use: name, first_name, company, points, tier (empty when unknown)."""
    name = (name or "").strip()
    return {"name": name, "first_name": name.split()[0] if name else "", "company": settings.company.name,
            "points": points, "tier": tier or ""}


def text_for(settings: Settings, messages: dict[str, Any], language: str) -> str:
    return str(messages.get(language) or messages[settings.default_language])


def render_message(settings: Settings, messages: dict[str, Any], language: str, values: dict[str, Any]) -> Rendered:
    """The customer's text (their language, else the default) plus the opt-out line, and the variables of the
    approved `broadcast` WhatsApp template (used outside the 24-hour window): every variable as text."""
    language = language if messages.get(language) else settings.default_language
    body = _render_body(text_for(settings, messages, language), values)
    footer, fallback = _fixed_parts(settings, language)
    template_variables = {key: str(value) for key, value in values.items()}
    template_variables["name"] = template_variables["name"] or fallback
    template_variables["first_name"] = template_variables["first_name"] or fallback
    template_variables["text"] = body
    return Rendered(f"{body}\n\n{footer}", template_variables)


def _render_body(text: str, values: dict[str, Any]) -> str:
    """`bot.templating.render(text, values)`, faster for the usual broadcast text (issue 18: a 100,000-customer
    campaign spent more time in Jinja than in the database): a text that is only literal parts and `{{ variable }}`
    outputs, as the renderer's own parser reads it, renders as a `str.format_map` pattern, which writes str() of
    each value as Jinja's generated code does for the str and int values of `variables`. Anything else (filters,
    conditions, a missing variable, an output past the renderer's limit) goes through the renderer itself."""
    plain = _plain_pattern(text)
    if plain is None or not plain[1] <= values.keys():
        return render(text, values)
    out = plain[0].format_map(values)
    return out.strip() if len(out) <= MAX_OUTPUT_CHARS else render(text, values)


@lru_cache(maxsize=256)
def _plain_pattern(text: str) -> tuple[str, frozenset[str]] | None:
    """The text as a `str.format_map` pattern and the variables it uses, or None if it is more than literal
    parts and `{{ variable }}` outputs."""
    tree = compile_template(text).environment.parse(text)
    pattern: list[str] = []
    names: set[str] = set()
    for node in tree.body:
        if not isinstance(node, nodes.Output):
            return None
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                pattern.append(child.data.replace("{", "{{").replace("}", "}}"))
            elif isinstance(child, nodes.Name) and child.ctx == "load":
                pattern.append(f"{{{child.name}}}")
                names.add(child.name)
            else:
                return None
    return "".join(pattern), frozenset(names)


def _fixed_parts(settings: Settings, language: str) -> tuple[str, str]:
    """The opt-out line and the word used when a customer has no name."""
    templates = settings.templates
    return _rendered_fixed_parts(templates["broadcast_opt_out"][language], templates["broadcast_customer"][language],
                                 settings.company.name)


@lru_cache(maxsize=64)
def _rendered_fixed_parts(opt_out: str, customer: str, company: str) -> tuple[str, str]:
    # The same for every recipient of a language: rendered once, not twice per message (issue 18).
    return render(opt_out, {"company": company}), render(customer, {})


def check_messages(settings: Settings, messages: Any, samples: list[dict[str, Any]]) -> dict[str, str]:
    """Validated texts: languages from settings.languages, the default language's text required, only the allowed
    variables, and each renders for the sample customers."""
    if not isinstance(messages, dict) or not messages:
        raise BroadcastError(f"messages: give a text per language, at least {settings.default_language!r}")
    clean: dict[str, str] = {}
    for language, text in messages.items():
        if language not in settings.languages:
            raise BroadcastError(f"messages.{language}: not one of the languages {', '.join(settings.languages)}")
        if not isinstance(text, str) or not text.strip():
            raise BroadcastError(f"messages.{language}: the text is empty")
        if len(text) > MAX_TEXT:
            raise BroadcastError(f"messages.{language}: {len(text)} characters; at most {MAX_TEXT}")
        try:
            used = variables_in(text)
        except TemplateError as exc:
            raise BroadcastError(f"messages.{language} does not parse: {exc}") from None
        unknown = sorted(used - set(VARIABLES))
        if unknown:
            raise BroadcastError(f"messages.{language}: unknown variable {', '.join(unknown)}; "
                                 f"use {', '.join(VARIABLES)}")
        clean[language] = text.strip()
    if settings.default_language not in clean:
        raise BroadcastError(f"messages.{settings.default_language}: the default language's text is required")
    for language in clean:
        for sample in samples:
            try:
                render_message(settings, clean, language, sample)
            except TemplateError as exc:
                raise BroadcastError(f"messages.{language} does not render for a sample customer: {exc}") from None
    return clean


def check_channels(settings: Settings, channels: Any) -> list[str]:
    if isinstance(channels, str):
        channels = [c.strip() for c in channels.split(",") if c.strip()]
    if not isinstance(channels, list | tuple) or not channels:
        raise BroadcastError("channels: give channels in preference order, e.g. whatsapp,sms,telegram")
    enabled = enabled_channels(settings)
    clean: list[str] = []
    for channel in (str(c).strip().lower() for c in channels):
        if channel == "webchat":
            raise BroadcastError("channels: web chat cannot receive broadcasts (nobody is there to push to); "
                                 f"use {', '.join(enabled) or 'whatsapp, sms or telegram'}")
        if channel not in enabled:
            raise BroadcastError(f"channels: {channel!r} is not an enabled customer channel; "
                                 f"use {', '.join(enabled) or '(none enabled)'}")
        if channel not in clean:
            clean.append(channel)
    return clean


def _sample_values(session: Session, settings: Settings, filters: dict[str, Any], now: datetime
                   ) -> list[dict[str, Any]]:
    """A real matching customer (if any) and two made-up ones, one without a name: texts must render for all."""
    tier = settings.loyalty.tiers[0].name
    samples = [variables(settings, "Budi Santoso", 1250, tier), variables(settings, None, 0, None)]
    query = segments.matching(filters, segments.vocabulary(settings), now).order_by(None).limit(1)
    found = session.execute(query).scalar_one_or_none()
    if found is not None:
        customer = session.get_one(Customer, found)
        account = session.get(LoyaltyAccount, found)
        samples.insert(0, variables(settings, customer.name, account.balance if account else 0,
                                    account.tier if account else None))
    return samples


def parse_at(value: Any, settings: Settings) -> datetime | None:
    """An ISO date-time; without a zone it is the company's local time."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise BroadcastError(f"at: {value!r} is not an ISO date-time such as 2026-01-06T10:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=settings.tz)


# --- operations -------------------------------------------------------------------------------------------------


def create(session: Session, settings: Settings, *, name: str, messages: Any, channels: Any, created_by: str,
           now: datetime, segment: str | None = None, filters: Any = None, at: Any = None) -> Broadcast:
    """A draft broadcast. The segment's filters are copied (a later change of the segment does not change who
    this broadcast reaches once created); `at` is kept and used by `schedule` unless it gives another time."""
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise BroadcastError("name: give 1-120 characters")
    segment_row = None
    if segment and filters:
        raise BroadcastError("give a segment or filters, not both")
    if segment:
        segment_row = segments.get(session, segment)
        if segment_row is None:
            raise BroadcastError(f"segment: no saved segment named {segment!r}")
        filters = dict(segment_row.filters)
    try:
        clean_filters = segments.validate(filters or {}, segments.vocabulary(settings))
    except segments.FilterError as exc:
        raise BroadcastError(str(exc)) from None
    clean_channels = check_channels(settings, channels)
    texts = check_messages(settings, messages, _sample_values(session, settings, clean_filters, now))
    broadcast = Broadcast(name=name, segment_id=segment_row.id if segment_row else None, filters=clean_filters,
                          messages=texts, channels=clean_channels, status="draft",
                          scheduled_at=parse_at(at, settings), created_by=created_by, created_at=now, updated_at=now)
    session.add(broadcast)
    session.flush()
    record(session, actor=created_by, action="broadcast.created", subject_type="broadcast", subject_id=broadcast.id,
           now=now, detail={"name": name, "filters": clean_filters, "channels": clean_channels})
    return broadcast


def preview(session: Session, settings: Settings, broadcast_id: int, now: datetime) -> dict[str, Any]:
    """Who would get it if selected now: recipients per channel, skipped by reason, and the text per language."""
    broadcast = store.get(session, broadcast_id)
    counts = store.would_select(session, settings, broadcast, now)
    samples = _sample_values(session, settings, dict(broadcast.filters), now)[0]
    rendered = {lang: render_message(settings, broadcast.messages, lang, samples).text
                for lang in settings.languages if broadcast.messages.get(lang)}
    return {"id": broadcast.id, "name": broadcast.name, "status": broadcast.status, **counts.as_dict(),
            "samples": rendered}


def rendered_samples(session: Session, settings: Settings, broadcast_id: int, now: datetime) -> dict[str, Rendered]:
    """What one customer would get in each language the broadcast has a text for: the text (with the opt-out line)
    and the variables of the WhatsApp `broadcast` template, rendered for the same sample customer `preview` uses."""
    broadcast = store.get(session, broadcast_id)
    sample = _sample_values(session, settings, dict(broadcast.filters), now)[0]
    return {lang: render_message(settings, broadcast.messages, lang, sample)
            for lang in settings.languages if broadcast.messages.get(lang)}


def render_preview(data: dict[str, Any]) -> str:
    channels = ", ".join(f"{c} {n}" for c, n in data["by_channel"].items())
    skipped = ", ".join(f"{reason} {n}" for reason, n in sorted(data["skipped"].items())) or "none"
    lines = [f"Broadcast #{data['id']} {data['name']} ({data['status']}): {data['total']} customers match, "
             f"{data['recipients']} would receive it ({channels}); skipped: {skipped}."]
    for language, text in data["samples"].items():
        lines.append(f"[{language}] {text}")
    return "\n".join(lines)


def send_test(session: Session, settings: Settings, broadcast_id: int, *, channel: str, to: str, now: datetime,
              actor: str, language: str | None = None) -> Message:
    """Send the broadcast now to one's own address on one channel: not a recipient (no recipients row, no cap),
    logged with messages.meta {"broadcast_id", "test": true}."""
    broadcast = store.get(session, broadcast_id)
    channel = check_channels(settings, [channel])[0]
    address = (to or "").strip()
    phone = None
    if channel in store.TWILIO:
        phone = normalise_phone(address)
        if phone is None:
            raise BroadcastError(f"to: {to!r} is not a phone number")
        address = phone
    elif not is_ascii_number(address.removeprefix("-")):
        raise BroadcastError(f"to: {to!r} is not a Telegram chat id (digits)")
    if language is not None and language not in settings.languages:
        raise BroadcastError(f"language: use one of {', '.join(settings.languages)}")
    identity, _ = get_or_create_identity(session, channel, address, now=now, phone=phone)
    customer = identity.customer
    account = session.get(LoyaltyAccount, customer.id)
    lang = language or customer.language or identity.language_hint or settings.default_language
    lang = lang if broadcast.messages.get(lang) else settings.default_language
    rendered = render_message(settings, broadcast.messages, lang, variables(
        settings, customer.name, account.balance if account else 0, account.tier if account else None))
    conversation = Conversation(customer_id=customer.id, identity_id=identity.id, channel=channel, status="closed",
                                priority=0, language=lang, pending_data={}, misunderstood=0, opened_at=now,
                                last_message_at=now, closed_at=now)
    session.add(conversation)
    session.flush()
    message = Message(conversation_id=conversation.id, customer_id=customer.id, channel=channel, direction="out",
                      sender="system", text=rendered.text, buttons=[], media=[], language=lang,
                      delivery_status="queued", meta={"broadcast_id": broadcast.id, "test": True}, created_at=now)
    session.add(message)
    session.flush()
    session.add(OutboxItem(message_id=message.id, conversation_id=conversation.id, channel=channel, recipient=address,
                           payload=store.outbox_payload(broadcast.id, rendered, lang, test=True), status="pending",
                           attempts=0, next_attempt_at=now, created_at=now))
    record(session, actor=actor, action="broadcast.tested", subject_type="broadcast", subject_id=broadcast.id,
           now=now, detail={"channel": channel})
    return message


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def schedule(session: Session, settings: Settings, broadcast_id: int, *, now: datetime, actor: str,
             at: Any = None) -> Broadcast:
    """Schedule (or re-schedule) a draft: at the given time, else the time given at creation, else now."""
    broadcast = store.get(session, broadcast_id, lock=True)
    store.require(broadcast, "draft", "scheduled", doing="schedule")
    when = parse_at(at, settings) or broadcast.scheduled_at or now
    when = max(when, now)
    broadcast.scheduled_at, broadcast.updated_at = when, now
    broadcast.status = "scheduled" if when > now else "selecting"
    _schedule_select(session, broadcast, now)
    record(session, actor=actor, action="broadcast.scheduled", subject_type="broadcast", subject_id=broadcast.id,
           now=now, detail={"at": _utc(when)})
    return broadcast


def _schedule_select(session: Session, broadcast: Broadcast, now: datetime) -> None:
    when = broadcast.scheduled_at or now
    schedule_task(session, SELECT, due_at=when, now=now, payload={"broadcast_id": broadcast.id, "at": _utc(when)},
                  dedupe_key=f"{SELECT}:{broadcast.id}:{uuid.uuid4().hex}")


def _stop_feed(session: Session, broadcast_id: int, now: datetime, kind: str = FEED) -> None:
    session.execute(update(Task).where(Task.dedupe_key.like(f"{kind}:{broadcast_id}:%"), Task.status == "pending")
                    .values(status="cancelled", finished_at=now).execution_options(synchronize_session=False))


def start_feed(session: Session, broadcast_id: int, now: datetime) -> None:
    """A new feed chain (the old one's pending step cancelled, so one chain runs)."""
    _stop_feed(session, broadcast_id, now)
    chain = uuid.uuid4().hex[:12]
    schedule_task(session, FEED, due_at=now, now=now, payload={"broadcast_id": broadcast_id, "chain": chain, "step": 0},
                  dedupe_key=f"{FEED}:{broadcast_id}:{chain}:0")


def pause(session: Session, settings: Settings, broadcast_id: int, *, now: datetime, actor: str) -> Broadcast:
    broadcast = store.get(session, broadcast_id, lock=True)
    store.require(broadcast, "scheduled", "selecting", "sending", doing="pause")
    broadcast.status, broadcast.updated_at = "paused", now
    parked = store.set_outbox_status(session, broadcast.id, "pending", "paused")
    _stop_feed(session, broadcast.id, now)
    record(session, actor=actor, action="broadcast.paused", subject_type="broadcast", subject_id=broadcast.id,
           now=now, detail={"outbox_parked": parked})
    return broadcast


def resume(session: Session, settings: Settings, broadcast_id: int, *, now: datetime, actor: str) -> Broadcast:
    broadcast = store.get(session, broadcast_id, lock=True)
    store.require(broadcast, "paused", doing="resume")
    broadcast.updated_at = now
    if broadcast.started_at is None:  # paused before or during selection: select at the planned time, or now
        broadcast.status = "scheduled" if broadcast.scheduled_at and broadcast.scheduled_at > now else "selecting"
        _stop_feed(session, broadcast.id, now, SELECT)  # one selection chain (it starts over; reruns add nobody twice)
        _schedule_select(session, broadcast, now)
    else:
        broadcast.status = "sending"
        store.set_outbox_status(session, broadcast.id, "paused", "pending")
        start_feed(session, broadcast.id, now)
    record(session, actor=actor, action="broadcast.resumed", subject_type="broadcast", subject_id=broadcast.id,
           now=now)
    return broadcast


def cancel(session: Session, settings: Settings, broadcast_id: int, *, now: datetime, actor: str) -> Broadcast:
    broadcast = store.get(session, broadcast_id, lock=True)
    store.require(broadcast, "draft", "scheduled", "selecting", "sending", "paused", doing="cancel")
    withdrawn, pending = store.cancel_rows(session, broadcast.id, now)
    broadcast.status, broadcast.updated_at, broadcast.finished_at = "cancelled", now, now
    _stop_feed(session, broadcast.id, now)
    _stop_feed(session, broadcast.id, now, SELECT)
    record(session, actor=actor, action="broadcast.cancelled", subject_type="broadcast", subject_id=broadcast.id,
           now=now, detail={"outbox_withdrawn": withdrawn, "recipients_skipped": pending})
    return broadcast


def summary(broadcast: Broadcast) -> dict[str, Any]:
    return {"id": broadcast.id, "name": broadcast.name, "status": broadcast.status, "filters": broadcast.filters,
            "segment_id": broadcast.segment_id, "channels": list(broadcast.channels),
            "languages": sorted(broadcast.messages), "messages": broadcast.messages,
            "scheduled_at": _utc(broadcast.scheduled_at) if broadcast.scheduled_at else None,
            "started_at": _utc(broadcast.started_at) if broadcast.started_at else None,
            "finished_at": _utc(broadcast.finished_at) if broadcast.finished_at else None,
            "created_by": broadcast.created_by}


def list_broadcasts(session: Session, limit: int = 50) -> list[Broadcast]:
    return list(session.execute(select(Broadcast).order_by(Broadcast.id.desc()).limit(limit)).scalars())


def status(session: Session, settings: Settings, broadcast_id: int, now: datetime) -> dict[str, Any]:
    """The broadcast, its recipients' progress, and the CRM-4.4 delivery statistics."""
    broadcast = store.get(session, broadcast_id)
    data = {**summary(broadcast), "progress": store.progress(session, broadcast.id).as_dict()}
    result = broadcast_stats(session, settings, broadcast.id, now)
    data["stats_text"] = render_stats(result)
    data["stats"] = result.as_dict()
    return data


def render_status(data: dict[str, Any]) -> str:
    progress = data["progress"]
    recipients = progress["recipients"]
    skipped = ", ".join(f"{r} {n}" for r, n in sorted(progress["skipped"].items())) or "none"
    by_channel = ", ".join(f"{c} {n}" for c, n in sorted(progress["queued_by_channel"].items())) or "-"
    outbox = ", ".join(f"{s} {n}" for s, n in sorted(progress["outbox"].items())) or "-"
    lines = [f"Broadcast #{data['id']} {data['name']}: {data['status']} (channels {', '.join(data['channels'])}; "
             f"scheduled {data['scheduled_at'] or '-'})",
             f"Recipients: queued {recipients.get('queued', 0)} ({by_channel}), "
             f"pending {recipients.get('pending', 0)}, "
             f"skipped {recipients.get('skipped', 0)} ({skipped})",
             f"Outbox: {outbox}"]
    if data.get("stats_text"):
        lines.append(str(data["stats_text"]))
    return "\n".join(lines)


# --- the tasks -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedResult:
    queued: int
    skipped: dict[str, int]
    next_at: datetime | None  # when the next step should run; None: nothing more to do
    status: str


def feed_step(session: Session, settings: Settings, broadcast_id: int, now: datetime) -> FeedResult:
    """One batch of due recipients into the outbox (the caller's transaction), then done or when to look again."""
    broadcast = session.get(Broadcast, broadcast_id, with_for_update=True)
    if broadcast is None or broadcast.status != "sending":
        return FeedResult(0, {}, None, broadcast.status if broadcast else "missing")
    due = store.due_recipients(session, settings, broadcast.id, now, settings.broadcasts.queue_batch)

    def render_one(recipient: Due) -> Rendered:
        return render_message(settings, broadcast.messages, recipient.language,
                              variables(settings, recipient.name, recipient.points, recipient.tier))

    batch = store.queue_batch(session, broadcast.id, due, render_one, now)
    next_at = store.next_pending(session, broadcast.id, now)
    if next_at is None and store.has_in_flight(session, broadcast.id):
        next_at = now + IN_FLIGHT_POLL
    elif next_at is None:
        broadcast.status, broadcast.finished_at, broadcast.updated_at = "done", now, now
    return FeedResult(batch.queued, batch.skipped, next_at, broadcast.status)


def select_task(settings: Settings) -> Callable[[Session, Task, datetime], None]:
    def run(session: Session, task: Task, now: datetime) -> None:
        broadcast = session.get(Broadcast, int(task.payload["broadcast_id"]), with_for_update=True)
        if broadcast is None or broadcast.status not in ("scheduled", "selecting"):
            return  # paused or cancelled meanwhile: resume schedules a new selection
        if broadcast.scheduled_at is None or task.payload.get("at") != _utc(broadcast.scheduled_at):
            return  # re-scheduled: the task for the new time does it
        # One chunk of customers per step, each step its own transaction (store.select_chunk: SQLite's writer
        # lock is held a fraction of a second, so inbound messages are still answered while a campaign selects).
        last = store.select_chunk(session, settings, broadcast, now, int(task.payload.get("after", 0)))
        if last is not None:
            broadcast.status, broadcast.updated_at = "selecting", now
            schedule_task(session, SELECT, due_at=now, now=now, payload={**task.payload, "after": last},
                          dedupe_key=f"{SELECT}:{broadcast.id}:{uuid.uuid4().hex}")
            return
        broadcast.status, broadcast.started_at, broadcast.updated_at = "sending", now, now
        start_feed(session, broadcast.id, now)

    return run


def feed_task(settings: Settings) -> Callable[[Session, Task, datetime], None]:
    def run(session: Session, task: Task, now: datetime) -> None:
        broadcast_id, chain, step = int(task.payload["broadcast_id"]), task.payload["chain"], int(task.payload["step"])
        result = feed_step(session, settings, broadcast_id, now)
        if result.next_at is not None:
            schedule_task(session, FEED, due_at=result.next_at, now=now,
                          payload={"broadcast_id": broadcast_id, "chain": chain, "step": step + 1},
                          dedupe_key=f"{FEED}:{broadcast_id}:{chain}:{step + 1}")

    return run


def watch(session: Session, task: Task, now: datetime) -> None:
    """A sending broadcast with no live feed step (its process died mid-step) gets a new feed chain."""
    for broadcast_id in session.execute(select(Broadcast.id).where(Broadcast.status == "sending")).scalars():
        alive = session.execute(select(func.count()).select_from(Task).where(
            Task.dedupe_key.like(f"{FEED}:{broadcast_id}:%"),
            (Task.status == "pending") | ((Task.status == "running") & (Task.claimed_at > now - STALE_FEED)))
        ).scalar_one()
        if not alive:
            start_feed(session, broadcast_id, now)


def _watch_bucket(now: datetime) -> tuple[str, dict[str, Any]]:
    return f"{WATCH}:{now.replace(second=0, microsecond=0).isoformat()}", {}


def task_kinds(settings: Settings) -> dict[str, Callable[[Session, Task, datetime], None]]:
    return {SELECT: select_task(settings), FEED: feed_task(settings),
            WATCH: PeriodicTask(watch, check_every=timedelta(minutes=1), bucket=_watch_bucket)}


# --- the text commands (Slack; the CLI has its own options and calls the operations above) -------------------


def allowed(agent: Agent) -> bool:
    return agent.role in ROLES


REFUSAL = "Broadcasts and segments are for marketing, supervisors and management; your role is {role}."


@dataclass
class Options:
    words: list[str]
    values: dict[str, list[str]]

    def one(self, key: str) -> str | None:
        found = self.values.get(key)
        return found[-1] if found else None


def parse_options(words: list[str]) -> Options:
    """`--key value` pairs and plain words; `--message-en "Hi {{ name }}"` keeps the quoted text together."""
    plain: list[str] = []
    values: dict[str, list[str]] = {}
    index = 0
    while index < len(words):
        word = words[index]
        if word.startswith("--"):
            key, sep, inline = word[2:].partition("=")
            if sep:
                value = inline
            elif index + 1 < len(words):
                index += 1
                value = words[index]
            else:
                raise BroadcastError(f"--{key} needs a value")
            values.setdefault(key.lower(), []).append(value)
        else:
            plain.append(word)
        index += 1
    return Options(plain, values)


def messages_from(options: Options, settings: Settings) -> dict[str, str]:
    return {key.removeprefix("message-"): value[-1] for key, value in options.values.items()
            if key.startswith("message-")}


def _id(word: str | None) -> int:
    digits = (word or "").lstrip("#")
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 18):  # not "²" (int() refuses it), fits a BIGINT
        raise BroadcastError(f"give the broadcast's number, e.g. 12 (not {word!r})")
    return int(digits)


SEGMENT_HELP = ("`/sapa segment create NAME key=value ...` · `segment list` · `segment show NAME` (preview) · "
                "`segment delete NAME`; keys: " + ", ".join(segments.KEYS))
BROADCAST_HELP = ("`/sapa broadcast create NAME --segment NAME|--filter k=v --message-id TEXT --message-en TEXT "
                  "--channels whatsapp,sms,telegram [--at 2026-01-06T10:00]` · `broadcast preview|status|schedule"
                  "|pause|resume|cancel ID` · `broadcast test ID --to NUMBER --channel C` · `broadcast list`")


def segment_command(session: Session, settings: Settings, actor: str, words: list[str], now: datetime) -> str:
    if not words:
        return SEGMENT_HELP
    verb, rest = words[0].lower(), words[1:]
    try:
        if verb == "list":
            found = segments.list_all(session)
            if not found:
                return "No saved segments yet. " + SEGMENT_HELP
            return "\n".join(f"• {s.name}: {segments.describe_filters(s.filters)} (by {s.created_by})" for s in found)
        if verb in ("create", "update") and rest:
            saved, created = segments.save(session, settings, rest[0], segments.parse_pairs(rest[1:]),
                                           created_by=actor, now=now, replace=verb == "update")
            shown = segments.preview(session, settings, saved.filters, now)
            return (f"Segment {saved.name} {'saved' if created else 'updated'}: "
                    f"{segments.describe_filters(saved.filters)}\n{segments.render_preview(shown)}")
        if verb == "show" and len(rest) == 1:
            found_segment = segments.get(session, rest[0])
            if found_segment is None:
                return f"No segment named {rest[0]!r}."
            shown = segments.preview(session, settings, found_segment.filters, now)
            return f"Segment {found_segment.name}: {segments.describe_filters(found_segment.filters)}\n" + \
                segments.render_preview(shown)
        if verb == "delete" and len(rest) == 1:
            segments.delete(session, rest[0])
            return f"Segment {rest[0]} deleted."
    except (segments.FilterError, segments.SegmentError) as exc:
        return f"Not done: {exc}"
    return SEGMENT_HELP


def broadcast_command(session: Session, settings: Settings, actor: str, words: list[str], now: datetime) -> str:
    if not words:
        return BROADCAST_HELP
    verb = words[0].lower()
    try:
        options = parse_options(words[1:])
        if verb == "list":
            found = list_broadcasts(session)
            return "\n".join(f"• #{b.id} {b.name}: {b.status}" for b in found) or "No broadcasts yet."
        if verb == "create" and options.words:
            filters = segments.parse_pairs(options.values.get("filter", []))
            made = create(session, settings, name=" ".join(options.words), segment=options.one("segment"),
                          filters=filters, messages=messages_from(options, settings),
                          channels=options.one("channels") or "", at=options.one("at"), created_by=actor, now=now)
            return (f"Broadcast #{made.id} {made.name} created as a draft.\n"
                    + render_preview(preview(session, settings, made.id, now))
                    + f"\nNext: `/sapa broadcast test {made.id} --to NUMBER --channel whatsapp`, "
                      f"then `/sapa broadcast schedule {made.id}`.")
        broadcast_id = _id(options.words[0] if options.words else None)
        if verb == "preview":
            return render_preview(preview(session, settings, broadcast_id, now))
        if verb == "status":
            return render_status(status(session, settings, broadcast_id, now))
        if verb == "test":
            to, channel = options.one("to"), options.one("channel")
            if not to or not channel:
                return "Give `--to` your own number or chat id and `--channel whatsapp|sms|telegram`."
            send_test(session, settings, broadcast_id, channel=channel, to=to, now=now, actor=actor,
                      language=options.one("language"))
            return f"Test of broadcast #{broadcast_id} queued to {channel} (not counted as a recipient)."
        if verb == "schedule":
            done = schedule(session, settings, broadcast_id, now=now, actor=actor, at=options.one("at"))
            when = done.scheduled_at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M %Z") if done.scheduled_at \
                else "now"
            return f"Broadcast #{done.id} {done.name} scheduled for {when} ({done.status})."
        operations = {"pause": pause, "resume": resume, "cancel": cancel}
        if verb in operations:
            done = operations[verb](session, settings, broadcast_id, now=now, actor=actor)
            return f"Broadcast #{done.id} {done.name} is now {done.status}."
    except (BroadcastError, segments.FilterError) as exc:
        return f"Not done: {exc}"
    return BROADCAST_HELP


def slack_command(session: Session, settings: Settings, agent: Agent, verb: str, rest: list[str],
                  now: datetime) -> str:
    """`/sapa broadcast ...` and `/sapa segment ...` for marketing, supervisors and management."""
    if not allowed(agent):
        return REFUSAL.format(role=agent.role.replace("_", " "))
    try:
        words = shlex.split(" ".join(rest))
    except ValueError as exc:
        return f"Not done: {exc} (close the quotes around a message)"
    actor = f"agent:{agent.id}"
    if verb == "segment":
        return segment_command(session, settings, actor, words, now)
    return broadcast_command(session, settings, actor, words, now)
