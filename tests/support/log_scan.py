"""A pytest plugin: the whole suite's logs, written as production writes them, must hold no personal data.

For the whole session a handler on the root logger formats every record that is emitted (DEBUG upward, with
exceptions and stacks) with production's formatter and RedactingFilter from bot/logs.py, and writes it to
var/test-logs/suite.log (truncated at the start). At the end the file, and every `sapa serve` log the tests'
subprocesses wrote under the session's temporary directory, is scanned for full phone numbers, e-mail addresses,
web chat session ids and the tests' secrets; a finding fails the session (exit status 1) and is listed.

The handler redacts a copy of each record, so caplog and the other handlers see the records unchanged. The root
level becomes INFO, as in production (`configure_logging`), with the same SDK loggers kept to warnings; records
below the root's level are not emitted at all.
"""

from __future__ import annotations

import copy
import fcntl
import logging
import os
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from bot.logs import SESSION_ID, RedactingFilter, formatter, quiet_libraries

ROOT = Path(__file__).resolve().parents[2]
LOG_DIR = ROOT / "var" / "test-logs"
MAX_SHOWN = 40
MAX_LINE = 300

# Unmasked phone numbers: +<country>…, 08… (Indonesian national) or 628… with at least 9 digits. Not inside a
# word (Twilio sids, hex ids), not a date ("2026-12-02"), not a masked number ("+62********890").
_PHONE = re.compile(r"(?<![\w+*.-])(?:\+|0(?=8)|62(?=8))\d(?:[ -]?\d)*(?![\w*])")
_EMAIL = re.compile(r"(?<![\w.+%-])[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}\b")
_DATE = re.compile(r"\d{4}-\d\d-\d\d")


class _RedactingCopyHandler(logging.FileHandler):
    """Filters (and so redacts) a copy: the record other handlers (caplog) see stays as it was logged."""

    def handle(self, record: logging.LogRecord) -> bool:
        return bool(super().handle(copy.copy(record)))


_handler: _RedactingCopyHandler | None = None
_report: list[tuple[str, dict[str, bool]]] = []
_lock_file: IO[str] | None = None


def _log_path() -> Path:
    """var/test-logs/suite.log, or suite-<pid>.log while another session in this tree holds suite.log."""
    global _lock_file
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    _lock_file = (LOG_DIR / "suite.lock").open("w")
    try:
        fcntl.flock(_lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return LOG_DIR / f"suite-{os.getpid()}.log"
    return LOG_DIR / "suite.log"


def _attach() -> None:
    root = logging.getLogger()
    if _handler is not None and _handler not in root.handlers:
        root.addHandler(_handler)  # `sapa` CLI tests run configure_logging, which replaces the root's handlers
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)


def pytest_sessionstart(session: pytest.Session) -> None:
    global _handler
    if getattr(session.config, "workerinput", None) is not None:
        return
    _handler = _RedactingCopyHandler(_log_path(), mode="w", encoding="utf-8")
    _handler.setLevel(logging.DEBUG)
    _handler.setFormatter(formatter())
    _handler.addFilter(RedactingFilter())
    quiet_libraries()
    _attach()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _attach()


def known_secrets() -> set[str]:
    """The secrets the tests give Sapa: the support modules' and every test module's *TOKEN* / *SECRET* constants."""
    from tests.support import providers, slack

    found: set[str] = set(providers.SECRETS.values()) | set(slack.SECRETS.values())
    found |= {providers.TWILIO_TOKEN, slack.SIGNING_SECRET, providers.TELEGRAM_SECRET}
    for name, module in list(sys.modules.items()):
        if not name.startswith("tests.") or module is None:
            continue
        for attribute, value in list(vars(module).items()):
            if not re.search(r"TOKEN|SECRET", attribute):
                continue
            values: Iterable[Any] = value.values() if isinstance(value, dict) else [value]
            found |= {v for v in values if isinstance(v, str)}
    found -= {providers.TWILIO_SID}  # an account sid is an identifier, not a credential (and is redacted anyway)
    return {value for value in found if len(value) >= 8}


def findings(lines: Iterable[str], secrets: set[str]) -> Iterator[tuple[str, str]]:
    """(what, line) for each line that carries personal data or a secret in the clear."""
    for line in lines:
        for match in _PHONE.finditer(line):
            digits = re.sub(r"\D", "", match.group(0))
            if len(digits) >= 9 and not _DATE.fullmatch(match.group(0)):
                yield "phone number", line
                break
        if _EMAIL.search(line):
            yield "e-mail address", line
        if SESSION_ID.search(line):
            yield "web chat session id", line
        for secret in secrets:
            if secret in line:
                yield "secret", line
                break


def _scan(path: Path, secrets: set[str]) -> list[tuple[str, str]]:
    try:
        with path.open(encoding="utf-8", errors="replace") as file:
            return list(findings(file, secrets))
    except OSError:
        return []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _handler
    if _handler is None:
        return
    logging.getLogger().removeHandler(_handler)
    _handler.close()
    path = Path(_handler.baseFilename)
    _handler = None
    secrets = known_secrets()
    found = [(str(path.relative_to(ROOT)), what, line) for what, line in _scan(path, secrets)]
    basetemp = session.config._tmp_path_factory.getbasetemp() if hasattr(session.config, "_tmp_path_factory") \
        else None
    servers = sorted({log.resolve() for log in basetemp.rglob("serve.log")}) \
        if basetemp is not None and basetemp.is_dir() else []  # resolved: pytest's "…current" links
    for server_log in servers:
        found += [(str(server_log), what, line) for what, line in _scan(server_log, secrets)]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")

    def say(text: str, **markup: bool) -> None:  # shown in the terminal summary, else on stderr now
        if reporter is not None:
            _report.append((text, markup))
        else:
            print(text, file=sys.stderr)

    if not found:
        say(f"log scan: no personal data or secrets in {path.relative_to(ROOT)} "
            f"and {len(servers)} `sapa serve` log(s)", green=True)
        if path.name != "suite.log":  # another session held suite.log: this one's private file is not kept
            path.unlink(missing_ok=True)
        return
    say(f"log scan: {len(found)} log line(s) carry personal data or secrets in the clear", red=True, bold=True)
    for where, what, line in found[:MAX_SHOWN]:
        text = line.rstrip("\n")
        say(f"  [{what}] {where}: {text[:MAX_LINE]}{'…' if len(text) > MAX_LINE else ''}")
    if len(found) > MAX_SHOWN:
        say(f"  … and {len(found) - MAX_SHOWN} more")
    session.exitstatus = 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _report:
        terminalreporter.write_sep("-", "log scan")
    for text, markup in _report:
        terminalreporter.write_line(text, **markup)
