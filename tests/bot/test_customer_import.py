"""`sapa customers import`: good rows kept, bad rows reported by line, duplicates merged, not doubled."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from bot.cli import main
from bot.config import load_settings
from store.consents import current, record
from store.models import AuditEntry, Consent, Customer

ROOT = Path(__file__).resolve().parents[2]
LOCAL_CHANNELS_ENV = {"TELEGRAM_BOT_TOKEN": "123456:local-fake", "TELEGRAM_WEBHOOK_SECRET": "local-secret",
                      "TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "local-auth-token"}

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
    # Each view is staff access to personal data: audited with the shell user who looked.
    from sqlalchemy import create_engine, text

    with create_engine(db_url).connect() as connection:
        views = connection.execute(text("SELECT actor, subject_id FROM audit_log WHERE action = 'customer.viewed'")
                                   ).all()
    assert len(views) == 3 and all(actor.startswith("cli:") and subject == "1" for actor, subject in views)


# --- marketing consent with its evidence (issue 14, point 1) ------------------------------------------------------

CONSENT_CSV = """name,phone,email,language,marketing_consent,consent_source,consent_at
Ayu,0812-0000-0001,,id,yes,signup form 2025,2025-03-01T10:00
Bayu,0812-0000-0002,,id,Ya,toko Bandung (kertas),2025-03-02
Cici,0812-0000-0003,,id,tidak,signup form 2025,2025-03-03T09:00+07:00
Dodo,0812-0000-0004,,id,,,
Eka,0812-0000-0005,,id,maybe,signup form 2025,2025-03-01
Fani,0812-0000-0006,,id,yes,,2025-03-01
Gita,0812-0000-0007,,id,1,signup form 2025,
Hadi,0812-0000-0008,,id,yes,signup form 2025,kemarin
Indra,0812-0000-0009,,id,,signup form 2025,2025-03-01
Joko,0812-0000-0010,,id,yes,signup form 2025,2999-01-01
"""


def consents_of(database) -> list[Consent]:
    with database.unit_of_work(read_only=True) as session:
        return list(session.execute(select(Consent).order_by(Consent.id)).scalars())


def customer_id(database, phone: str) -> int:
    with database.unit_of_work(read_only=True) as session:
        return session.execute(select(Customer.id).where(Customer.phone == phone)).scalar_one()


def test_imported_consent_is_recorded_with_its_evidence_and_bad_consent_cells_are_row_errors(db_url, database,
                                                                                           tmp_path):
    path = tmp_path / "members.csv"
    path.write_text(CONSENT_CSV)
    result = run_import(db_url, path)
    assert result.exit_code == 0, result.output
    assert "line 6: marketing_consent 'maybe' is not one of yes, no, true, false, 1, 0, ya, tidak" in result.output
    assert "line 7: marketing_consent needs consent_source" in result.output
    assert "line 8: marketing_consent needs consent_at" in result.output
    assert "line 9: consent_at 'kemarin' is not an ISO date or date-time" in result.output
    assert "line 10: consent_source and consent_at need marketing_consent (yes or no)" in result.output
    assert "line 11: consent_at '2999-01-01' is in the future" in result.output
    assert "4 new customers, 0 updated, 0 duplicates merged, 6 bad rows skipped" in result.output
    assert "marketing consent recorded from the file for 2 customers (and 1 refusals)" in result.output
    # Cici refused and Dodo gave no answer: neither may be sent promotions.
    assert "2 customers imported without marketing consent: broadcasts will not reach them until they opt in" \
        in result.output

    rows = consents_of(database)
    assert [(r.customer_id, r.purpose, r.granted, r.channel) for r in rows] == [
        (customer_id(database, "+6281200000001"), "marketing", True, "import"),
        (customer_id(database, "+6281200000002"), "marketing", True, "import"),
        (customer_id(database, "+6281200000003"), "marketing", False, "import"),
    ]
    # Dated when the customer gave it (company time, Asia/Jakarta, when the cell has no offset).
    assert [r.recorded_at for r in rows] == [datetime(2025, 3, 1, 3, 0, tzinfo=UTC),
                                             datetime(2025, 3, 1, 17, 0, tzinfo=UTC),
                                             datetime(2025, 3, 3, 2, 0, tzinfo=UTC)]
    assert str(rows[0].evidence).startswith("imported from members.csv line 2: signup form 2025; "
                                       "given 2025-03-01T03:00:00+00:00, imported ")
    assert "line 3: toko Bandung (kertas)" in str(rows[1].evidence)
    with database.unit_of_work(read_only=True) as session:
        audit = session.execute(select(AuditEntry)).scalar_one()
    assert audit.detail["consents_granted"] == 2 and audit.detail["without_marketing_consent"] == 2

    again = run_import(db_url, path)  # the same file again: the same evidence is not newer, nothing is added
    assert again.exit_code == 0, again.output
    assert len(consents_of(database)) == 3
    assert "3 rows' consent evidence is not newer than what the customer already told us" in again.output


def test_a_file_without_consent_columns_says_broadcasts_will_not_reach_its_customers(db_url, database, tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text(CSV)
    result = run_import(db_url, path)
    assert result.exit_code == 0, result.output
    assert "3 customers imported without marketing consent: broadcasts will not reach them until they opt in" \
        in result.output
    assert consents_of(database) == []


def test_a_merged_duplicate_changes_consent_only_on_newer_evidence(db_url, database, tmp_path):
    """The customer said STOP on 2025-06-01 in the chat; an old signup sheet must not undo that, a newer one may,
    and a row without consent columns never touches it."""
    with database.unit_of_work() as session:
        stopped = Customer(name="Sari", phone="+6281300000001", source="whatsapp", is_vip=False,
                           created_at=datetime(2025, 1, 1, tzinfo=UTC), updated_at=datetime(2025, 1, 1, tzinfo=UTC))
        agreed = Customer(name="Tono", phone="+6281300000002", source="whatsapp", is_vip=False,
                          created_at=datetime(2025, 1, 1, tzinfo=UTC), updated_at=datetime(2025, 1, 1, tzinfo=UTC))
        session.add_all([stopped, agreed])
        session.flush()
        record(session, stopped.id, "marketing", False, channel="whatsapp", evidence="STOP",
               now=datetime(2025, 6, 1, tzinfo=UTC))
        record(session, agreed.id, "marketing", True, channel="whatsapp", evidence="ya",
               now=datetime(2025, 6, 1, tzinfo=UTC))
        ids = stopped.id, agreed.id
    path = tmp_path / "old.csv"
    path.write_text("name,phone,marketing_consent,consent_source,consent_at\n"
                    "Sari,0813-0000-0001,yes,signup form 2024,2024-11-01\n"
                    "Tono,0813-0000-0002,,,\n")
    result = run_import(db_url, path)
    assert result.exit_code == 0, result.output
    assert "1 rows' consent evidence is not newer than what the customer already told us" in result.output
    assert "1 customer imported without marketing consent" in result.output  # Sari: her STOP stands
    with database.unit_of_work(read_only=True) as session:
        assert current(session, ids[0], "marketing") is False
        assert current(session, ids[1], "marketing") is True
    assert len(consents_of(database)) == 2

    path.write_text("name,phone,marketing_consent,consent_source,consent_at\n"
                    "Sari,0813-0000-0001,yes,loyalty sign-up at the Bandung store,2025-07-01T12:00\n")
    result = run_import(db_url, path)
    assert result.exit_code == 0, result.output
    assert "marketing consent recorded from the file for 1 customers" in result.output
    assert "without marketing consent" not in result.output
    with database.unit_of_work(read_only=True) as session:
        assert current(session, ids[0], "marketing") is True


def test_broadcast_selection_skips_customers_imported_without_consent(db_url, database, tmp_path):
    """Through the README's config.local-channels.yml: a broadcast to everyone reaches the imported customers who
    consented (on their phone, first Twilio channel) and skips the others as no_consent."""
    from handlers import broadcasts
    from store.broadcasts import select_recipients
    from store.models import Broadcast, BroadcastRecipient

    path = tmp_path / "members.csv"
    path.write_text(CONSENT_CSV)
    assert run_import(db_url, path).exit_code == 0
    settings = load_settings(ROOT / "config.local-channels.yml", environ={**LOCAL_CHANNELS_ENV,
                                                                          "DATABASE_URL": db_url})
    now = datetime.now(UTC)
    with database.unit_of_work() as session:
        made = broadcasts.create(session, settings, name="Promo", messages={"id": "Halo {{ name }}"},
                                 channels=["whatsapp", "sms"], filters={}, created_by="test", now=now)
        select_recipients(session, settings, session.get_one(Broadcast, made.id), now)
    with database.unit_of_work(read_only=True) as session:
        chosen = {session.get_one(Customer, r.customer_id).name: (r.status, r.skip_reason, r.channel)
                  for r in session.execute(select(BroadcastRecipient)).scalars()}
    assert chosen == {"Ayu": ("pending", None, "whatsapp"), "Bayu": ("pending", None, "whatsapp"),
                      "Cici": ("skipped", "opted_out", None), "Dodo": ("skipped", "no_consent", None)}
