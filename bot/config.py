"""The one validated settings object, loaded from config.yml plus environment variables.

Secrets never live in the file: DATABASE_URL and channel tokens come from the environment.
A bad config raises ConfigError naming the key and the fix, and start-up stops there.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from jinja2 import TemplateSyntaxError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.templating import compile_template

Language = Literal["id", "en"]

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
    "button_agent",
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


class WebchatConfig(_Section):
    enabled: bool = Field(True, description="true or false")
    max_text_length: int = Field(2000, ge=1, le=20000, description="the longest message accepted, 1..20000")


class ChannelsConfig(_Section):
    webchat: WebchatConfig | None = Field(
        default_factory=WebchatConfig, description="web chat settings (enabled, max_text_length)"
    )


class NluConfig(_Section):
    backend: Literal["embedded"] = Field("embedded", description="the NLU backend: embedded")
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
    if environ.get("DATABASE_URL"):
        data["database"] = {**dict(data.get("database") or {}), "url": environ["DATABASE_URL"]}
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
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"{config_path} is not valid YAML: {exc}. Fix: correct the indentation or quoting."
        ) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{config_path} must hold a mapping of keys (company:, database:, ...).")
    return settings_from_mapping(raw, env, str(config_path))
