"""Logging set-up: phone numbers and tokens never reach a log line in full."""

from __future__ import annotations

import logging
import re

from bot.contacts import mask_phone

# Not a date and time ("2026-12-02 01:00:29" has the shape of a dashed phone number, but is not one).
_PHONE = re.compile(r"(?<![\w/])(?!\d{4}-\d\d-\d\d\b)\+?\d[\d\- ]{8,16}\d(?!\w)")
_SESSION_PATH = re.compile(r"(/api/webchat/sessions/)[A-Za-z0-9_-]{6}[A-Za-z0-9_-]+")
_TOKEN = re.compile(r"\b(\d{6,12}:[A-Za-z0-9_-]{30,}|xox[abprs]-[A-Za-z0-9-]{10,}|AC[0-9a-f]{32})\b")


def redact(text: str) -> str:
    text = _TOKEN.sub("[secret]", text)
    text = _SESSION_PATH.sub(lambda m: m.group(0)[: len(m.group(1)) + 6] + "…", text)
    return _PHONE.sub(lambda m: mask_phone(re.sub(r"[\- ]", "", m.group(0))), text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # The SDKs log whole requests (numbers, bodies) at INFO: keep them to warnings.
    for name in ("twilio.http_client", "httpx", "httpcore", "telegram", "slack_sdk", "slack_bolt"):
        logging.getLogger(name).setLevel(logging.WARNING)
