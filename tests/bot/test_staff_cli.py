"""`sapa staff add|list|disable|reset-password` and the set-up link `sapa serve` prints on a fresh install."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner
from sqlalchemy import select

from bot.cli import main
from bot.cli.staff import announce_setup_link
from bot.console import auth
from store import staff as staff_store
from store.models import AuditEntry, StaffSession

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def shell_user(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr("getpass.getuser", lambda: "dewi")
    monkeypatch.setattr(auth, "HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    yield "dewi"


def sapa(db_url: str, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--config", str(ROOT / "config.yml"), *args], env={"DATABASE_URL": db_url},
                                input=stdin)
    return result.exit_code, result.output


def audits(database: Any) -> list[tuple[str, str]]:
    with database.unit_of_work(read_only=True) as session:
        return [(e.actor, e.action) for e in session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars()]


def test_add_prints_a_one_time_link(db_url: str, database: Any) -> None:
    code, out = sapa(db_url, "staff", "add", "Rina Wati", "Rina@Contoh.ID", "--role", "customer_service",
                     "--slack-user", "U0RINA")
    assert code == 0, out
    assert "added staff #1 Rina Wati <rina@contoh.id> as customer_service" in out
    link = out.strip().splitlines()[-1]
    assert link.startswith("http://127.0.0.1:8000/console/reset?token=")
    with database.unit_of_work(read_only=True) as session:
        member = staff_store.find_by_email(session, "rina@contoh.id")
        assert member is not None and member.slack_user_id == "U0RINA" and member.password_hash is None
        token = link.split("token=")[1]
        assert staff_store.valid_token(session, token, purpose="reset", now=member.created_at) is not None
    assert audits(database) == [("cli:dewi", "staff.added")]


def test_add_with_a_password_from_stdin(db_url: str, database: Any) -> None:
    code, out = sapa(db_url, "staff", "add", "Ayu", "ayu@contoh.id", "--role", "admin", "--password-stdin",
                     stdin="gado-gado-enak\n")
    assert code == 0, out
    assert "token=" not in out and "they sign in at http://127.0.0.1:8000/console/sign-in" in out
    with database.unit_of_work(read_only=True) as session:
        member = staff_store.find_by_email(session, "ayu@contoh.id")
        assert member is not None and member.password_hash is not None
        assert member.password_hash.startswith("$argon2id$")
        assert staff_store.admin_can_sign_in(session)


@pytest.mark.parametrize(("args", "stdin", "code", "message"), [
    (["--role", "boss"], None, 2, "'boss' is not one of"),
    (["--role", "admin", "--password-stdin"], "short\n", 2, "the password needs at least 10 characters"),
    (["--role", "admin", "--slack-user", "rina"], None, 2, "is not a Slack user id"),
])
def test_add_refuses_bad_arguments(db_url: str, database: Any, args: list[str], stdin: str | None, code: int,
                                   message: str) -> None:
    exit_code, out = sapa(db_url, "staff", "add", "Ayu", "ayu@contoh.id", *args, stdin=stdin)
    assert exit_code == code and message in out
    with database.unit_of_work(read_only=True) as session:
        assert staff_store.list_staff(session) == []


def test_add_refuses_a_bad_email_and_a_taken_one(db_url: str, database: Any) -> None:
    assert sapa(db_url, "staff", "add", "Ayu", "not-an-email", "--role", "admin")[0] == 2
    assert sapa(db_url, "staff", "add", "Ayu", "ayu@contoh.id", "--role", "admin")[0] == 0
    code, out = sapa(db_url, "staff", "add", "Ayu Lain", "AYU@contoh.id", "--role", "marketing")
    assert code == 1 and "a member of staff already has the email ayu@contoh.id" in out


def test_list_shows_everyone(db_url: str, database: Any) -> None:
    sapa(db_url, "staff", "add", "Rina", "rina@contoh.id", "--role", "customer_service")
    sapa(db_url, "staff", "add", "Ayu", "ayu@contoh.id", "--role", "admin", "--password-stdin",
         stdin="gado-gado-enak\n")
    code, out = sapa(db_url, "staff", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["id", "name", "email", "role", "slack", "status", "last", "seen"]
    assert any(line.split()[:5] == ["2", "Ayu", "ayu@contoh.id", "admin", "-"] for line in lines)
    assert any("rina@contoh.id" in line and "active, no password" in line for line in lines)
    code, out = sapa(db_url, "staff", "list", "--json")
    rows = json.loads(out)
    assert [(r["name"], r["role"], r["has_password"]) for r in rows] == [("Ayu", "admin", True),
                                                                         ("Rina", "customer_service", False)]


def test_disable_ends_their_sessions(db_url: str, database: Any) -> None:
    sapa(db_url, "staff", "add", "Rina", "rina@contoh.id", "--role", "customer_service", "--password-stdin",
         stdin="gado-gado-enak\n")
    with database.unit_of_work() as session:
        member = staff_store.find_by_email(session, "rina@contoh.id")
        assert member is not None
        staff_store.create_session(session, member, now=member.created_at, lifetime=timedelta(hours=1),
                                   address="127.0.0.1", user_agent=None)
    code, out = sapa(db_url, "staff", "disable", "RINA@contoh.id")
    assert code == 0 and "disabled staff #1 Rina; 1 signed-in browser(s) signed out" in out
    with database.unit_of_work(read_only=True) as session:
        member = staff_store.find_by_email(session, "rina@contoh.id")
        assert member is not None and not member.active
        assert session.execute(select(StaffSession)).first() is None
    assert ("cli:dewi", "staff.disabled") in audits(database)


def test_unknown_emails_are_an_error(db_url: str, database: Any) -> None:
    for command in ("disable", "reset-password"):
        code, out = sapa(db_url, "staff", command, "nobody@contoh.id")
        assert code == 1 and "no staff member has the email 'nobody@contoh.id'" in out


def test_reset_password_prints_a_new_link_and_ends_the_old_password(db_url: str, database: Any) -> None:
    sapa(db_url, "staff", "add", "Rina", "rina@contoh.id", "--role", "customer_service", "--password-stdin",
         stdin="gado-gado-enak\n")
    code, out = sapa(db_url, "staff", "reset-password", "rina@contoh.id")
    assert code == 0
    assert "Rina's old password no longer works" in out
    token = out.strip().splitlines()[-1].split("token=")[1]
    with database.unit_of_work(read_only=True) as session:
        member = staff_store.find_by_email(session, "rina@contoh.id")
        assert member is not None and member.password_hash is None
        assert staff_store.valid_token(session, token, purpose="reset", now=member.created_at) is not None
    assert ("cli:dewi", "staff.reset_issued") in audits(database)


def test_serve_prints_a_set_up_link_until_an_admin_exists(sapa_app: Any, capsys: pytest.CaptureFixture[str],
                                                         caplog: pytest.LogCaptureFixture) -> None:
    url = announce_setup_link(sapa_app, host="0.0.0.0", port=8010)
    assert url is not None and url.startswith("http://127.0.0.1:8010/console/setup?token=")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no admin can sign in to the Sapa console yet" in err and url in err
    assert url.split("token=")[1] not in caplog.text  # printed for the operator, never in a log
    with sapa_app.database.unit_of_work() as session:
        staff_store.create_staff(session, name="Ayu", email="ayu@contoh.id", role="admin", roles=("admin",),
                                 now=sapa_app.clock.now(), password_hash=auth.hash_password("gado-gado-enak"))
    assert announce_setup_link(sapa_app, host=None, port=None) is None
    assert capsys.readouterr().err == ""


def test_the_set_up_link_uses_the_public_url(sapa_app: Any, capsys: pytest.CaptureFixture[str]) -> None:
    server = sapa_app.settings.server.model_copy(update={"public_base_url": "https://sapa.contoh.id/"})
    sapa_app.settings = sapa_app.settings.model_copy(update={"server": server})
    url = announce_setup_link(sapa_app, host="0.0.0.0", port=8010)
    assert url is not None and url.startswith("https://sapa.contoh.id/console/setup?token=")


@pytest.fixture
def sapa_app(sapa: Any) -> Any:
    return sapa


def test_slack_agents_may_have_every_role_the_console_knows() -> None:
    from typing import get_args

    from bot.config import AgentRole
    from handlers.permissions import ROLES

    assert get_args(AgentRole) == ROLES
