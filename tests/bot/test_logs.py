"""Logs never carry full phone numbers, tokens or web chat session ids."""

from __future__ import annotations

import logging

from bot.logs import RedactingFilter, redact


def test_phone_numbers_are_masked():
    assert redact("sent to +6281234567890 ok") == "sent to +62********890 ok"
    assert redact("from 0812-3456-7890") == "from 08*******890"
    assert redact("short 081234567, +628123456; amount 150000000") == "short 08****567, +62****456; amount 150000000"


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


def _emit(logger_name: str, *args: object, exception: BaseException | None = None, **kwargs: object) -> str:
    """What production's handler (configure_logging's formatter and filter) writes for one record."""
    import io

    from bot.logs import formatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter())
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        if exception is not None:
            try:
                raise exception
            except BaseException:
                logger.exception(*args, **kwargs)  # type: ignore[arg-type]
        else:
            logger.info(*args, **kwargs)  # type: ignore[arg-type]
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    return stream.getvalue()


def test_sqlalchemy_parameters_never_reach_the_log():
    from sqlalchemy.exc import IntegrityError

    class UniqueViolation(Exception):
        pass

    error = IntegrityError(
        "INSERT INTO customers (phone, email) VALUES (%(phone)s, %(email)s)",
        {"phone": "+6281234567890", "email": "budi@example.com", "text": "alamat saya Jl. Mawar 5"},
        UniqueViolation('duplicate key value violates unique constraint "uq_phone"\n'
                        "DETAIL:  Key (phone)=(+6281234567890) already exists."),
    )
    out = _emit("sapa.test.db", "saving customer %s failed", "+6281234567890", exception=error)
    assert "Traceback" in out and "IntegrityError" in out and "[SQL: INSERT INTO customers" in out
    assert "[parameters redacted]" in out
    assert "6281234567890" not in out and "Mawar" not in out and "budi@" not in out
    assert "Key (phone)=([redacted])" in out


def test_exception_text_formatted_by_another_handler_is_redacted_too():
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, None)
    record.exc_text = "ValueError: bad number +6281234567890"
    RedactingFilter().filter(record)
    assert record.exc_text == "ValueError: bad number +62********890"


def test_stack_info_is_redacted():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None, sinfo="Stack: send('0812-3456-7890')")
    RedactingFilter().filter(record)
    assert record.stack_info is not None and "3456" not in record.stack_info


def test_access_log_query_values_are_masked():
    # uvicorn.access records: '%s - "%s %s HTTP/%s" %d' with the path and query string as one argument.
    out = _emit("uvicorn.access", '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/media/3/0?token=abc&x=1",
                "1.1", 200)
    assert '"GET /media/3/0?token=***&x=*** HTTP/1.1" 200' in out
    signed = redact("GET /media/12/0?exp=1767225600&sig=Zm9vYmFyYmF6cXV4 HTTP/1.1")
    assert "Zm9vYmFy" not in signed and "?exp=***&sig=***" in signed


def test_emails_keep_first_character_and_domain():
    assert redact("wrote to budi.santoso+vip@example.co.id today") == "wrote to b***@example.co.id today"
    assert redact("db postgresql://postgres@127.0.0.1:5432/sapa") == "db postgresql://postgres@127.0.0.1:5432/sapa"


def test_session_ids_anywhere_are_shortened():
    token = "gQmp5U49SYgDdgMzaMXrh5FKQmwXHQhi"
    for line in (f"webchat message from {token}", f"provider id {token}:c1", f"{{'session_id': '{token}'}}"):
        assert token not in redact(line)
        assert "gQmp5U49" not in redact(line)
    assert redact("test_webchat_session_expires_ok") == "test_webchat_session_expires_ok"  # names are not ids


def test_credentials_are_removed():
    assert "abc.def-123" not in redact("headers {'authorization': 'Bearer abc.def-123'}")
    assert "abc.def-123" not in redact("Authorization: Bearer abc.def-123")
    assert "Zm9vYmFy" not in redact("X-Twilio-Signature: Zm9vYmFyYmF6cXV4")
    slack = "v0=" + "a1" * 32
    assert slack not in redact(f"x-slack-signature={slack}")
    assert "[secret]" in redact("GET https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/getMe")
    assert "s3cr3t" not in redact("DATABASE_URL postgresql://sapa:s3cr3t@db:5432/sapa")


def test_configured_secrets_are_redacted_literally(fakes, monkeypatch):
    import bot.logs
    from bot.logs import add_secrets, secret_values
    from tests.support.slack import desk_settings

    monkeypatch.setattr(bot.logs, "_secrets", ())  # the registry is the process's: put it back afterwards
    values = secret_values(desk_settings("postgresql://sapa:db-password-1@db/sapa", fakes))
    assert "db-password-1" in values
    assert {"test-slack-signing-secret", "123456:TEST-token-for-the-fake"} <= values
    add_secrets(values)
    out = _emit("sapa.test.secrets", "config says %s", "signing with test-slack-signing-secret",
                exception=RuntimeError("bot 123456:TEST-token-for-the-fake refused"))
    assert "test-slack-signing-secret" not in out and "TEST-token-for-the-fake" not in out
    assert out.count("[secret]") == 2


def test_the_suite_log_scan_finds_what_redaction_must_remove_and_nothing_else():
    from tests.support.log_scan import findings

    leaks = ["sent to +6281234567890", "from 0812-3456-7890 ok", "wa 6281234567890", "mail budi@example.com",
             "session gQmp5U49SYgDdgMzaMXrh5FKQmwXHQhi", "key test-slack-signing-secret"]
    clean = ["2026-12-02 01:00:29,123 INFO x: sent to +62********890", "sid SM" + "0" * 32, "order 2026120200123",
             "ticket #08123 for b***@example.com", "gQmp5U… wrote", "test_webchat_session_expires_ok",
             "amount 150000000 at 1767225600"]
    assert [what for what, _ in findings(leaks, {"test-slack-signing-secret"})] == [
        "phone number", "phone number", "phone number", "e-mail address", "web chat session id", "secret"]
    assert list(findings(clean, {"test-slack-signing-secret"})) == []
