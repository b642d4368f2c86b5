"""`sapa customers import`: good rows kept, bad rows reported by line, duplicates merged, not doubled."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from bot.cli import main
from store.models import AuditEntry, Customer

ROOT = Path(__file__).resolve().parents[2]

CSV = """name,phone,email,language
Budi Santoso,0812-3456-7890,budi@example.com,id
Siti Rahma,+62 813 1111 2222,SITI@Example.com,id
John Doe,not-a-phone,john@example.com,en
Ani,0813 1111 2222,,en
Rudi,,rudi@@bad,id
Dewi,0815 5555 6666,dewi@example.com,fr
Budi S.,,budi@example.com,
,,,
Made Wirawan,0817-7777-8888,,
"""


def run_import(db_url: str, path: Path):
    result = CliRunner().invoke(
        main, ["--config", str(ROOT / "config.yml"), "customers", "import", str(path)],
        env={"DATABASE_URL": db_url},
    )
    return result


def customers(database) -> list[Customer]:
    with database.unit_of_work(read_only=True) as session:
        return list(session.execute(select(Customer).order_by(Customer.id)).scalars())


def test_import_keeps_good_rows_reports_bad_ones_and_merges_duplicates(db_url, database, tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text(CSV)
    result = run_import(db_url, path)
    assert result.exit_code == 0, result.output
    assert "line 4: phone 'not-a-phone' is not a valid phone number" in result.output
    assert "line 6: email 'rudi@@bad' is not a valid address" in result.output
    assert "line 7: language 'fr' is not one of id, en" in result.output
    assert "line 9: a row needs a phone or an email" in result.output
    assert "3 new customers, 0 updated, 2 duplicates merged, 4 bad rows skipped" in result.output
    rows = customers(database)
    assert [(c.name, c.phone, c.email, c.language) for c in rows] == [
        ("Budi S.", "+6281234567890", "budi@example.com", "id"),
        ("Ani", "+6281311112222", "siti@example.com", "en"),
        ("Made Wirawan", "+6281777778888", None, None),
    ]
    with database.unit_of_work(read_only=True) as session:
        audit = session.execute(select(AuditEntry)).scalar_one()
    assert audit.action == "customers.import" and audit.detail["created"] == 3


def test_importing_the_same_file_again_updates_instead_of_doubling(db_url, database, tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text(CSV)
    run_import(db_url, path)
    result = run_import(db_url, path)
    assert result.exit_code == 0, result.output
    assert "0 new customers" in result.output
    assert len(customers(database)) == 3


def test_a_file_without_the_required_columns_is_refused(db_url, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("full_name,mobile\nBudi,0812\n")
    result = run_import(db_url, path)
    assert result.exit_code == 2
    assert "missing name, phone" in result.output


def test_customers_show_finds_by_phone_email_and_id(db_url, tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text(CSV)
    run_import(db_url, path)
    for key in ("0812 3456 7890", "budi@example.com", "1"):
        result = CliRunner().invoke(
            main, ["--config", str(ROOT / "config.yml"), "customers", "show", key], env={"DATABASE_URL": db_url}
        )
        assert result.exit_code == 0, result.output
        assert "Customer #1: Budi S." in result.output
        assert "phone:    +6281234567890" in result.output
    result = CliRunner().invoke(
        main, ["--config", str(ROOT / "config.yml"), "customers", "show", "0899 0000 0000"],
        env={"DATABASE_URL": db_url},
    )
    assert result.exit_code == 1 and "no customer matches" in result.output
