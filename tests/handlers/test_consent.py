"""CRM-1.1 / CRM-1.5: a new customer is shown the privacy notice after the first answer; the two consent questions are
answered separately (with buttons, or a number on SMS) and recorded with time and channel; marketing can be
withdrawn in words as well as with STOP.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.app import Sapa, build
from store.models import Consent
from tests.support.providers import ProviderCustomer, drain
from tests.support.slack import desk_settings
from tests.support.webchat import NOTICE, NOTICE_BUTTONS, NOTICE_NUMBERED

MARKETING_QUESTION = ("Satu lagi: bolehkah kami mengirimkan info promo dan program loyalitas ke nomor/akun ini? Anda "
                      "bisa berhenti kapan saja dengan membalas STOP.")


def consents(sapa) -> list[tuple[str, bool, str]]:
    with sapa.database.unit_of_work(read_only=True) as session:
        return [(c.purpose, c.granted, c.channel) for c in session.execute(select(Consent).order_by(Consent.id))
                .scalars()]


def test_crm_1_5_consent_answers_are_recorded_separately_with_time_and_channel(customer, sapa, clock):
    customer.say("halo")
    customer.say("Rina")
    replies = customer.say("Setuju", payload="consent:data:yes")
    assert replies == ["Terima kasih, persetujuan Anda sudah kami catat.", MARKETING_QUESTION]
    assert customer.buttons() == [{"title": "Setuju", "payload": "consent:marketing:yes"},
                                  {"title": "Tidak setuju", "payload": "consent:marketing:no"}]
    assert customer.say("Tidak setuju", payload="consent:marketing:no") == [
        "Baik, kami tidak akan mengirimkan pesan promosi. Anda bisa membalas START kapan saja bila berubah pikiran."]
    assert consents(sapa) == [("data_processing", True, "webchat"), ("marketing", False, "webchat")]
    with sapa.database.unit_of_work(read_only=True) as session:
        first = session.execute(select(Consent).order_by(Consent.id)).scalars().first()
    assert first is not None and first.recorded_at == clock.now() and "consent:data:yes" in (first.evidence or "")


def test_crm_1_5_marketing_withdrawn_in_words_is_asked_first_and_confirmed_once(customer, sapa):
    customer.say("halo")
    customer.say("Rina")
    customer.say("Setuju", payload="consent:data:yes")
    assert customer.say("Setuju", payload="consent:marketing:yes") == [
        "Terima kasih! Anda akan menerima info promo dari PT Contoh Sejahtera. Balas STOP kapan saja untuk berhenti."]
    # Words are the classifier's guess: nothing changes until the customer says yes.
    assert customer.say("tolong jangan kirim promo2 lagi ke saya ya") == [
        "Apakah Anda ingin berhenti menerima pesan promosi dari PT Contoh Sejahtera?"]
    assert consents(sapa)[-1] == ("marketing", True, "webchat")
    assert customer.say("Ya", payload="consent:confirm:out:yes") == [
        "Anda tidak akan lagi menerima pesan promosi dari PT Contoh Sejahtera. Balas START kapan saja untuk "
        "berlangganan kembali."]
    assert customer.say("udah gak usah kirim promo lagi") == [
        "Anda sudah tidak menerima pesan promosi dari PT Contoh Sejahtera."]
    assert consents(sapa) == [("data_processing", True, "webchat"), ("marketing", True, "webchat"),
                              ("marketing", False, "webchat")]
    with sapa.database.unit_of_work(read_only=True) as session:
        last = session.execute(select(Consent).order_by(Consent.id.desc())).scalars().first()
    assert last is not None and "jangan kirim promo2" in (last.evidence or "")  # the words and the yes, kept


def test_crm_1_5_a_guess_answered_no_or_ignored_changes_nothing(customer, sapa):
    customer.say("halo")
    customer.say("Rina")
    customer.say("Setuju", payload="consent:data:yes")
    customer.say("Setuju", payload="consent:marketing:yes")
    before = consents(sapa)
    assert customer.say("jangan kirim promo lagi ya") == [
        "Apakah Anda ingin berhenti menerima pesan promosi dari PT Contoh Sejahtera?"]
    assert customer.say("tidak") == ["Baik, pengaturan pesan promosi Anda tidak kami ubah."]
    question = customer.send("jangan kirim promo lagi ya")["replies"][0]  # asked again
    customer.say("jam buka toko kapan?")  # a question instead of an answer: the consent question lapses
    assert customer.press("Ya", question) == [
        "Pilihan itu sudah tidak berlaku karena pertanyaannya sudah dijawab sebelumnya, jadi tidak ada yang kami "
        "ubah. Silakan tulis pesan bila ada yang ingin diubah."]
    assert consents(sapa) == before


@pytest.mark.parametrize("text", ["Msg", "msg", "unsub", "Stp", "berhentii"])
def test_crm_1_5_a_single_word_that_is_not_a_keyword_never_touches_consent(customer, sapa, text):
    customer.say("halo")
    customer.say("Rina")
    customer.say("Setuju", payload="consent:data:yes")
    customer.say("Setuju", payload="consent:marketing:yes")
    before = consents(sapa)
    replies = customer.say(text)
    assert not any("promosi" in reply for reply in replies), replies
    assert consents(sapa) == before


def test_crm_1_5_an_old_consent_button_cannot_reverse_a_later_answer(customer, sapa):
    replies = customer.send("halo")["replies"]
    notice = replies[-1]
    assert customer.press("Setuju", notice)[0] == "Terima kasih, persetujuan Anda sudah kami catat."
    # The web chat keeps the notice's buttons clickable: the old "Tidak setuju" must change nothing.
    assert customer.press("Tidak setuju", notice) == [
        "Pilihan itu sudah tidak berlaku karena pertanyaannya sudah dijawab sebelumnya, jadi tidak ada yang kami "
        "ubah. Silakan tulis pesan bila ada yang ingin diubah."]
    assert consents(sapa) == [("data_processing", True, "webchat")]


def test_crm_1_5_first_opt_in_ever_does_not_say_again_but_a_return_does(customer, sapa):
    customer.say("halo")
    customer.say("Setuju", payload="consent:data:yes")
    assert "kembali" not in customer.say("Setuju", payload="consent:marketing:yes")[0]
    customer.say("STOP")
    assert customer.say("START") == [
        "Terima kasih! Anda akan kembali menerima info promo dari PT Contoh Sejahtera. Balas STOP kapan saja untuk "
        "berhenti."]


def test_crm_1_5_new_customer_gets_the_privacy_notice_and_two_separate_consent_questions(customer, sapa):
    replies = customer.say("halo")
    assert replies[-2:] == ["Boleh kami tahu nama Anda?", NOTICE]
    assert NOTICE not in replies[:-1]
    assert customer.buttons() == NOTICE_BUTTONS
    assert NOTICE not in customer.say("Rina")  # shown once, not on every message
    assert consents(sapa) == []  # nothing is assumed before the customer answers
    assert customer.say("Tidak setuju", payload="consent:data:no") == [
        "Baik, kami catat. Data Anda hanya kami gunakan untuk menjawab pesan Anda saat ini, dan Anda bisa meminta "
        "penghapusan kapan saja.", MARKETING_QUESTION]
    assert customer.buttons() == [{"title": "Setuju", "payload": "consent:marketing:yes"},
                                  {"title": "Tidak setuju", "payload": "consent:marketing:no"}]
    assert consents(sapa) == [("data_processing", False, "webchat")]  # refusing one answers only that one
    customer.say("Setuju", payload="consent:marketing:yes")
    assert consents(sapa) == [("data_processing", False, "webchat"), ("marketing", True, "webchat")]


def test_crm_1_1_sms_customer_answers_the_consent_question_with_a_number(client, sapa, fakes, clock):
    person = ProviderCustomer(client, fakes, "sms", "+6281234567890")
    assert person.write("halo") == 200
    drain(sapa, clock)
    assert person.texts()[-2:] == ["Boleh kami tahu nama Anda?", NOTICE_NUMBERED]
    assert person.write("1") == 200
    with sapa.database.unit_of_work(read_only=True) as session:
        consent = session.execute(select(Consent)).scalar_one()
    assert (consent.purpose, consent.granted, consent.channel) == ("data_processing", True, "sms")
    assert consent.recorded_at == clock.now() and consent.evidence == "button consent:data:yes: 1"
    drain(sapa, clock)
    assert person.texts()[-2:] == ["Terima kasih, persetujuan Anda sudah kami catat.",
                                   MARKETING_QUESTION + "\n\n1. Setuju\n2. Tidak setuju"]
    assert person.write("2") == 200
    drain(sapa, clock)
    assert person.texts()[-1] == ("Baik, kami tidak akan mengirimkan pesan promosi. Anda bisa membalas START kapan "
                                  "saja bila berubah pikiran.")
    assert consents(sapa) == [("data_processing", True, "sms"), ("marketing", False, "sms")]


def test_crm_1_5_a_complaint_as_first_message_is_answered_before_the_notice(customer, sapa):
    replies = customer.say("barang yang saya terima rusak, saya mau komplain")
    assert len(replies) >= 2 and replies[-1] == NOTICE
    assert "nomor tiket TKT-" in replies[0]  # the complaint is answered first, never held behind the notice
    assert customer.buttons() == NOTICE_BUTTONS


def test_crm_1_5_a_returning_customer_is_not_asked_again(customer, sapa, clock):
    assert customer.say("halo")[-1] == NOTICE
    customer.say("Rina")
    customer.say("Setuju", payload="consent:data:yes")
    customer.say("Tidak setuju", payload="consent:marketing:no")
    clock.advance(timedelta(days=3))  # a new conversation, the same customer
    replies = customer.say("halo")
    assert replies and NOTICE not in replies
    assert all(b["payload"] != "consent:data:yes" for b in customer.buttons())
    assert consents(sapa) == [("data_processing", True, "webchat"), ("marketing", False, "webchat")]


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database) -> Iterator[Sapa]:
    sapa = build(desk_settings(db_url, fakes), clock=clock, interpreter=interpreter, database=database,
                 model_cache=None)
    yield sapa
    sapa.stop_background()
