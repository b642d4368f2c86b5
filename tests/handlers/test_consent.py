"""CRM-1.5: the two consent questions are answered separately and recorded with time and channel; marketing can
be withdrawn in words as well as with STOP. (Showing the privacy notice to every new customer is not wired yet.)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from bot.app import Sapa, build
from bot.fake_providers import FakeProviders
from store.models import Consent
from tests.support.providers import TWILIO_TOKEN
from tests.support.slack import desk_settings

NOTICE = ("Sebelum lanjut: PT Contoh Sejahtera menyimpan nama, kontak, dan isi percakapan Anda untuk melayani "
          "permintaan Anda, sesuai UU Pelindungan Data Pribadi. Anda bisa meminta salinan atau penghapusan data "
          "kapan saja dengan menulis \"hapus data saya\". Apakah Anda setuju data Anda kami proses untuk keperluan "
          "ini?")


def consents(sapa) -> list[tuple[str, bool, str]]:
    with sapa.database.unit_of_work(read_only=True) as session:
        return [(c.purpose, c.granted, c.channel) for c in session.execute(select(Consent).order_by(Consent.id))
                .scalars()]


def test_crm_1_5_consent_answers_are_recorded_separately_with_time_and_channel(customer, sapa, clock):
    customer.say("halo")
    customer.say("Rina")
    replies = customer.say("Setuju", payload="consent:data:yes")
    assert replies == [
        "Terima kasih, persetujuan Anda sudah kami catat.",
        "Satu lagi: bolehkah kami mengirimkan info promo dan program loyalitas ke nomor/akun ini? Anda bisa "
        "berhenti kapan saja dengan membalas STOP."]
    assert customer.buttons() == [{"title": "Setuju", "payload": "consent:marketing:yes"},
                                  {"title": "Tidak setuju", "payload": "consent:marketing:no"}]
    assert customer.say("Tidak setuju", payload="consent:marketing:no") == [
        "Baik, kami tidak akan mengirimkan pesan promosi. Anda bisa membalas START kapan saja bila berubah pikiran."]
    assert consents(sapa) == [("data_processing", True, "webchat"), ("marketing", False, "webchat")]
    with sapa.database.unit_of_work(read_only=True) as session:
        first = session.execute(select(Consent).order_by(Consent.id)).scalars().first()
    assert first is not None and first.recorded_at == clock.now() and "consent:data:yes" in (first.evidence or "")


def test_crm_1_5_marketing_withdrawn_in_words_and_confirmed_once(customer, sapa):
    customer.say("halo")
    customer.say("Rina")
    customer.say("Setuju", payload="consent:marketing:yes")
    assert customer.say("tolong jangan kirim promo2 lagi ke saya ya") == [
        "Anda tidak akan lagi menerima pesan promosi dari PT Contoh Sejahtera. Balas START kapan saja untuk "
        "berlangganan kembali."]
    assert customer.say("udah gak usah kirim promo lagi") == [
        "Anda sudah tidak menerima pesan promosi dari PT Contoh Sejahtera."]
    assert consents(sapa) == [("marketing", True, "webchat"), ("marketing", False, "webchat")]


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProviders]:
    monkeypatch.delenv("TWILIO_REGION", raising=False)
    with FakeProviders(twilio_auth_token=TWILIO_TOKEN) as fakes:
        yield fakes


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database) -> Iterator[Sapa]:
    sapa = build(desk_settings(db_url, fakes), clock=clock, interpreter=interpreter, database=database,
                 model_cache=None)
    yield sapa
    sapa.stop_background()
