"""Logs never carry full phone numbers, tokens or web chat session ids."""

from __future__ import annotations

import logging

from bot.logs import RedactingFilter, redact


def test_phone_numbers_are_masked():
    assert redact("sent to +6281234567890 ok") == "sent to +62********890 ok"
    assert redact("from 0812-3456-7890") == "from 08*******890"


def test_dates_and_times_are_not_mistaken_for_phone_numbers():
    line = 'Execution of job "tick (next run at: 2026-12-02 01:00:29 UTC)" skipped; call 0812-3456-7890'
    assert redact(line) == 'Execution of job "tick (next run at: 2026-12-02 01:00:29 UTC)" skipped; call 08*******890'


def test_tokens_are_removed():
    assert "[secret]" in redact("token 123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ1 used")
    assert "[secret]" in redact("slack xoxb-1234567890-abcdefghij")


def test_session_ids_in_paths_are_shortened():
    line = '"GET /api/webchat/sessions/gQmp5U49SYgDdgMzaMXrh5FKQmwXHQhi/messages HTTP/1.1"'
    assert "gQmp5U49SYgDdgMzaMXrh5FKQmwXHQhi" not in redact(line)


def test_filter_rewrites_records(caplog):
    logger = logging.getLogger("sapa.test")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="sapa.test"):
        logger.info("customer %s wrote", "+6281234567890")
    assert "+6281234567890" not in caplog.text
    assert "+62********890" in caplog.text
