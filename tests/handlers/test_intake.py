"""Profile questions: what counts as a name, what is a request in disguise, and the email asked once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.app import Sapa
from bot.cli.customer_import import import_customers
from handlers.intake import extract_name
from store.models import AuditEntry, Conversation, Customer, Ticket
from tests.support.providers import ProviderCustomer, drain
from tests.support.slack import desk_sapa, desk_settings
from tests.support.webchat import WebchatUser

PHONE = "+6281234567890"


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("budi", "Budi"),
        ("nama saya budi santoso", "Budi Santoso"),
        ("Nama saya adalah Siti Rahma.", "Siti Rahma"),
        ("saya Rina", "Rina"),
        ("panggil saja Made", "Made"),
        ("my name is John O'Neil", "John O'Neil"),
        ("I'm Sarah", "Sarah"),
        ("halo, nama aku Dewi", "Dewi"),
        ("AHMAD FAUZI", "Ahmad Fauzi"),
        ("Ni Luh Putu Ayu", "Ni Luh Putu Ayu"),
    ],
)
def test_names_are_recognised(text, name):
    assert extract_name(text) == name


@pytest.mark.parametrize(
    "text",
    [
        "pesanan saya INV-2024-00123 belum sampai",
        "kenapa paket saya lama sekali dikirimnya padahal sudah seminggu",
        "0812 3456 7890",
        "saya mau komplain barang rusak dan minta ganti rugi",
        "saya mau bicara dengan petugas",  # a bare "saya ..." starts requests too
        "aku lagi nunggu paket",
        "I am waiting",
        "???",
    ],
)
def test_sentences_and_numbers_are_not_names(text):
    assert extract_name(text) is None


# --- the email, asked once (CRM-1.1, CRM-1.2, CRM-1.3) ------------------------------------------------------------
# Driven through the web chat API, WhatsApp and SMS (signed Twilio webhooks) and the real database.

ASK_EMAIL = ("Satu hal lagi, Budi: bolehkah kami mencatat alamat email Anda, untuk mengirim bukti transaksi dan kabar "
             "tiket? Silakan tulis email Anda, atau balas \"lewati\" bila tidak ingin.")
EMAIL_SAVED = "Terima kasih, Budi. Email budi.santoso@contoh.id sudah kami simpan."
EMAIL_SKIPPED = "Baik, tidak apa-apa. Kami tidak akan menanyakannya lagi. Ada lagi yang bisa kami bantu?"
GREETING = "Halo Budi! Selamat datang kembali di PT Contoh Sejahtera. Ada yang bisa kami bantu hari ini?"
LATER = timedelta(hours=5)  # past conversation.idle_close_minutes: the next message opens a new conversation


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database) -> Iterator[Sapa]:
    yield from desk_sapa(desk_settings(db_url, fakes), clock, interpreter, database)


def budi(sapa: Sapa) -> Customer:
    with sapa.database.unit_of_work(read_only=True) as session:
        return session.execute(select(Customer).order_by(Customer.id)).scalars().first()


def first_contact(customer: WebchatUser) -> None:
    customer.say("halo")
    assert customer.say("Budi")[0].startswith("Terima kasih, Budi.")


def test_crm_1_1_thanks_is_not_taken_for_a_name(customer, sapa):
    customer.say("halo")
    replies = customer.say("terima kasih")
    assert not any(reply.startswith("Terima kasih, Terima Kasih") for reply in replies), replies
    assert budi(sapa).name is None


def test_crm_1_1_a_request_answering_the_name_question_is_the_request(customer, sapa):
    customer.say("halo")
    [handoff, *_] = customer.say("saya mau bicara dengan petugas")
    assert "kami teruskan ke petugas" in handoff
    assert budi(sapa).name is None


def test_crm_1_1_email_is_asked_once_and_saved(customer, sapa, clock):
    first_contact(customer)
    # The first conversation already asked the name and showed the privacy notice: no third question.
    assert len(customer.say("jam buka toko jam berapa")) == 1
    clock.advance(LATER)
    asked_at = clock.now()
    assert customer.say("halo") == [GREETING, ASK_EMAIL]  # a calm moment of a later conversation
    assert customer.buttons() == [{"title": "Lewati", "payload": "intake:email:skip"}]
    assert budi(sapa).email_asked_at == asked_at
    assert customer.say("Budi.Santoso@Contoh.id") == [EMAIL_SAVED]
    saved = budi(sapa)
    assert (saved.email, saved.email_asked_at) == ("budi.santoso@contoh.id", asked_at)
    with sapa.database.unit_of_work(read_only=True) as session:
        audit = session.execute(select(AuditEntry).where(AuditEntry.action == "customer.update")).scalar_one()
    assert (audit.actor, audit.subject_id) == (f"customer:{saved.id}", str(saved.id))
    assert audit.detail == {"field": "email", "had_value": False, "channel": "webchat", "via": "ask_email"}
    assert audit.created_at == clock.now()
    assert customer.say("halo") == [GREETING]
    clock.advance(LATER)
    assert customer.say("halo") == [GREETING]


@pytest.mark.parametrize(("answer", "payload"), [
    ("lewati", None), ("nanti aja ya kak", None), ("gak usah", None), ("skip", None), ("Lewati", "intake:email:skip"),
])
def test_crm_1_1_the_email_question_can_be_skipped_and_is_not_asked_again(customer, sapa, clock, answer, payload):
    first_contact(customer)
    clock.advance(LATER)
    assert customer.say("terima kasih")[-1] == ASK_EMAIL
    assert customer.say(answer, payload=payload) == [EMAIL_SKIPPED]
    assert budi(sapa).email is None
    clock.advance(LATER)
    assert customer.say("halo") == [GREETING]
    assert len(customer.say("jam buka toko jam berapa")) == 1


def test_crm_3_1_email_is_not_asked_during_a_complaint(customer, sapa, clock):
    first_contact(customer)
    clock.advance(LATER)
    replies = customer.say("barang saya rusak parah, mau komplain")
    assert len(replies) == 1 and replies[0].startswith("Mohon maaf atas ketidaknyamanan ini, Budi. Keluhan Anda")
    assert budi(sapa).email_asked_at is None  # still to be asked, at a calm moment


def test_crm_3_1_a_complaint_instead_of_an_email_is_handled_and_the_question_dropped(customer, sapa, clock):
    """Never blocking an urgent complaint: the question goes, the complaint is taken, and it is not asked again."""
    first_contact(customer)
    clock.advance(LATER)
    assert customer.say("halo")[-1] == ASK_EMAIL
    replies = customer.say("barang saya rusak parah, mau komplain")
    assert len(replies) == 1 and replies[0].startswith("Mohon maaf atas ketidaknyamanan ini, Budi. Keluhan Anda")
    with sapa.database.unit_of_work(read_only=True) as session:
        conversation = session.execute(select(Conversation).order_by(Conversation.id.desc())).scalars().first()
        tickets = session.execute(select(Ticket)).scalars().all()
    assert conversation.pending_question is None and conversation.status == "waiting"
    assert [t.kind for t in tickets] == ["complaint"]
    assert budi(sapa).email is None and budi(sapa).email_asked_at is not None


def test_crm_1_5_a_customer_who_refused_data_processing_is_not_asked(customer, sapa, clock):
    customer.say("halo")
    customer.say("Tidak setuju", payload="consent:data:no")
    customer.say("Budi")
    clock.advance(LATER)
    assert customer.say("halo") == [GREETING]
    assert budi(sapa).email_asked_at is None


def test_crm_1_1_email_is_not_asked_again_on_another_channel(client, fakes, sapa, clock):
    """Asked on WhatsApp and left unanswered: the same customer on SMS (same phone) is not asked again."""
    whatsapp = ProviderCustomer(client, fakes, "whatsapp", PHONE)
    whatsapp.write("halo")
    whatsapp.write("Budi")
    clock.advance(LATER)
    whatsapp.write("halo")
    drain(sapa, clock)
    assert whatsapp.texts()[-2:] == [GREETING, ASK_EMAIL + "\n\n1. Lewati"]
    whatsapp.write("ok")  # not an answer: the question is dropped
    sms = ProviderCustomer(client, fakes, "sms", PHONE)
    sms.write("halo")
    sms.write("jam buka toko jam berapa")
    drain(sapa, clock)
    with sapa.database.unit_of_work(read_only=True) as session:
        assert len(session.execute(select(Customer)).scalars().all()) == 1  # one customer on both channels
    assert sms.texts()[-1].startswith("Baik, Budi. Toko PT Contoh Sejahtera buka setiap hari")
    assert not any("alamat email" in text for text in sms.texts())
    assert budi(sapa).email is None


def test_crm_1_2_an_imported_email_is_never_asked(client, fakes, sapa, clock, tmp_path):
    """Imported customers: one with an email is never asked; one without is asked at a calm moment."""
    path = tmp_path / "customers.csv"
    path.write_text("name,phone,email,language\nBudi,0812-3456-7890,budi@example.com,id\n"
                    "Made,0817-7777-8888,,id\n")
    report = import_customers(sapa.database, clock, path, sapa.settings.languages)
    assert report.created == 2
    clock.advance(timedelta(days=1))
    with_email = ProviderCustomer(client, fakes, "whatsapp", PHONE)
    without = ProviderCustomer(client, fakes, "whatsapp", "+6281777778888", name="Made")
    for person in (with_email, without):
        person.write("halo")
        person.write("halo")
    drain(sapa, clock)
    assert with_email.texts()[-1] == GREETING
    assert not any("alamat email" in text for text in with_email.texts())
    assert without.texts()[-1] == ASK_EMAIL.replace("Budi", "Made") + "\n\n1. Lewati"


def test_crm_3_1_email_is_not_asked_while_a_complaint_is_open(customer, slack, sapa, clock):
    """A customer waiting for us to fix something is not asked for data, even in a calm later conversation."""
    first_contact(customer)
    clock.advance(LATER)
    customer.say("barang saya rusak parah, mau komplain")
    slack.settle()
    with sapa.database.unit_of_work(read_only=True) as session:
        conversation = session.execute(select(Conversation).order_by(Conversation.id.desc())).scalars().first()
    assert slack.press("U0RINA", "claim", conversation.id, conversation.desk_ts) == 200
    assert slack.press("U0RINA", "back_to_bot", conversation.id, conversation.desk_ts) == 200
    slack.settle()
    clock.advance(LATER)
    assert customer.say("halo") == [GREETING]  # TKT-000001 is still open
    assert budi(sapa).email_asked_at is None  # still to be asked, once nothing is open


# --- the name, asked once (issue 14: /start does not repeat it) ------------------------------------------------------
# Telegram's /start arrives as the button payload intent:greet (channels/telegram.py), through the signed webhook.

TELEGRAM_ID = "700014"
WELCOME = "Halo! Selamat datang di PT Contoh Sejahtera. Saya Sapa, asisten virtual yang siap membantu Anda."
ASK_NAME = "Boleh kami tahu nama Anda?"


def telegram_person(client, fakes) -> ProviderCustomer:
    return ProviderCustomer(client, fakes, "telegram", TELEGRAM_ID)


def new_texts(person: ProviderCustomer, sapa, clock, before: int) -> list[str]:
    drain(sapa, clock)
    return person.texts()[before:]


def test_start_again_while_the_name_question_is_open_does_not_repeat_it(client, fakes, sapa, clock):
    person = telegram_person(client, fakes)
    assert person.write("/start") == 200
    first = new_texts(person, sapa, clock, 0)
    assert first[:2] == [WELCOME, ASK_NAME]  # then the privacy notice
    assert person.write("/start") == 200
    assert new_texts(person, sapa, clock, len(first)) == [WELCOME]
    # The question is still open: the name that follows is taken.
    assert person.write("Budi") == 200
    assert new_texts(person, sapa, clock, len(first) + 1)[0].startswith("Terima kasih, Budi.")
    assert budi(sapa).name == "Budi"


def test_start_from_a_customer_who_gave_the_name_greets_them_by_it(client, fakes, sapa, clock):
    person = telegram_person(client, fakes)
    person.write("/start")
    person.write("Budi")
    before = len(new_texts(person, sapa, clock, 0))
    person.write("/start")
    assert new_texts(person, sapa, clock, before) == [GREETING]


def test_a_customer_who_left_the_name_question_unanswered_is_not_asked_again_later(client, fakes, sapa, clock):
    person = telegram_person(client, fakes)
    person.write("/start")
    person.write("jam buka toko jam berapa")  # a question instead of a name: answered, the name question dropped
    before = len(new_texts(person, sapa, clock, 0))
    clock.advance(LATER)  # a later conversation
    person.write("/start")
    assert new_texts(person, sapa, clock, before) == [WELCOME]
    person.write("halo")
    assert new_texts(person, sapa, clock, before + 1) == [WELCOME]
    assert budi(sapa).name is None


def test_a_greeting_while_the_name_question_is_open_is_not_a_name(customer, sapa):
    customer.say("halo")
    assert customer.say("halo kak") == [WELCOME]
    assert budi(sapa).name is None
    assert customer.say("Budi")[0].startswith("Terima kasih, Budi.")


@pytest.mark.parametrize(("answer", "reply"), [
    ("gak usah", "Baik, tidak apa-apa. Ada yang bisa kami bantu?"),
    ("nggak deh makasih", "Baik, tidak apa-apa. Ada yang bisa kami bantu?"),
    ("no thanks", "All right, no problem. How can we help?"),  # in the language it was said in
])
def test_declining_the_name_question_is_not_a_name(customer, sapa, answer, reply):
    customer.say("halo")
    assert customer.say(answer) == [reply]
    assert budi(sapa).name is None
    assert customer.say("halo") == [WELCOME]  # and it is not asked again
