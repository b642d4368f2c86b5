"""Logging set-up: personal data and credentials never reach a log line in full.

`RedactingFilter` sits on the handler (not on a logger), so every record that reaches the handler passes it,
whichever logger made it (ours, uvicorn's access log, SQLAlchemy, the SDKs). It rewrites everything a record
can carry into the output: the message with its arguments, the exception text (formatted here, redacted, kept
in `exc_text`; `exc_info` is cleared so no formatter formats it again) and the stack. `redact` masks phone
numbers and e-mail addresses, shortens web chat session ids (the only credential of a chat), drops SQLAlchemy's
`[parameters: …]` block and PostgreSQL's `DETAIL: Key (…)=(…)` values (customer data), masks query-string
values, and removes tokens: Telegram bot tokens, Slack `xox…` tokens and signatures, Twilio account sids,
bearer tokens, signature headers, `token=`/`secret=`-style values and, literally, every secret value the
settings were given (`secret_values`, registered by `configure_logging` or `add_secrets`).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Any

from bot.contacts import mask_phone

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MIN_SECRET_LENGTH = 8  # a shorter configured value would blank out ordinary words; tokens are longer
SECRET = "[secret]"
MASK = "***"

# Not a date and time ("2026-12-02 01:00:29" has the shape of a dashed phone number, but is not one).
_PHONE = re.compile(r"(?<![\w/])(?!\d{4}-\d\d-\d\d\b)(?:\+?\d[\d\- ]{8,16}\d|\+\d{9}|08\d{7}|628\d{6})(?!\w)")
_URLSAFE = "A-Za-z0-9_-"
# A web chat session id is secrets.token_urlsafe(24): 32 URL-safe characters, in practice with both cases.
SESSION_ID = re.compile(rf"(?<![{_URLSAFE}])(?=[{_URLSAFE}]*[A-Z])(?=[{_URLSAFE}]*[a-z])[{_URLSAFE}]{{32}}"
                        rf"(?![{_URLSAFE}])")
_SESSION_PATH = re.compile(rf"(/api/webchat/sessions/)([{_URLSAFE}]{{7,}})")
_TOKEN = re.compile(r"(?<![\w:])(\d{6,12}:[A-Za-z0-9_-]{30,}"  # Telegram bot token (also inside /bot<token>/)
                    r"|xox[abprse]-[A-Za-z0-9-]{10,}"  # Slack tokens
                    r"|v0=[0-9a-f]{64}"  # Slack request signature
                    r"|AC[0-9a-f]{32})(?![\w-])")  # Twilio account sid
_TELEGRAM_IN_URL = re.compile(r"(/bot)\d{6,12}:[A-Za-z0-9_-]+")
EMAIL = re.compile(r"(?<![\w.+%-])([A-Za-z0-9])[A-Za-z0-9._%+-]*@((?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,})\b")
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^/\s@]+@")
_HEADER = re.compile(r"(?i)\b(authorization|proxy-authorization|cookie|x-twilio-signature|x-slack-signature"
                     r"|x-telegram-bot-api-secret-token|x-api-key)(['\"]?\s*[:=]\s*['\"]?)([^'\"\r\n,}]+)")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+(?!\[secret\])[A-Za-z0-9._~+/=-]{6,}")
_KEY_VALUE = re.compile(r"(?i)\b([\w-]*(?:token|secret|password|passwd|signature|api[_-]?key|session_id|sig))\b"
                        r"(['\"]?\s*[:=]\s*['\"]?)(?![\[*])([^\s'\",;&})\]]+)")
# A query string after a path or host: names stay, values go (?token=…, ?sig=…, signed media links).
_QUERY = re.compile(r"(?<=[\w/.~%-])\?([^\s\"'<>#]+)")
_QUERY_VALUE = re.compile(r"=[^&;]*")
# SQLAlchemy's exception text: "[parameters: {...}]" holds the bound values, i.e. customer data.
_SQL_PARAMETERS = re.compile(r"\[(?:SQL )?parameters: [^\n]*")
# PostgreSQL's details quote row values: "Key (phone)=(+62…) already exists", "Failing row contains (…)".
_PG_KEY = re.compile(r"(Key \((?:[^()\n]|\([^()\n]*\))*\)=)\([^\n]*")
_PG_ROW = re.compile(r"(Failing row contains )\([^\n]*")

_secrets_lock = threading.Lock()
_secrets: tuple[str, ...] = ()


def add_secrets(values: Iterable[str | None]) -> None:
    """Redact these values literally from now on (values shorter than MIN_SECRET_LENGTH are ignored)."""
    global _secrets
    with _secrets_lock:
        known = set(_secrets) | {value for value in values if value and len(value) >= MIN_SECRET_LENGTH}
        _secrets = tuple(sorted(known, key=len, reverse=True))  # longest first: one may contain another


def secret_values(settings: Any) -> set[str]:
    """Every SecretStr in these settings, and the password of the database URL."""
    from pydantic import BaseModel, SecretStr

    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, SecretStr):
            found.add(value.get_secret_value())
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, (list, tuple, set, frozenset)):
            for item in value:
                walk(item)

    walk(settings)
    database = getattr(settings, "database", None)
    url = getattr(database, "url", None)
    if isinstance(url, str):
        match = re.match(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:([^/\s@]+)@", url)
        if match:
            found.add(match.group(1))
    return found


def _mask_session(match: re.Match[str]) -> str:
    return match.group(0)[:6] + "…"


def _mask_query(match: re.Match[str]) -> str:
    return "?" + _QUERY_VALUE.sub(lambda m: "=" + MASK if len(m.group(0)) > 1 else "=", match.group(1))


def redact(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, SECRET)
    text = _SQL_PARAMETERS.sub("[parameters redacted]", text)
    text = _PG_KEY.sub(r"\1([redacted])", text)
    text = _PG_ROW.sub(r"\1([redacted])", text)
    text = _URL_PASSWORD.sub(r"\1" + MASK + "@", text)
    text = _TELEGRAM_IN_URL.sub(r"\1" + SECRET, text)
    text = _TOKEN.sub(SECRET, text)
    text = _HEADER.sub(r"\1\2" + SECRET, text)
    text = _BEARER.sub(r"\1 " + SECRET, text)
    text = _QUERY.sub(_mask_query, text)
    text = _KEY_VALUE.sub(r"\1\2" + MASK, text)
    text = _SESSION_PATH.sub(lambda m: m.group(1) + m.group(2)[:6] + "…", text)
    text = SESSION_ID.sub(_mask_session, text)
    text = EMAIL.sub(r"\1" + MASK + r"@\2", text)
    return _PHONE.sub(lambda m: mask_phone(re.sub(r"[\- ]", "", m.group(0))), text)


_exception_formatter = logging.Formatter()


class RedactingFilter(logging.Filter):
    """Rewrites the record in place: put it on the handler, so every record that handler writes passes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it; still no arguments in the clear
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info:
            text = record.exc_text or _exception_formatter.formatException(record.exc_info)
            record.exc_text, record.exc_info = redact(text), None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def formatter() -> logging.Formatter:
    return logging.Formatter(FORMAT)


# The SDKs log whole requests (numbers, bodies) at INFO: keep them to warnings.
QUIET = ("twilio.http_client", "httpx", "httpcore", "telegram", "slack_sdk", "slack_bolt")


def quiet_libraries() -> None:
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)


def configure_logging(level: str = "INFO", secrets: Iterable[str | None] = ()) -> None:
    """One handler on the root logger, formatted and redacted; uvicorn's loggers propagate to it."""
    add_secrets(secrets)
    handler = logging.StreamHandler()
    handler.setFormatter(formatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    quiet_libraries()
