"""CRM-4.1 / CRM-4.3: `sapa segment ...` and `sapa broadcast ...` against a real database."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner
from sqlalchemy import select

from bot.cli import main
from store.models import Task

ROOT = Path(__file__).resolve().parents[2]
ENV = {"TELEGRAM_BOT_TOKEN": "1:x", "TELEGRAM_WEBHOOK_SECRET": "secret-x"}


def sapa(db_url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--config", str(ROOT / "config.yml"), *args], env={"DATABASE_URL": db_url})
    return result.exit_code, result.output


def test_crm_4_1_cli_segments(db_url):
    code, out = sapa(db_url, "segment", "create", "loyal", "--filter", "segment=loyal,champions")
    assert code == 0 and "segment loyal: segment=loyal,champions" in out and "0 customers match" in out
    code, out = sapa(db_url, "segment", "create", "bad", "--filter", "colour=red")
    assert code == 1 and "error: unknown filter 'colour'" in out
    assert "loyal: segment=loyal,champions (by cli)" in sapa(db_url, "segment", "list")[1]
    assert "0 may receive marketing" in sapa(db_url, "segment", "show", "loyal")[1]
    assert sapa(db_url, "segment", "delete", "loyal")[0] == 0
    code, out = sapa(db_url, "segment", "show", "loyal")
    assert code == 1 and "no segment named 'loyal'" in out


def test_crm_4_3_cli_broadcast_lifecycle(db_url, database, tmp_path):
    raw = yaml.safe_load((ROOT / "config.yml").read_text())
    raw["channels"]["telegram"] = {"enabled": True}
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump(raw, allow_unicode=True))

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, ["--config", str(config), *args], env={"DATABASE_URL": db_url, **ENV})
        return result.exit_code, result.output

    code, out = run("broadcast", "create", "Promo", "--filter", "vip=true", "--channels", "webchat",
                    "--message-id", "Halo {{ name }}")
    assert code == 1 and "web chat cannot receive broadcasts" in out
    code, out = run("broadcast", "create", "Promo", "--segment", "none", "--channels", "telegram",
                    "--message-id", "Halo {{ name }}")
    assert code == 1 and "no saved segment named 'none'" in out
    code, out = run("broadcast", "create", "Promo", "--filter", "vip=true", "--channels", "telegram",
                    "--message-id", "Halo {{ name }}, promo!", "--message-en", "Hi {{ name }}, an offer!",
                    "--at", "2026-12-24T10:00")
    assert code == 0 and "broadcast #1 created (draft)" in out and "0 customers match" in out
    assert "[en] Hi Budi Santoso, an offer!" in out
    code, out = run("broadcast", "schedule", "1")
    assert code == 0 and "scheduled for 2026-12-24T10:00:00+07:00 (scheduled)" in out
    assert run("broadcast", "pause", "1")[1].strip() == "broadcast #1 is now paused"
    assert run("broadcast", "resume", "1")[1].strip() == "broadcast #1 is now scheduled"
    assert run("broadcast", "cancel", "1")[1].strip() == "broadcast #1 is now cancelled"
    code, out = run("broadcast", "resume", "1")
    assert code == 1 and "broadcast #1 is cancelled: cannot resume" in out
    assert "Broadcast #1 Promo: cancelled" in run("broadcast", "status", "1")[1]
    assert run("broadcast", "list")[1].strip() == "#1 Promo: cancelled"
    with database.unit_of_work(read_only=True) as session:
        tasks = [(t.kind, t.status) for t in session.execute(select(Task).order_by(Task.id)).scalars()]
    assert tasks == [("broadcast.select", "cancelled")] * 2  # scheduled, then again on resume: both withdrawn


def test_crm_4_3_customer_import_takes_a_timezone_for_quiet_hours(db_url, database, tmp_path):
    from store.models import Customer

    path = tmp_path / "customers.csv"
    path.write_text("name,phone,timezone\nYanti,081234500001,Asia/Jayapura\nBambang,081234500002,Mars/Olympus\n"
                    "Sari,081234500003,\n", encoding="utf-8")
    code, out = sapa(db_url, "customers", "import", str(path))
    assert code == 0 and "timezone 'Mars/Olympus' is not an IANA time zone" in out
    with database.unit_of_work(read_only=True) as session:
        zones = {c.name: c.timezone for c in session.execute(select(Customer)).scalars()}
    assert zones == {"Yanti": "Asia/Jayapura", "Sari": None}  # the bad row is reported and skipped
