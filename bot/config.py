"""The one validated settings object, loaded from config.yml plus environment variables.

Secrets never live in the file: DATABASE_URL and channel tokens come from the environment.
A value may name an environment variable, `${SAPA_PORT:-8000}`, for what differs per run (ports).
A bad config raises ConfigError naming the key and the fix, and start-up stops there.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from jinja2 import TemplateError, TemplateSyntaxError
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.templating import compile_template, render

Language = Literal["id", "en"]
PURPOSES = ("reply", "follow_up", "survey", "nps_survey", "status_update", "broadcast")
_TELEGRAM_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
# Environment variable -> (channel section, key). Secrets are read from here and nowhere else.
SECRET_ENV = {
    "TELEGRAM_BOT_TOKEN": ("telegram", "bot_token"),
    "TELEGRAM_WEBHOOK_SECRET": ("telegram", "webhook_secret"),
    "TWILIO_ACCOUNT_SID": (("sms", "whatsapp"), "account_sid"),
    "TWILIO_AUTH_TOKEN": (("sms", "whatsapp"), "auth_token"),
}
SLACK_SECRET_ENV = {"SLACK_BOT_TOKEN": "bot_token", "SLACK_SIGNING_SECRET": "signing_secret"}

# Templates the core itself sends; a config without them cannot run.
REQUIRED_TEMPLATES = (
    "greeting",
    "greeting_new",
    "ask_name",
    "name_saved",
    "fallback",
    "goodbye",
    "thanks",
    "handoff",
    "needs_agent",
    "faq_answer",
    "faq_no_answer",
    "fallback_handoff",
    "privacy_notice",
    "button_agree",
    "button_disagree",
    "consent_data_given",
    "consent_data_refused",
    "consent_marketing_question",
    "consent_marketing_declined",
    "opt_out_already",
    "opt_in_already",
    "button_yes",
    "button_no",
    "erasure_confirm",
    "erasure_cancelled",
    "erasure_done",
    "field_email",
    "field_phone",
    "field_name",
    "profile_confirm",
    "profile_changed",
    "profile_unchanged",
    "profile_how",
    "profile_phone_taken",
    "status_list",
    "status_none",
    "resolution_check",
    "button_solved",
    "button_not_solved",
    "resolution_confirmed",
    "resolution_reopened",
    "csat_question",
    "csat_thanks",
    "csat_low",
    "broadcast_opt_out",
    "broadcast_customer",
    "loyalty_balance",
    "loyalty_button_redeem",
    "loyalty_rewards",
    "loyalty_reward_option",
    "loyalty_rewards_none",
    "loyalty_no_rewards",
    "loyalty_confirm",
    "loyalty_button_cancel",
    "loyalty_redeemed",
    "loyalty_already_redeemed",
    "loyalty_cancelled",
    "loyalty_confirm_stale",
    "loyalty_not_enough",
    "loyalty_out_of_stock",
    "loyalty_tier_too_low",
    "loyalty_reward_unavailable",
    "handoff_upset",
    "ask_email",
    "button_skip",
    "email_saved",
    "email_skipped",
    "nps_question",
    "nps_reason",
    "nps_thanks",
    "request_received",
    "request_taken",
    "request_status_update",
    "request_done",
    "greeting_vip",
    "button_agent",
    "complaint_received",
    "opt_out_confirmed",
    "opt_in_confirmed",
    "agent_joined",
    "resolved",
    "escalated",
    "back_to_bot",
    # Issue 14: buttons, attachments, consent asked in words, honest waiting, data copies, answers to offers.
    "button_stale",
    "button_unknown",
    "attachment_received",
    "sticker_received",
    "location_received",
    "contact_own_saved",
    "contact_other_received",
    "forwarded_received",
    "unsupported_received",
    "consent_confirm_out",
    "consent_confirm_in",
    "consent_unchanged",
    "opt_in_first",
    "handoff_meanwhile",
    "handoff_already_waiting",
    "export_confirm",
    "export_started",
    "export_cancelled",
    "status_order_check",
    "offer_declined",
    "name_declined",
)


class ConfigError(Exception):
    """A configuration problem, worded for the person who edits config.yml."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CompanyConfig(_Section):
    name: str = Field("PT Contoh Sejahtera", min_length=1, description="the company name customers see")
    timezone: str = Field("Asia/Jakarta", description="an IANA time zone name such as Asia/Jakarta")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class DatabaseConfig(_Section):
    url: str = Field(
        "sqlite:///var/sapa.db",
        description="an SQLAlchemy URL: sqlite:///path/file.db or postgresql+psycopg://user@host/db "
        "(the DATABASE_URL environment variable overrides it)",
    )

    @field_validator("url")
    @classmethod
    def _supported(cls, value: str) -> str:
        if not (value.startswith("sqlite") or value.startswith("postgresql")):
            raise ValueError("only sqlite and postgresql databases are supported")
        return value


class ServerConfig(_Section):
    host: str = Field("127.0.0.1", description="the address to listen on")
    port: int = Field(8000, ge=1, le=65535, description="a TCP port between 1 and 65535")
    public_base_url: str | None = Field(
        None, pattern=r"^https?://[^/?#]+(/[^?#]*)?$",
        description="the public URL providers call, e.g. https://sapa.example.com (no trailing path "
        "parts beyond a prefix); without it the URL is rebuilt from X-Forwarded-Proto and Host",
    )
    # Secret: from SAPA_API_TOKEN only, never from the file.
    api_token: SecretStr | None = Field(
        None, description="the SAPA_API_TOKEN environment variable (the bearer token of POST /api/transactions)"
    )
    # Secret: from SAPA_METRICS_TOKEN only, never from the file. Unset: /metrics is open, like /healthz.
    metrics_token: SecretStr | None = Field(
        None, description="the SAPA_METRICS_TOKEN environment variable (the bearer token of GET /metrics)"
    )
    cpu: int | None = Field(
        None, ge=0, le=4095,
        description="a CPU core number to keep the whole server process on (about a fifth less CPU per message: "
        "its threads stop handing the GIL across cores); give each replica on a host its own core; unset: the "
        "operating system places the threads",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="addresses or networks (e.g. 127.0.0.1, 10.0.0.0/8) of reverse proxies whose X-Forwarded-For "
        "is believed; from any other peer the socket address is the client's",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for entry in value:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network such as 10.0.0.0/8") from None
        return [entry.strip() for entry in value]


class WebchatConfig(_Section):
    enabled: bool = Field(True, description="true or false")
    max_text_length: int = Field(2000, ge=1, le=20000, description="the longest message accepted, 1..20000")
    sessions_per_minute_per_address: int = Field(
        30, ge=1, le=100_000, description="chat sessions one client address may open per minute (a token bucket "
        "of that size, refilled over the minute); more get 429 with Retry-After"
    )


class TelegramConfig(_Section):
    enabled: bool = Field(False, description="true or false")
    api_base_url: str | None = Field(
        None, description="the Bot API base URL, e.g. http://127.0.0.1:8099/bot for the fake provider "
        "(default: Telegram's https://api.telegram.org/bot)"
    )
    allow_groups: bool = Field(False, description="true to answer in group chats; private chats only otherwise")
    per_chat_per_second: float = Field(1.0, gt=0, description="messages per second to one chat, e.g. 1")
    global_per_second: float = Field(30.0, gt=0, description="messages per second overall, e.g. 30")
    # Secrets: from TELEGRAM_BOT_TOKEN and TELEGRAM_WEBHOOK_SECRET only, never from the file.
    bot_token: SecretStr | None = Field(None, description="the TELEGRAM_BOT_TOKEN environment variable")
    webhook_secret: SecretStr | None = Field(
        None, description="the TELEGRAM_WEBHOOK_SECRET environment variable (1-256 of A-Z a-z 0-9 _ -)"
    )

    @model_validator(mode="after")
    def _secrets_present(self) -> TelegramConfig:
        if self.enabled and (self.bot_token is None or self.webhook_secret is None):
            raise ValueError(
                "telegram is enabled but TELEGRAM_BOT_TOKEN and TELEGRAM_WEBHOOK_SECRET are not both set "
                "in the environment"
            )
        if self.webhook_secret is not None and not _TELEGRAM_SECRET.match(self.webhook_secret.get_secret_value()):
            raise ValueError("TELEGRAM_WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return self


class WhatsAppTemplate(_Section):
    content_sid: str = Field(..., pattern=r"^HX[0-9a-fA-F]{32}$", description="an approved Content SID, HX + 32 hex")
    variables: tuple[str, ...] = Field((), description="the names filling {{1}}, {{2}}, ... in order")


class TwilioChannelConfig(_Section):
    enabled: bool = Field(False, description="true or false")
    from_number: str | None = Field(None, description="the sender number in E.164, e.g. +14155238886")
    messaging_service_sid: str | None = Field(
        None, pattern=r"^MG[0-9a-fA-F]{32}$", description="a Messaging Service SID (MG + 32 hex) instead of from_number"
    )
    messages_per_second: float = Field(1.0, gt=0, description="messages (SMS: segments) per second per sender")
    api_base_url: str | None = Field(
        None, description="the Twilio REST base URL, e.g. http://127.0.0.1:8099 for the fake provider"
    )
    # purpose -> language -> approved template; used when WhatsApp's 24-hour window is closed.
    templates: dict[str, dict[str, WhatsAppTemplate]] = Field(
        default_factory=dict, description="templates.<purpose>.<language>: {content_sid, variables}"
    )
    # Secrets: TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN only, never from the file.
    account_sid: str | None = Field(None, description="the TWILIO_ACCOUNT_SID environment variable")
    auth_token: SecretStr | None = Field(None, description="the TWILIO_AUTH_TOKEN environment variable")

    @model_validator(mode="after")
    def _complete(self) -> TwilioChannelConfig:
        if not self.enabled:
            return self
        if self.account_sid is None or self.auth_token is None:
            raise ValueError("enabled but TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not both set in the environment")
        if not (self.from_number or self.messaging_service_sid):
            raise ValueError("enabled but neither from_number nor messaging_service_sid is set")
        for purpose in self.templates:
            if purpose not in PURPOSES:
                raise ValueError(f"templates.{purpose}: unknown purpose; use one of {', '.join(PURPOSES)}")
        return self


# The roles of handlers/permissions.py, repeated: bot/config.py is a leaf module (tests/bot/test_staff_cli.py checks).
AgentRole = Literal["customer_service", "account_manager", "supervisor", "management", "marketing", "admin"]


class AgentConfig(_Section):
    slack_user_id: str = Field(..., pattern=r"^[UW][A-Z0-9]{2,}$", description="a Slack user id such as U0123ABCD")
    name: str = Field(..., min_length=1, description="the agent's name customers may see")
    role: AgentRole = Field(
        "customer_service",
        description="one of customer_service, account_manager, supervisor, management, marketing, admin",
    )


class SlackConfig(_Section):
    enabled: bool = Field(False, description="true or false")
    api_base_url: str | None = Field(
        None, description="the Web API base URL ending in /api/, e.g. http://127.0.0.1:8099/api/ for the fake"
    )
    queue_channel: str = Field("C0QUEUE", min_length=1, description="the Slack channel id handoffs go to")
    vip_channel: str | None = Field(None, description="the channel id for VIP handoffs (default: queue_channel)")
    escalation_channel: str | None = Field(
        None, description="the channel id for escalations to supervisors and management (default: queue_channel)"
    )
    operations_channel: str | None = Field(
        None, description="the channel id request cards and their reminders go to, e.g. C0OPS (default: queue_channel)"
    )
    last_messages: int = Field(5, ge=1, le=20, description="how many recent messages a handoff card shows, 1..20")
    agents: tuple[AgentConfig, ...] = Field((), description="a list of {slack_user_id, name, role}")
    bot_token: SecretStr | None = Field(None, description="the SLACK_BOT_TOKEN environment variable")
    signing_secret: SecretStr | None = Field(None, description="the SLACK_SIGNING_SECRET environment variable")

    @model_validator(mode="after")
    def _secrets_present(self) -> SlackConfig:
        if self.enabled and (self.bot_token is None or self.signing_secret is None):
            raise ValueError("slack is enabled but SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET are not both set")
        return self


class ChannelsConfig(_Section):
    webchat: WebchatConfig | None = Field(
        default_factory=WebchatConfig, description="web chat settings (enabled, max_text_length)"
    )
    telegram: TelegramConfig = Field(default_factory=TelegramConfig, description="Telegram settings")
    sms: TwilioChannelConfig = Field(default_factory=TwilioChannelConfig, description="SMS (Twilio) settings")
    whatsapp: TwilioChannelConfig = Field(
        default_factory=TwilioChannelConfig, description="WhatsApp (Twilio) settings"
    )


class RasaConfig(_Section):
    url: str = Field("http://127.0.0.1:5005", description="base URL of a Rasa server started with --enable-api")
    timeout_s: float = Field(2.0, gt=0, description="seconds to wait for Rasa's answer before the embedded one")
    retry_after_s: float = Field(
        30.0, gt=0, description="seconds the embedded backend answers alone after Rasa failed, before Rasa is retried"
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("an http:// or https:// URL such as http://127.0.0.1:5005")
        return value.rstrip("/")


class NluConfig(_Section):
    backend: Literal["embedded", "rasa"] = Field(
        "embedded", description="embedded (in-process) or rasa (a Rasa server at nlu.rasa.url)"
    )
    rasa: RasaConfig = Field(default_factory=RasaConfig, description="the Rasa server, used when backend is rasa")
    confidence_threshold: float = Field(
        0.35, ge=0.0, le=1.0, description="a number between 0 and 1; below it the intent is out_of_scope"
    )
    data_dir: str | None = Field(None, description="folder of Rasa NLU YAML files (default: nlu/data)")


class OutboxConfig(_Section):
    poll_interval_s: float = Field(0.5, gt=0, description="seconds between outbox polls, e.g. 0.5")
    batch_size: int = Field(50, ge=1, le=1000, description="rows claimed per poll, 1..1000")
    max_attempts: int = Field(8, ge=1, le=50, description="send attempts before a message is failed, 1..50")
    backoff_base_s: float = Field(2.0, gt=0, description="first retry delay in seconds")
    backoff_max_s: float = Field(600.0, gt=0, description="longest retry delay in seconds")
    claim_timeout_s: float = Field(
        120.0, gt=0, description="seconds after which a row claimed by a crashed process is claimed again"
    )


class SchedulerConfig(_Section):
    enabled: bool = Field(True, description="true or false: run the task clock in this process")
    poll_interval_s: float = Field(1.0, gt=0, description="seconds between due-task polls, e.g. 1.0")
    max_attempts: int = Field(5, ge=1, le=50, description="task attempts before it is marked failed")


class ConversationConfig(_Section):
    idle_close_minutes: int = Field(
        240, ge=1, description="minutes without messages after which the next message opens a new conversation"
    )


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Tier = Literal["regular", "vip"]
EscalationRole = Literal["supervisor", "management"]


class SlaTarget(_Section):
    first_response_minutes: float = Field(..., gt=0, description="minutes until an agent must first answer, e.g. 240")
    resolution_minutes: float = Field(..., gt=0, description="minutes until the ticket must be resolved, e.g. 1440")
    business_hours_only: bool = Field(
        True, description="true: count only business hours (sla.business_hours, minus holidays); false: all hours"
    )

    @model_validator(mode="after")
    def _resolution_after_response(self) -> SlaTarget:
        if self.resolution_minutes < self.first_response_minutes:
            raise ValueError("resolution_minutes must be at least first_response_minutes")
        return self


class BusinessHoursConfig(_Section):
    days: tuple[Weekday, ...] = Field(("mon", "tue", "wed", "thu", "fri"), min_length=1,
                                      description="working days such as [mon, tue, wed, thu, fri, sat]")
    start: time = Field(time(8, 0), description='opening time such as "08:00" (company time zone)')
    end: time = Field(time(17, 0), description='closing time such as "17:00", after start')

    @model_validator(mode="after")
    def _start_before_end(self) -> BusinessHoursConfig:
        if self.start >= self.end:
            raise ValueError("business_hours.start must be before business_hours.end")
        return self


class EscalationConfig(_Section):
    first_response_breach: EscalationRole = Field(
        "supervisor", description="who is alerted when nobody answered in time: supervisor or management"
    )
    resolution_breach: EscalationRole = Field(
        "management", description="who is alerted when a ticket is not resolved in time: supervisor or management"
    )
    warn_agents_at: float = Field(
        0.75, gt=0, lt=1, description="share of the first-response time after which the queue is reminded, e.g. 0.75"
    )


def _default_tiers() -> dict[Tier, SlaTarget]:
    return {"regular": SlaTarget(first_response_minutes=240, resolution_minutes=1440),
            "vip": SlaTarget(first_response_minutes=30, resolution_minutes=240, business_hours_only=False)}


class SlaConfig(_Section):
    tiers: dict[Tier, SlaTarget] = Field(default_factory=_default_tiers,
                                         description="targets per tier: sla.tiers.regular and sla.tiers.vip")
    business_hours: BusinessHoursConfig = Field(default_factory=BusinessHoursConfig)
    holidays: tuple[date, ...] = Field((), description="public holidays as YYYY-MM-DD; no business hours on them")
    escalation: EscalationConfig = Field(default_factory=EscalationConfig)
    confirm_resolution_after_minutes: int = Field(
        1440, ge=1, description="minutes after a resolution when the customer is asked whether it is solved, e.g. 1440"
    )

    @model_validator(mode="after")
    def _both_tiers(self) -> SlaConfig:
        missing = {"regular", "vip"} - set(self.tiers)
        if missing:
            raise ValueError(f"sla.tiers needs {' and '.join(sorted(missing))}")
        return self


class FaqEntry(_Section):
    id: str = Field(..., pattern=r"^[a-z0-9_]+$", description="a short key of a-z, 0-9 and _, e.g. opening_hours")
    question: dict[Language, str] = Field(
        ..., min_length=1, description="the question in one or more languages: question.<language>: text"
    )
    examples: tuple[str, ...] = Field(
        ..., min_length=1, description="a list of ways customers ask it (informal and formal Indonesian, English)"
    )
    answer: dict[Language, str] = Field(
        ..., description="the answer per language: answer.<language>: text, may use {{ name }} and {{ company }}"
    )
    terms: tuple[str, ...] = Field(
        (), description="a list of words this entry answers about besides those in its question, examples and "
        "answer (synonyms, slang), e.g. [tutup, operasional]",
    )


class FaqConfig(_Section):
    min_similarity: float = Field(
        0.1, ge=0.0, le=1.0,
        description="a number between 0 and 1; an entry less similar than this to a question never answers it "
        "(whether it covers the question decides among the rest), e.g. 0.1",
    )
    common_terms: tuple[str, ...] = Field(
        (), description="a list of words any question may carry without changing what it asks (products, brands, "
        "places the company serves), e.g. [kulkas, samsung, bandung]",
    )
    entries: tuple[FaqEntry, ...] = Field((), description="a list of {id, question, examples, answer, terms}")


def _faq_problems(faq: FaqConfig, languages: tuple[str, ...]) -> list[str]:
    """Every answer exists in every language and renders with the variables an answer gets."""
    problems = []
    seen: set[str] = set()
    for entry in faq.entries:
        if entry.id in seen:
            problems.append(f"faq.entries: id {entry.id!r} is used twice (give each entry its own id)")
        seen.add(entry.id)
        for language in languages:
            if language not in entry.answer:
                problems.append(f"faq.{entry.id}.answer.{language} is missing (add the {language} text)")
        for lang, text in entry.answer.items():
            key = f"faq.{entry.id}.answer.{lang}"
            if lang not in languages:
                problems.append(f"{key}: not one of languages {list(languages)}")
                continue
            try:
                for name in ("", "Rina"):  # both sides of an {% if name %}
                    render(text, {"name": name, "company": "PT Contoh"})
            except TemplateSyntaxError as exc:
                problems.append(f"{key} does not parse: {exc.message}")
            except TemplateError as exc:
                problems.append(f"{key} cannot be rendered ({exc.message}); "
                                "use only {{ name }} and {{ company }}")
    return problems


def _default_csat_words() -> dict[str, int]:
    return {"sangat puas": 5, "puas banget": 5, "puas sekali": 5, "mantap": 5, "very satisfied": 5, "excellent": 5,
            "puas": 4, "satisfied": 4, "good": 4, "bagus": 4, "lumayan": 3, "biasa": 3, "cukup": 3, "okay": 3,
            "kurang puas": 2, "kurang": 2, "not satisfied": 2, "unsatisfied": 2, "poor": 2,
            "kecewa": 1, "sangat kecewa": 1, "kecewa banget": 1, "buruk": 1, "disappointed": 1, "terrible": 1}


def _default_nps_words() -> dict[str, int]:
    return {"nol": 0, "satu": 1, "dua": 2, "tiga": 3, "empat": 4, "lima": 5, "enam": 6, "tujuh": 7, "delapan": 8,
            "sembilan": 9, "sepuluh": 10, "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
            "seven": 7, "eight": 8, "nine": 9, "ten": 10}


def _default_nps_other_intents() -> tuple[str, ...]:
    return ("complaint", "request", "talk_to_agent", "check_status", "delete_data", "update_profile", "opt_out")


def _default_nps_complaint_words() -> tuple[str, ...]:
    return ("komplain", "keluhan", "mengeluh", "lapor", "complain", "complaint")


class NpsConfig(_Section):
    """CRM-5.2 / VIP-5.1: the periodic NPS round. Every `every_days` days a sample of recently active customers
    (and every VIP) is asked how likely they are to recommend the company, 0..10, and then for the main reason."""

    enabled: bool = Field(True, description="true or false: run the periodic NPS round")
    every_days: int = Field(90, ge=1, le=366, description="days between NPS rounds, 1..366, e.g. 90")
    sample_percent: float = Field(
        20, ge=0, le=100, description="percent of eligible regular customers asked each round, 0..100 (VIPs: all)"
    )
    active_within_days: int = Field(
        180, ge=1, description="only customers who wrote to us within this many days are asked, e.g. 180"
    )
    min_days_between: int = Field(
        60, ge=0, description="days after an NPS question before the same customer may be asked again, e.g. 60"
    )
    detractor_max: int = Field(
        6, ge=0, le=9, description="a score at or below this is a detractor (0..9; standard 6); a VIP's alerts "
        "their account manager"
    )
    reason_other_confidence: float = Field(
        0.9, ge=0.0, le=1.0,
        description="a number between 0 and 1: a reply to the reason question understood as one of "
        "reason_other_intents at least this surely is routed as that, not stored as the reason",
    )
    reason_other_intents: tuple[str, ...] = Field(
        default_factory=_default_nps_other_intents,
        description="intents that are not a reason, e.g. [request, talk_to_agent]; complaint only counts with "
        "one of complaint_words",
    )
    complaint_words: tuple[str, ...] = Field(
        default_factory=_default_nps_complaint_words,
        description="words that make a complaint-like reason a new complaint, e.g. [komplain, keluhan]",
    )
    words: dict[str, int] = Field(
        default_factory=_default_nps_words,
        description='numbers in words and their score 0..10, e.g. {"sepuluh": 10, "ten": 10}',
    )

    @field_validator("words")
    @classmethod
    def _scores_in_range(cls, value: dict[str, int]) -> dict[str, int]:
        wrong = [word for word, score in value.items() if not 0 <= score <= 10]
        if wrong:
            raise ValueError(f"scores must be 0..10 (check {', '.join(wrong)})")
        return {word.lower(): score for word, score in value.items()}


class SurveyConfig(_Section):
    csat_delay_minutes: float = Field(
        60, gt=0, description="minutes after a resolution when the CSAT question goes out, e.g. 60"
    )
    low_score: int = Field(2, ge=1, le=4, description="a CSAT score at or below this alerts the supervisors, 1..4")
    words: dict[str, int] = Field(
        default_factory=_default_csat_words,
        description='answers in words and their score 1..5, e.g. {"puas banget": 5, "kecewa": 1}',
    )
    nps: NpsConfig = Field(default_factory=NpsConfig,
                           description="the periodic NPS round: enabled, every_days, sample_percent, ...")

    @field_validator("words")
    @classmethod
    def _scores_in_range(cls, value: dict[str, int]) -> dict[str, int]:
        wrong = [word for word, score in value.items() if not 1 <= score <= 5]
        if wrong:
            raise ValueError(f"scores must be 1..5 (check {', '.join(wrong)})")
        return {word.lower(): score for word, score in value.items()}


class ReportsConfig(_Section):
    vip_report_every_days: int = Field(
        7, ge=1, le=92, description="days each scheduled VIP report covers, 1..92 (7: Monday to Sunday)"
    )
    management_channel: str | None = Field(
        None, description="the Slack channel id the VIP report goes to (default: slack.escalation_channel, "
        "else slack.queue_channel)"
    )


class VipConfig(_Section):
    """VIP-1.1 rules. A customer is a VIP when EITHER their transactions in the last `period_days` total at
    least `min_total_rupiah`, OR they have been a customer at least `min_relationship_days` AND their
    transactions in the period total at least `loyal_min_total_rupiah`. A strategic VIP (set with
    `/sapa vip add CUSTOMER REASON`) stays a VIP whatever the rules say."""

    period_days: int = Field(365, ge=1, description="days of transactions that count, e.g. 365")
    min_total_rupiah: int = Field(
        100_000_000, ge=1, description="total rupiah in the period that makes a VIP on its own, e.g. 100000000"
    )
    min_relationship_days: int = Field(
        730, ge=1, description="days since the first transaction (or first contact) for the loyalty rule, e.g. 730"
    )
    loyal_min_total_rupiah: int = Field(
        25_000_000, ge=0, description="total rupiah in the period a long-standing customer needs, e.g. 25000000"
    )
    value_tier: str = Field("gold", min_length=1, max_length=40, description="the tier name for the value rule")
    loyal_tier: str = Field("loyal", min_length=1, max_length=40, description="the tier name for the loyalty rule")

    @model_validator(mode="after")
    def _loyal_is_smaller(self) -> VipConfig:
        if self.loyal_min_total_rupiah > self.min_total_rupiah:
            raise ValueError("loyal_min_total_rupiah must not be more than min_total_rupiah")
        return self


def _default_checklist() -> tuple[str, ...]:
    return ("Check the details with the customer if anything is unclear",
            "Do it, or pass it to the team that can and follow it up",
            "Tell the customer and close it: /sapa ticket TKT-… done NOTE")


def _default_request_categories() -> dict[str, tuple[str, ...]]:
    return {"cancel_order": ("batal", "batalin", "membatalkan", "cancel"),
            "reschedule_delivery": ("jadwal ulang", "reschedule", "diundur", "jadwalin ulang"),
            "change_address": ("alamat", "address"),
            "document": ("invoice", "faktur", "struk", "receipt", "nota"),
            "refund": ("refund", "pengembalian dana"),
            "installation": ("teknisi", "pasang", "pemasangan", "install"),
            "callback": ("telpon", "telepon", "callback", "call me", "hubungi")}


def _category_words(value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    wrong = [name for name in value if not re.fullmatch(r"[a-z0-9_]{1,60}", name)]
    if wrong:
        raise ValueError(f"category names are 1-60 of a-z, 0-9 and _ (check {', '.join(wrong)})")
    return {name: tuple(word.lower() for word in words) for name, words in value.items()}


# category: [words], for requests and complaints alike; words compared lower-case.
CategoryWords = Annotated[dict[str, tuple[str, ...]], AfterValidator(_category_words)]


class RequestsConfig(_Section):
    reminder_hours: float = Field(
        4, gt=0, description="hours between reminders in the operations channel while a request is open, e.g. 4"
    )
    vip_status_update_hours: float = Field(
        3, gt=0, description="hours between status updates to a VIP customer until their request is done, e.g. 3"
    )
    checklist: tuple[str, ...] = Field(
        default_factory=_default_checklist, description="a list of short steps shown on every request card"
    )
    categories: CategoryWords = Field(
        default_factory=_default_request_categories,
        description="category: [words]; the first category with a word in the request is recorded, "
        "e.g. {cancel_order: [batal, cancel]}",
    )


def _default_complaint_categories() -> dict[str, tuple[str, ...]]:
    return {"damaged_item": ("rusak", "pecah", "cacat", "penyok", "broken", "damaged"),
            "late_delivery": ("terlambat", "telat", "belum sampai", "belum datang", "late", "not arrived"),
            "wrong_item": ("salah kirim", "salah barang", "wrong item"),
            "billing": ("tagihan", "dobel", "double", "refund", "charged")}


class ComplaintsConfig(_Section):
    categories: CategoryWords = Field(
        default_factory=_default_complaint_categories,
        description="category: [words]; the first category with a word in the complaint is set on the ticket",
    )
    root_causes: dict[str, str] = Field(
        default_factory=dict,
        description="category: the root cause to suggest for it, e.g. {late_delivery: courier_delay}; agents confirm",
    )


class HandoffConfig(_Section):
    """When the bot hands a conversation to a human besides an explicit request, a complaint, or two misses."""

    vip_negative_threshold: float = Field(
        0.4, gt=0, le=1, description="negativity 0..1 of a message (nlu/sentiment.py) at which an upset VIP is "
        "handed to a human, e.g. 0.4 (one 'kecewa' is about 0.66); angry messages always count"
    )
    upset_tiers: tuple[Tier, ...] = Field(
        ("vip",), description="which customers are handed to a human for their tone alone: a list of vip, regular"
    )


def _default_email_skip_words() -> tuple[str, ...]:
    return ("lewati", "skip", "tidak usah", "nanti saja", "nanti", "tidak", "tidak mau", "tidak punya",
            "jangan", "no", "no thanks", "not now", "later", "i don't have one", "rather not")


class IntakeConfig(_Section):
    ask_email: bool = Field(
        True, description="true or false: ask a named customer without an email for it, once ever, at a calm moment"
    )
    email_skip_words: tuple[str, ...] = Field(
        default_factory=_default_email_skip_words,
        description='answers that decline the email question, compared at the start of the reply, '
        'e.g. [lewati, skip, "nanti saja"]',
    )


def _clock_time(value: str) -> str:
    try:
        time.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a time of day such as 21:00") from None
    return value


ClockTime = Annotated[str, AfterValidator(_clock_time)]


class AnalysisConfig(_Section):
    """CRM-4.1: recency / frequency / monetary scores from transactions (and inbound messages), and segments."""

    window_days: int = Field(365, ge=30, le=3650, description="days of transactions the scores look at, e.g. 365")
    recompute_every_hours: int = Field(24, ge=1, le=720, description="hours between score recomputations, e.g. 24")


class LoyaltyTier(_Section):
    name: str = Field(description="a short tier name of a-z, 0-9 and _, e.g. gold")
    min_points: int = Field(ge=0, description="points earned within loyalty.tier_window_days to reach it, e.g. 5000")
    earn_multiplier: float = Field(1.0, gt=0, le=10, description="points multiplier in this tier, e.g. 1.25")
    benefits: dict[str, str] = Field(default_factory=dict, description="language -> benefits in words")


class LoyaltyReward(_Section):
    code: str = Field(description="a short code of A-Z, 0-9 and _ that customers and agents type, e.g. VCR50")
    names: dict[str, str] = Field(description="language -> the reward's name")
    points: int = Field(gt=0, description="points it costs, e.g. 500")
    stock: int | None = Field(None, ge=0, description="units available; leave out for unlimited")
    min_tier: str | None = Field(None, description="the lowest tier that may redeem it; leave out for everyone")


def _default_loyalty_tiers() -> tuple[LoyaltyTier, ...]:
    return (
        LoyaltyTier(name="member", min_points=0,
                    benefits={"id": "kumpulkan poin dari setiap belanja", "en": "earn points on every purchase"}),
        LoyaltyTier(name="silver", min_points=1000, earn_multiplier=1.1,
                    benefits={"id": "poin 1,1x dan promo khusus", "en": "1.1x points and member offers"}),
        LoyaltyTier(name="gold", min_points=5000, earn_multiplier=1.25,
                    benefits={"id": "poin 1,25x dan gratis ongkir", "en": "1.25x points and free delivery"}),
        LoyaltyTier(name="platinum", min_points=20000, earn_multiplier=1.5,
                    benefits={"id": "poin 1,5x, gratis ongkir, layanan prioritas",
                              "en": "1.5x points, free delivery, priority service"}),
    )


class LoyaltyConfig(_Section):
    """CRM-4.2: points from transactions, tiers, rewards; the ledger is append-only and never goes negative."""

    enabled: bool = Field(True, description="true or false: run the loyalty programme")
    rupiah_per_point: int = Field(10_000, ge=1, description="rupiah spent per point earned, e.g. 10000")
    expiry_months: int = Field(12, ge=0, le=120, description="months after earning when points expire (0: never)")
    expiring_notice_days: int = Field(30, ge=0, description="points expiring within this many days are mentioned")
    tier_window_days: int = Field(365, ge=1, description="days of earned points that count towards a tier")
    tiers: tuple[LoyaltyTier, ...] = Field(
        default_factory=_default_loyalty_tiers, min_length=1,
        description="a list of {name, min_points, earn_multiplier, benefits}, the first with min_points 0",
    )
    rewards: tuple[LoyaltyReward, ...] = Field(
        (), description="the catalogue added to the database at start (existing codes are left as they are)")
    attribution_days: int = Field(
        7, ge=0, description="a redemption within this many days after a broadcast reached the customer counts "
        "for that broadcast (CRM-4.4)")

    @model_validator(mode="after")
    def _tiers_ordered(self) -> LoyaltyConfig:
        if self.tiers[0].min_points != 0:
            raise ValueError("the first tier must have min_points 0 (everyone starts there)")
        thresholds = [tier.min_points for tier in self.tiers]
        if thresholds != sorted(thresholds) or len(set(thresholds)) != len(thresholds):
            raise ValueError("tiers must be listed with rising min_points")
        names = [tier.name for tier in self.tiers]
        if len(set(names)) != len(names) or not all(re.fullmatch(r"[a-z0-9_]{1,40}", n) for n in names):
            raise ValueError("tier names must be unique and use a-z, 0-9 and _")
        codes = [reward.code for reward in self.rewards]
        if len(set(codes)) != len(codes) or not all(re.fullmatch(r"[A-Z0-9_]{2,40}", c) for c in codes):
            raise ValueError("reward codes must be unique and use A-Z, 0-9 and _")
        unknown = [r.code for r in self.rewards if r.min_tier is not None and r.min_tier not in names]
        if unknown:
            raise ValueError(f"rewards {', '.join(unknown)} name a min_tier that is not in tiers")
        return self


class BroadcastsConfig(_Section):
    """CRM-4.3: marketing broadcasts. Only customers with marketing consent who have not opted out receive them."""

    quiet_start: ClockTime = Field("21:00", description="start of quiet hours in the customer's timezone, e.g. 21:00")
    quiet_end: ClockTime = Field("08:00", description="end of quiet hours in the customer's timezone, e.g. 08:00")
    max_per_customer: int = Field(2, ge=1, description="broadcast messages a customer may get within cap_days")
    cap_days: int = Field(7, ge=1, description="days the frequency cap looks back, e.g. 7")
    rate_per_second: dict[str, float] = Field(
        default_factory=lambda: {"whatsapp": 10.0, "sms": 1.0, "telegram": 20.0},
        description="broadcast messages per second per channel, on top of the channel's own provider limits, "
        "so replies keep headroom, e.g. {whatsapp: 10, sms: 1, telegram: 20}",
    )
    queue_batch: int = Field(1000, ge=10, le=20000, description="recipients moved into the outbox per step")
    reply_window_hours: int = Field(72, ge=1, description="a customer's message within this many hours after a "
                                    "broadcast reached them counts as a reply to it (CRM-4.4)")


# --- signed links to files (bot/media_links.py, bot/http/media.py) ------------------------------------------------
class ConsoleConfig(_Section):
    """The staff web console (/console): how long a sign-in lasts and how failed sign-ins are throttled."""

    session_idle_minutes: int = Field(480, ge=5, le=7 * 24 * 60,
                                      description="minutes without a request after which a browser is signed out, "
                                      "5..10080")
    session_max_hours: int = Field(24, ge=1, le=90 * 24,
                                   description="hours after signing in when a browser is signed out however busy, "
                                   "1..2160")
    login_max_failures_per_account: int = Field(
        5, ge=1, le=1000, description="failed sign-ins to one email within login_window_minutes that lock it, 1..1000")
    login_max_failures_per_address: int = Field(
        20, ge=1, le=100_000,
        description="failed sign-ins from one client address within login_window_minutes that lock it, 1..100000")
    login_window_minutes: int = Field(15, ge=1, le=24 * 60, description="the window failures count in, 1..1440")
    login_lock_minutes: int = Field(15, ge=1, le=24 * 60, description="how long a lock lasts, 1..1440")
    setup_link_hours: int = Field(24, ge=1, le=7 * 24,
                                  description="hours the first admin's set-up link works, 1..168")
    reset_link_hours: int = Field(72, ge=1, le=14 * 24,
                                  description="hours a new member of staff's or a reset link works, 1..336")


class MediaLinksConfig(_Section):
    """Links that let staff (and, for an agent's file, the provider or customer) open a file Sapa did not store."""

    expire_days: float = Field(7, gt=0, le=366, description="how many days a link works, more than 0 and up to 366")
    secret_file: str | None = Field(
        None, description="a file path where the signing key is created and kept when SAPA_MEDIA_LINK_SECRET is not "
        "set (default: media-link-secret next to the SQLite database, else var/media-link-secret)",
    )
    # Secret: from SAPA_MEDIA_LINK_SECRET only, never from the file. Replicas on several machines must share it.
    secret: SecretStr | None = Field(
        None, description="the SAPA_MEDIA_LINK_SECRET environment variable (at least 32 characters)"
    )


class Settings(_Section):
    """Everything Sapa reads from config.yml, validated, with environment overrides applied."""

    company: CompanyConfig = Field(default_factory=CompanyConfig)
    languages: tuple[Language, ...] = Field(("id", "en"), min_length=1, description="a list such as [id, en]")
    default_language: Language = Field("id", description="one of the configured languages")
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    channels: ChannelsConfig = Field(default_factory=ChannelsConfig)
    nlu: NluConfig = Field(default_factory=NluConfig)
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    conversation: ConversationConfig = Field(default_factory=ConversationConfig)
    slack: SlackConfig = Field(default_factory=SlackConfig)
    sla: SlaConfig = Field(default_factory=SlaConfig)
    faq: FaqConfig = Field(default_factory=FaqConfig, description="the FAQ knowledge base: min_similarity, entries")
    surveys: SurveyConfig = Field(default_factory=SurveyConfig, description="satisfaction surveys (CSAT, NPS)")
    complaints: ComplaintsConfig = Field(default_factory=ComplaintsConfig,
                                         description="complaint categories and suggested root causes")
    requests: RequestsConfig = Field(default_factory=RequestsConfig,
                                     description="request tickets: follow-up timings, checklist, categories")
    reports: ReportsConfig = Field(default_factory=ReportsConfig, description="service reports (CRM-5, VIP-5)")
    vip: VipConfig = Field(default_factory=VipConfig, description="VIP rules: period_days, min_total_rupiah, ...")
    handoff: HandoffConfig = Field(default_factory=HandoffConfig,
                                   description="handoff rules: vip_negative_threshold, upset_tiers")
    intake: IntakeConfig = Field(default_factory=IntakeConfig, description="profile questions: ask_email, ...")
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig, description="RFM scores and segments (CRM-4.1)")
    loyalty: LoyaltyConfig = Field(default_factory=LoyaltyConfig,
                                   description="the loyalty programme: points, tiers, rewards (CRM-4.2)")
    broadcasts: BroadcastsConfig = Field(default_factory=BroadcastsConfig,
                                         description="marketing broadcasts: quiet hours, frequency cap, rates")
    media_links: MediaLinksConfig = Field(default_factory=MediaLinksConfig,
                                          description="signed links to files: expire_days, secret_file")
    console: ConsoleConfig = Field(default_factory=ConsoleConfig,
                                   description="the staff web console: session lifetimes and sign-in throttling")
    templates: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="reply texts: templates.<name>.<language>: text"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.default_language not in self.languages:
            raise ValueError(
                f"default_language {self.default_language!r} is not in languages {list(self.languages)}"
            )
        problems = []
        for name in REQUIRED_TEMPLATES:
            if name not in self.templates:
                problems.append(f"templates.{name} is missing (add it with a text per language)")
        for name, texts in self.templates.items():
            for language in self.languages:
                if language not in texts:
                    problems.append(f"templates.{name}.{language} is missing (add the {language} text)")
            for lang, text in texts.items():
                if lang not in self.languages:
                    problems.append(f"templates.{name}.{lang}: not one of languages {list(self.languages)}")
                    continue
                try:
                    compile_template(text)
                except TemplateSyntaxError as exc:
                    problems.append(f"templates.{name}.{lang} does not parse: {exc.message}")
        problems.extend(_faq_problems(self.faq, self.languages))
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.company.timezone)


def _describe(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _fix_for(loc: tuple[int | str, ...], error_type: str) -> str:
    """Find the Field description along loc: it says what a valid value looks like."""
    if error_type == "extra_forbidden":
        return "remove it or correct its spelling"
    model: Any = Settings
    description = None
    for part in loc:
        fields = getattr(model, "model_fields", None)
        if not fields or part not in fields:
            break
        info = fields[part]
        description = info.description or description
        annotation = info.annotation
        model = next(
            (arg for arg in getattr(annotation, "__args__", (annotation,)) if hasattr(arg, "model_fields")),
            annotation,
        )
    return f"use {description}" if description else "see config.yml in the repository for a valid example"


def settings_from_mapping(raw: Mapping[str, Any], environ: Mapping[str, str], source: str) -> Settings:
    data = dict(raw)
    channels = {name: dict(section or {}) for name, section in dict(data.get("channels") or {}).items()}
    for variable, (sections, key) in SECRET_ENV.items():
        for section in (sections,) if isinstance(sections, str) else sections:
            if key in channels.get(section, {}):
                raise ConfigError(
                    f"Invalid configuration in {source}:\n  - channels.{section}.{key}: secrets must not be in "
                    f"the file. Fix: remove it and set the {variable} environment variable."
                )
            if environ.get(variable):
                channels.setdefault(section, {})[key] = environ[variable]
    if channels:
        data["channels"] = channels
    slack = dict(data.get("slack") or {})
    for variable, key in SLACK_SECRET_ENV.items():
        if key in slack:
            raise ConfigError(
                f"Invalid configuration in {source}:\n  - slack.{key}: secrets must not be in the file. "
                f"Fix: remove it and set the {variable} environment variable."
            )
        if environ.get(variable):
            slack[key] = environ[variable]
    if slack:
        data["slack"] = slack
    server = dict(data.get("server") or {})
    if "api_token" in server:
        raise ConfigError(
            f"Invalid configuration in {source}:\n  - server.api_token: secrets must not be in the file. "
            "Fix: remove it and set the SAPA_API_TOKEN environment variable."
        )
    if environ.get("SAPA_API_TOKEN"):
        data["server"] = {**server, "api_token": environ["SAPA_API_TOKEN"]}
    if "metrics_token" in server:
        raise ConfigError(
            f"Invalid configuration in {source}:\n  - server.metrics_token: secrets must not be in the file. "
            "Fix: remove it and set the SAPA_METRICS_TOKEN environment variable."
        )
    if environ.get("SAPA_METRICS_TOKEN"):
        data["server"] = {**dict(data.get("server") or {}), "metrics_token": environ["SAPA_METRICS_TOKEN"]}
    if environ.get("DATABASE_URL"):
        data["database"] = {**dict(data.get("database") or {}), "url": environ["DATABASE_URL"]}
    media_links = dict(data.get("media_links") or {})
    if "secret" in media_links:
        raise ConfigError(
            f"Invalid configuration in {source}:\n  - media_links.secret: secrets must not be in the file. "
            "Fix: remove it and set the SAPA_MEDIA_LINK_SECRET environment variable."
        )
    if environ.get("SAPA_MEDIA_LINK_SECRET"):
        if len(environ["SAPA_MEDIA_LINK_SECRET"]) < 32:  # checked here: a validation error would quote the value
            raise ConfigError(
                f"Invalid configuration in {source}:\n  - SAPA_MEDIA_LINK_SECRET is shorter than 32 characters. "
                "Fix: set it to a long random value, e.g. the output of `openssl rand -hex 32`."
            )
        data["media_links"] = {**media_links, "secret": environ["SAPA_MEDIA_LINK_SECRET"]}
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        lines = [f"Invalid configuration in {source}:"]
        for err in exc.errors():
            loc = tuple(err["loc"])
            got = f" (got {err['input']!r})" if err["type"] != "missing" and not isinstance(
                err.get("input"), dict
            ) else ""
            lines.append(f"  - {_describe(loc)}: {err['msg']}{got}. Fix: {_fix_for(loc, err['type'])}.")
        raise ConfigError("\n".join(lines)) from None


def load_settings(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read config.yml (or SAPA_CONFIG, or the given path) and apply environment overrides."""
    env = os.environ if environ is None else environ
    config_path = Path(path or env.get("SAPA_CONFIG") or "config.yml")
    if not config_path.is_file():
        raise ConfigError(
            f"Configuration file {config_path} not found. Fix: run from the project folder, "
            "or point SAPA_CONFIG (or --config) at your config.yml."
        )
    raw = _interpolate(_read_layered(config_path, set()), env, str(config_path), ())
    return settings_from_mapping(raw, env, str(config_path))


# `${NAME}` or `${NAME:-default}` in a config value is replaced by that environment variable, so one file can follow
# what differs per run (the ports of `sapa serve` and `sapa fake-providers`: config.local-channels.yml).
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _interpolate(value: Any, environ: Mapping[str, str], source: str, where: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        return {key: _interpolate(item, environ, source, (*where, str(key))) for key, item in value.items()}
    if isinstance(value, list):
        return [_interpolate(item, environ, source, (*where, str(i))) for i, item in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if environ.get(name):
            return environ[name]
        if default is None:
            raise ConfigError(f"Invalid configuration in {source}:\n  - {'.'.join(where)}: uses ${{{name}}}, which is "
                              f"not set. Fix: set the {name} environment variable, or write ${{{name}:-DEFAULT}}.")
        return default

    replaced = _ENV_REFERENCE.sub(replace, value)
    if _ENV_REFERENCE.fullmatch(value):  # the whole value: "${SAPA_PORT:-8000}" is the number 8000
        try:
            typed = yaml.safe_load(replaced)
        except yaml.YAMLError:
            return replaced
        return typed if isinstance(typed, str | int | float | bool) else replaced
    return replaced


def _read_layered(path: Path, seen: set[Path]) -> dict[str, Any]:
    """A file may say `extends: other.yml` (relative to itself) and change only what differs."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}. Fix: correct the indentation or quoting.") from None
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read: {exc.strerror}. Fix: check the path.") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of keys (company:, database:, ...).")
    base_name = raw.pop("extends", None)
    if base_name is None:
        return raw
    base_path = (path.parent / str(base_name)).resolve()
    if base_path in seen:
        raise ConfigError(f"{path}: extends {base_name} makes a loop. Fix: point extends at the base config.")
    return _deep_merge(_read_layered(base_path, seen | {path.resolve()}), raw)


def _deep_merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
