"""Duplicate detection (CRM-1.4): which records look like one person, how sure, and what is never listed.

Rows are written straight into the database, as the channels, the profile dialogue and the import leave
them; the end-to-end flows through Slack and the channels are in tests/handlers/test_duplicates.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from store.audit import record
from store.duplicates import dismiss, duplicates_of, email_name, find_duplicates, normalise_name
from store.merge import merge_customers
from store.models import AuditEntry, ChannelIdentity, Conversation, Customer, DuplicateDismissal, Message
from store.privacy import erase_customer

NOW = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
PHONE = "+6281234567890"


def customer(session: Session, name: str | None = None, *, phone: str | None = None, email: str | None = None,
             source: str = "webchat") -> int:
    row = Customer(name=name, phone=phone, email=email, source=source, is_vip=False, created_at=NOW, updated_at=NOW)
    session.add(row)
    session.flush()
    return row.id


def identity(session: Session, customer_id: int, channel: str, address: str) -> int:
    row = ChannelIdentity(customer_id=customer_id, channel=channel, address=address, created_at=NOW)
    session.add(row)
    session.flush()
    return row.id


def said(session: Session, customer_id: int, text: str, *, intent: str | None = None,
         entities: list[dict[str, Any]] | None = None, channel: str = "telegram", **meta: Any) -> None:
    """An inbound message as the pipeline logs it: what was understood is in meta['nlu']."""
    identity_id = session.execute(select(ChannelIdentity.id).where(
        ChannelIdentity.customer_id == customer_id)).scalars().first()
    if identity_id is None:
        identity_id = identity(session, customer_id, channel, f"{channel}-{customer_id}")
    conversation = Conversation(customer_id=customer_id, identity_id=identity_id, channel=channel, status="bot",
                                language="id", opened_at=NOW, last_message_at=NOW, pending_data={})
    session.add(conversation)
    session.flush()
    session.add(Message(conversation_id=conversation.id, customer_id=customer_id, channel=channel, direction="in",
                        sender="customer", text=text, intent=intent, created_at=NOW,
                        meta={"nlu": {"backend": "embedded", "entities": entities or []}, **meta}))
    session.flush()


def phone_entity(text: str, value: str = PHONE) -> dict[str, Any]:
    return {"entity": "phone", "value": value, "text": text}


def listed(session: Session) -> list[tuple[int, int, str, str]]:
    return [(p.keep.id, p.duplicate.id, p.confidence, p.reason) for p in find_duplicates(session)]


def test_crm_1_4_whatsapp_address_and_a_phone_typed_on_telegram_are_one_person(database):
    with database.unit_of_work() as session:
        whatsapp = customer(session, "Dewi", phone=PHONE, source="whatsapp")
        identity(session, whatsapp, "whatsapp", PHONE)
        telegram = customer(session, "Dewi Lestari", source="telegram")
        said(session, telegram, "nomor hp saya sekarang 0812-3456-7890", intent="update_profile",
             entities=[phone_entity("0812-3456-7890")])
        assert listed(session) == [(whatsapp, telegram, "strong", "same phone")]
        (pair,) = duplicates_of(session, telegram)
        assert pair.other(telegram).id == whatsapp and pair.merge_command == f"/sapa merge #{telegram} #{whatsapp}"
        assert [p.ids for p in duplicates_of(session, whatsapp)] == [(whatsapp, telegram)]


def test_crm_1_4_a_phone_only_mentioned_in_passing_is_not_a_match(database):
    with database.unit_of_work() as session:
        customer(session, "Kurir Andi", phone=PHONE, source="sms")
        asker = customer(session, "Rina")
        said(session, asker, "kurirnya 0812-3456-7890 tidak bisa dihubungi", intent="complaint",
             entities=[phone_entity("0812-3456-7890")])
        assert listed(session) == []
        assert duplicates_of(session, asker) == []


def test_crm_1_4_a_message_that_is_only_a_number_and_a_shared_contact_count(database):
    with database.unit_of_work() as session:
        sms = customer(session, "Budi", source="sms")
        identity(session, sms, "sms", PHONE)  # the profile phone was changed later; the address stayed
        session.get_one(Customer, sms).phone = "+6285712345678"
        answered = customer(session, None)
        said(session, answered, " 0812 3456 7890 ", entities=[phone_entity("0812 3456 7890")])
        shared = customer(session, None, phone="+6281311112222", source="telegram")
        said(session, shared, "[contact]", shared_phone=PHONE)
        assert listed(session) == [(sms, answered, "strong", "same phone"), (sms, shared, "strong", "same phone"),
                                   (answered, shared, "strong", "same phone")]


def test_crm_1_4_same_email_is_strong_unless_both_have_other_phones(database):
    with database.unit_of_work() as session:
        a = customer(session, "Siti", email="siti@contoh.id")
        b = customer(session, "Siti R", phone=PHONE, email="siti@contoh.id", source="import")
        c = customer(session, "Ahmad", phone="+6281311112222", email="keluarga@contoh.id")
        d = customer(session, "Aminah", phone="+6281399998888", email="keluarga@contoh.id")
        typed = customer(session, None)
        said(session, typed, "email saya siti@contoh.id", intent="update_profile",
             entities=[{"entity": "email", "value": "siti@contoh.id", "text": "siti@contoh.id"}])
        assert listed(session) == [
            (a, b, "strong", "same email"), (a, typed, "strong", "same email"), (b, typed, "strong", "same email"),
            (c, d, "possible", "same email")]


def test_crm_1_4_same_name_with_phone_ending_or_email_name_is_possible(database):
    with database.unit_of_work() as session:
        a = customer(session, "Budi Santoso", phone="+6281234567890")
        b = customer(session, "Pak BUDI  santoso.", phone="+6285234567890")  # same last 6 digits
        c = customer(session, "Budi Santoso", email="Budi.Santoso+toko@gmail.com")
        d = customer(session, "Budi Sántoso", email="budisantoso@yahoo.co.id")
        customer(session, "Budi Santoso", phone="+6281311112222")  # namesake, nothing else in common
        customer(session, "Budi Hartono", phone="+6285734567890")  # same ending, other name
        assert listed(session) == [(a, b, "possible", "same name, phone ending"),
                                   (c, d, "possible", "same name, email name")]
        assert [p.matches[0].key for p in duplicates_of(session, b)] == ["567890"]


def test_crm_1_4_merged_erased_and_dismissed_records_are_not_listed(database):
    with database.unit_of_work() as session:
        a = customer(session, "Rina", email="rina@contoh.id")
        b = customer(session, "Rina", email="rina@contoh.id")
        c = customer(session, "Rina", email="rina@contoh.id")
        d = customer(session, "Rina", email="rina@contoh.id")
        assert len(listed(session)) == 6
        merge_customers(session, d, a, now=NOW, actor="agent:1", reason="test")  # d keeps its email: still ignored
        erase_customer(session, c, now=NOW, actor="cli", reason="test")
        assert listed(session) == [(a, b, "strong", "same email")]
        assert dismiss(session, b, a, by="Rina (agent)", actor="agent:1", now=NOW) is True
        assert dismiss(session, a, b, by="Sari (agent)", actor="agent:2", now=NOW) is False  # already recorded
        assert listed(session) == [] and duplicates_of(session, a) == []
        row = session.execute(select(DuplicateDismissal)).scalar_one()
        audit = session.execute(select(AuditEntry).where(
            AuditEntry.action == "customers.duplicate_dismissed")).scalar_one()
    assert (row.customer_a_id, row.customer_b_id, row.dismissed_by) == (a, b, "Rina (agent)")
    assert (audit.actor, audit.subject_id, audit.detail) == ("agent:1", str(a), {"other": b, "by": "Rina (agent)"})


def test_crm_1_4_an_erased_customer_is_excluded_by_the_audit_mark(database):
    with database.unit_of_work() as session:
        a = customer(session, "Rina", email="rina@contoh.id")
        b = customer(session, "Rina", email="rina@contoh.id")
        # Erased by an older Sapa that left the email behind: the audit entry alone keeps it out.
        record(session, actor="cli", action="customer.erased", subject_type="customer", subject_id=b, now=NOW)
        assert listed(session) == [] and duplicates_of(session, a) == []


def test_crm_1_4_a_key_shared_by_many_records_is_not_a_person(database):
    with database.unit_of_work() as session:
        for n in range(25):
            customer(session, f"Pelanggan {n}", email="kantor@contoh.id")
        assert listed(session) == []


@pytest.mark.parametrize(("raw", "expected"), [
    ("Bu  Siti Rahmä.", "siti rahma"), ("PAK", "pak"), ("", None), (None, None), ("Ni Luh Putu", "ni luh putu"),
])
def test_names_are_compared_without_case_accents_punctuation_or_honorific(raw, expected):
    assert normalise_name(raw) == expected


def test_email_names_drop_tags_and_dots_and_ignore_short_ones():
    assert email_name("Budi.Santoso+toko@gmail.com") == "budisantoso"
    assert email_name("cs@contoh.id") is None
