"""CRM-2.1, 2.3, 2.4: general questions are answered from the FAQ in config.yml, matched by meaning.

Scenario tests run through the web chat API on SQLite and PostgreSQL. The paraphrases below were
written apart from the FAQ's example phrasings (none of them is in config.yml), with the typos,
slang and English customers really send.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from bot.config import ConfigError, Settings, settings_from_mapping
from bot.templating import render
from handlers.inquiries import FaqIndex
from nlu.normalise import words
from store.models import Conversation, Message
from tests.support.webchat import NOTICE, NOTICE_EN

CONFIG = Path(__file__).resolve().parents[2] / "config.yml"


def configured_answer(settings: Settings, entry_id: str, language: str) -> str:
    (entry,) = [e for e in settings.faq.entries if e.id == entry_id]
    return render(entry.answer[language], {"company": "PT Contoh Sejahtera", "name": ""})


def last_inbound(sapa) -> Message:
    with sapa.database.unit_of_work(read_only=True) as session:
        return session.execute(
            select(Message).where(Message.direction == "in").order_by(Message.id.desc()).limit(1)
        ).scalar_one()


def test_crm_2_1_faq_question_is_answered_in_the_customers_language(client, sapa):
    from tests.support.webchat import WebchatUser

    rina = WebchatUser(client, sapa)
    rina.say("halo")
    rina.say("Rina")
    assert rina.say("kak jam buka tokonya jam brp ya?") == [
        "Baik, Rina. Toko PT Contoh Sejahtera buka setiap hari pukul 10.00–21.00 WIB, termasuk hari Minggu dan "
        "hari libur nasional, kecuali hari pertama Idulfitri. Layanan pelanggan kami melayani chat Senin–Sabtu "
        "pukul 08.00–17.00 WIB."
    ]
    assert rina.buttons() == []

    sarah = WebchatUser(client, sapa, language="en")
    sarah.say("hello, good morning")
    sarah.say("my name is Sarah")
    assert sarah.say("what time does your shop open on saturday?") == [
        "Certainly, Sarah. PT Contoh Sejahtera stores are open every day from 10:00 to 21:00 WIB, including "
        "Sundays and public holidays, except the first day of Eid al-Fitr. Our customer service team answers "
        "chats Monday to Saturday, 08:00 to 17:00 WIB."
    ]
    # The interaction log keeps which FAQ entry answered.
    assert last_inbound(sapa).meta["faq"]["answered"] is True
    assert last_inbound(sapa).meta["faq"]["nearest"]["id"] == "opening_hours"


# (what the customer writes, the entry that must answer, the language of the answer)
PARAPHRASES = [
    ("min toko tutup jam berapa", "opening_hours", "id"),
    ("lokasi toko di surabaya dimana kak", "branches", "id"),
    ("bisa bayar pake kartu debit ga", "payment_methods", "id"),
    ("kirim ke papua brp lama nyampenya", "shipping", "id"),
    ("ongkr ke surabya brp", "shipping", "id"),  # typos
    ("can i pay cash to the courier", "cod", "en"),
    ("garansi tv brp taun kak", "warranty", "id"),
    ("is there a warranty on the fridge", "warranty", "en"),
    ("barang ga cocok bisa dituker ga", "returns_refund", "id"),
    ("cicilan 12 bulan ada?", "installments", "id"),
    ("biaya pasang ac brp kak", "installation", "id"),
    ("kode voucher dpt dmn", "promos", "id"),
    ("cara belinya gmn min", "how_to_order", "id"),
    ("fakturr pajak bs ga", "tax_invoice", "id"),  # typo
]


def test_crm_2_3_answers_come_from_the_knowledge_base_matched_by_meaning(customer, sapa):
    customer.say("halo")
    customer.say("Rina")
    wrong = []
    for text, entry_id, language in PARAPHRASES:
        opener = "Baik, Rina." if language == "id" else "Certainly, Rina."
        expected = f"{opener} {configured_answer(sapa.settings, entry_id, language)}"
        replies = customer.say(text)
        if replies != [expected]:
            wrong.append((text, entry_id, replies))
    assert wrong == []


def test_crm_2_3_the_tuning_set_is_answered_and_uncovered_questions_are_not(base_settings):
    """HELD_OUT and NOT_COVERED below were the tuning set of the matcher (handlers/inquiries.py): its form
    words, synonyms and the entries' `terms` were chosen looking at them. Measured: 47 of 48 answered
    right, none wrong, 1 offered a person; 0 of 10 uncovered questions answered. The measurement on
    questions written apart is test_crm_2_3_faq_answers_only_what_an_entry_answers."""
    index = FaqIndex(base_settings.faq)
    right = wrong = 0
    for text, entry_id in HELD_OUT:
        match = index.match(text)
        assert match is not None
        if match.answers:
            right += match.entry.id == entry_id
            wrong += match.entry.id != entry_id
    answered_uncovered = [text for text in NOT_COVERED if (m := index.match(text)) and m.answers]
    assert right >= 46 and wrong == 0 and answered_uncovered == [], (right, wrong, answered_uncovered)


CASES = Path(__file__).with_name("faq_cases.jsonl")


def _cases() -> list[dict]:
    return [json.loads(line) for line in CASES.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_crm_2_3_faq_answers_only_what_an_entry_answers(base_settings, capsys):
    """Precision and recall of the FAQ on tests/handlers/faq_cases.jsonl: paraphrases of every entry
    (id chat style, formal id, en) and questions the FAQ does not answer (COD abroad, shipping abroad,
    trade-in, repairs, jobs, stock, prices, accounts…), written apart from config.yml.

    Each batch was written before the matcher it was first run on was seen to answer it; batches 1 and 2
    were then used to improve it (generic words, synonyms), so the overall figures are optimistic and
    the first-run figures are the honest ones (docs/architecture.md, Routing):
      batch 1 (old nearest-entry matcher): 72% right, 9% wrong, 65% of uncovered questions handed on;
      batch 1 (first version of this one): 76% right, 1% wrong, 98% handed on;
      batch 2 (after batch 1): 75% right, 2% wrong, 96% handed on;
      batch 3 (after batch 2): 79% right, 0% wrong, 90% handed on.
    All 302 today: 192/205 right (94%), 1 wrong, 95/97 handed on (98%). The old matcher on them: 78%
    right, 6% wrong, 69% handed on.
    """
    index = FaqIndex(base_settings.faq)
    cases = _cases()
    paraphrases = [c for c in cases if c["faq"]]
    unanswerable = [c for c in cases if not c["faq"]]
    assert len(unanswerable) >= 40
    entries = {entry.id for entry in base_settings.faq.entries}
    assert {c["faq"] for c in paraphrases} == entries  # every entry is measured ...
    assert min(sum(c["faq"] == e for c in paraphrases) for e in entries) >= 5  # ... on 5 paraphrases at least

    def answer(text: str) -> str | None:
        match = index.match(text)
        return match.entry.id if match is not None and match.answers else None

    right = [c["text"] for c in paraphrases if answer(c["text"]) == c["faq"]]
    wrong = [(c["text"], answer(c["text"])) for c in paraphrases if answer(c["text"]) not in (None, c["faq"])]
    honest = [c["text"] for c in unanswerable if answer(c["text"]) is None]
    leaked = [(c["text"], answer(c["text"])) for c in unanswerable if answer(c["text"]) is not None]
    with capsys.disabled():
        print(f"\nFAQ: paraphrases answered right {len(right)}/{len(paraphrases)} "
              f"({len(right) / len(paraphrases):.1%}), wrong {len(wrong)}; unanswerable handed to a person "
              f"{len(honest)}/{len(unanswerable)} ({len(honest) / len(unanswerable):.1%})")
    assert len(right) / len(paraphrases) >= 0.90, wrong
    assert len(wrong) <= 2, wrong  # a wrong answer is worse than a handoff: at most 1 in 100
    assert len(honest) / len(unanswerable) >= 0.95, leaked


def test_the_measured_questions_are_not_copied_into_the_faq(base_settings):
    """The cases measure the matcher on words it was not given: none of them is an example or question."""
    configured = {" ".join(words(text)) for entry in base_settings.faq.entries
                  for text in (*entry.examples, *entry.question.values())}
    copied = [c["text"] for c in _cases() if " ".join(words(c["text"])) in configured]
    copied += [text for text, _ in HELD_OUT if " ".join(words(text)) in configured]
    assert copied == []


@pytest.mark.parametrize(("text", "entry_id"), [
    ("bisa COD?", "cod"), ("cara retur?", "returns_refund"), ("ongkr ke surabya brp", "shipping"),
])
def test_questions_an_entry_answers_are_answered(base_settings, text, entry_id):
    match = FaqIndex(base_settings.faq).match(text)
    assert match is not None and match.answers and match.entry.id == entry_id


@pytest.mark.parametrize(("text", "nearest", "uncovered"), [
    ("kirim ke luar negeri?", "shipping", ("negeri",)),  # the shipping entry is domestic
    ("ada asuransi pengiriman gak", "shipping", ("asuransi",)),  # shipping insurance is not in the entry
    ("bisa servis laptop di toko ga", "branches", ("servis",)),  # the stores, yes; repairs, not said
    ("toko buka lowongan kerja ga", "opening_hours", ("lowongan", "kerja")),
])
def test_the_nearest_entry_is_not_sent_when_it_leaves_part_of_the_question_unanswered(
        base_settings, text, nearest, uncovered):
    match = FaqIndex(base_settings.faq).match(text)
    assert match is not None and not match.answers
    assert (match.entry.id, match.uncovered) == (nearest, uncovered)


def test_crm_2_3_a_question_the_faq_does_not_answer_gets_a_person_not_the_nearest_entry(customer, sapa):
    customer.say("halo")
    customer.say("Rina")
    assert customer.say("kak bisa kirim ke luar negeri?") == [
        "Mohon maaf, Rina, jawaban untuk pertanyaan ini belum ada pada kami. Mau kami hubungkan dengan petugas kami?"
    ]
    assert customer.buttons() == [{"title": "Bicara dengan petugas", "payload": "intent:talk_to_agent"}]
    asked = last_inbound(sapa)
    assert asked.meta["faq"] == {"answered": False, "nearest": {
        "id": "shipping", "similarity": asked.meta["faq"]["nearest"]["similarity"], "uncovered": ["negeri"]}}
    # The same words about the entry's own topic are answered.
    assert customer.say("kirim ke luar jawa brp lama kak?") == [
        f"Baik, Rina. {configured_answer(sapa.settings, 'shipping', 'id')}"]


def test_crm_2_4_known_customer_is_addressed_by_name(customer, sapa):
    # Before we know the name, the answer is the same without it.
    assert customer.say("bisa bayar di tempat ga kak?") == [
        "Baik. Bisa. Bayar di tempat (COD) tersedia untuk pesanan hingga Rp5.000.000 dengan tujuan Jabodetabek, "
        "Bandung dan Surabaya. Pilih COD saat checkout, lalu bayar tunai kepada kurir ketika barang diterima.",
        NOTICE,  # a new customer: the answer first, then the privacy notice
    ]
    customer.say("halo")
    customer.say("nama saya budi santoso")
    assert customer.say("kalau mau pasang ac ada biayanya gak?") == [
        "Baik, Budi Santoso. Ada. Pemasangan standar gratis untuk AC, mesin cuci dan water heater yang dibeli di "
        "PT Contoh Sejahtera, di seluruh area pengiriman kami; teknisi datang 1–3 hari kerja setelah barang tiba. "
        "Bracket TV dinding dan pipa AC tambahan dikenakan biaya sesuai daftar harga teknisi."
    ]


def test_unknown_question_offers_a_human(customer, sapa):
    customer.say("halo")
    customer.say("Rina")
    assert customer.say("apakah kalian jual drone?") == [
        "Mohon maaf, Rina, jawaban untuk pertanyaan ini belum ada pada kami. Mau kami hubungkan dengan petugas kami?"
    ]
    assert customer.buttons() == [{"title": "Bicara dengan petugas", "payload": "intent:talk_to_agent"}]
    asked = last_inbound(sapa)
    assert (asked.intent, asked.meta["faq"]["answered"]) == ("ask_info", False)

    replies = customer.say("Bicara dengan petugas", payload="intent:talk_to_agent")
    assert replies == [
        "Baik, Rina. Percakapan ini kami teruskan ke petugas kami. Mohon tunggu sebentar, petugas akan membalas "
        "di sini."
    ]
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.execute(select(Conversation)).scalar_one().status == "waiting"


def test_unknown_question_in_english_is_answered_in_english(customer):
    assert customer.say("do you sell drones?") == [
        "Sorry, we do not have the answer to this question at hand. Shall we connect you with one of our agents?",
        NOTICE_EN,  # a new customer: the privacy notice, in the customer's language too
    ]
    assert customer.buttons() == [{"title": "Talk to an agent", "payload": "intent:talk_to_agent"},
                                  {"title": "I agree", "payload": "consent:data:yes"},
                                  {"title": "I do not agree", "payload": "consent:data:no"}]


def _faq_settings(change) -> Settings:
    data = yaml.safe_load(CONFIG.read_text())
    change(data["faq"]["entries"][0])
    return settings_from_mapping(data, {}, "config.yml")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e["answer"].pop("en"), "faq.opening_hours.answer.en is missing (add the en text)"),
        (lambda e: e["answer"].update(id="Buka {% if name %}setiap hari"),
         "faq.opening_hours.answer.id does not parse"),
        (lambda e: e["answer"].update(en="Open {{ hours }}"),
         "faq.opening_hours.answer.en cannot be rendered ('hours' is undefined); "
         "use only {{ name }} and {{ company }}"),
        (lambda e: e.update(id="Opening Hours"), "faq.entries.0.id: String should match pattern '^[a-z0-9_]+$'"),
        (lambda e: e.update(examples=[]), "faq.entries.0.examples: Tuple should have at least 1 item"),
        (lambda e: e.update(id="branches"), "faq.entries: id 'branches' is used twice (give each entry its own id)"),
    ],
)
def test_a_broken_faq_entry_stops_start_up_naming_the_key(change, message):
    with pytest.raises(ConfigError) as raised:
        _faq_settings(change)
    assert message in str(raised.value)


def test_the_no_answer_reply_is_a_required_template():
    data = yaml.safe_load(CONFIG.read_text())
    data["templates"].pop("faq_no_answer")
    with pytest.raises(ConfigError, match="templates.faq_no_answer is missing"):
        settings_from_mapping(data, {}, "config.yml")


# Written after the FAQ examples; the tuning set of today's matcher (see the test that uses them).
HELD_OUT = [
    ("min toko tutup jam berapa", "opening_hours"), ("sabtu minggu buka ga kak", "opening_hours"),
    ("when does the store close", "opening_hours"), ("Apakah toko buka saat hari raya?", "opening_hours"),
    ("lokasi toko di surabaya dimana kak", "branches"), ("ada toko di makassar?", "branches"),
    ("store address in bandung please", "branches"), ("Cabang Anda ada di kota apa saja?", "branches"),
    ("bisa bayar pake kartu debit ga", "payment_methods"), ("terima shopeepay ga min", "payment_methods"),
    ("which e-wallets can I use to pay", "payment_methods"),
    ("Pembayaran dapat dilakukan dengan cara apa saja?", "payment_methods"),
    ("kirim ke papua brp lama nyampenya", "shipping"), ("ongkirnya brp kak ke jakarta", "shipping"),
    ("what does delivery cost", "shipping"), ("Berapa hari barang sampai ke Semarang?", "shipping"),
    ("cod bisa ga kak", "cod"), ("bayar di rumah pas kurir dateng bisa?", "cod"),
    ("can i pay cash to the courier", "cod"), ("Apakah tersedia metode COD untuk Bandung?", "cod"),
    ("garansi tv brp taun kak", "warranty"), ("klaim garansi dmn ya", "warranty"),
    ("is there a warranty on the fridge", "warranty"), ("Apakah ada garansi resmi untuk AC?", "warranty"),
    ("barang ga cocok bisa dituker ga", "returns_refund"), ("refund brp lama masuknya", "returns_refund"),
    ("can i return an item", "returns_refund"),
    ("Apakah barang bisa dikembalikan jika tidak sesuai?", "returns_refund"),
    ("bisa dicicil ga kak", "installments"), ("cicilan 12 bulan ada?", "installments"),
    ("can I buy on credit", "installments"), ("Apakah ada cicilan tanpa bunga?", "installments"),
    ("ac nya dipasangin ga", "installation"), ("biaya pasang ac brp kak", "installation"),
    ("do you mount tvs on the wall", "installation"), ("Apakah ada jasa pemasangan mesin cuci?", "installation"),
    ("promo apa hari ini kak", "promos"), ("kode voucher dpt dmn", "promos"),
    ("any sale going on", "promos"), ("Apakah sedang ada diskon?", "promos"),
    ("cara belinya gmn min", "how_to_order"), ("bisa pesen lewat wa ga", "how_to_order"),
    ("how do i buy something", "how_to_order"),
    ("Bagaimana langkah-langkah berbelanja di situs Anda?", "how_to_order"),
    ("faktur pajak bisa ga kak", "tax_invoice"), ("minta invoice pake npwp kantor", "tax_invoice"),
    ("I need a tax invoice for my company", "tax_invoice"), ("Bagaimana cara meminta e-Faktur?", "tax_invoice"),
]
NOT_COVERED = [
    "harga ac 1 pk brp kak", "ready stok iphone 15 ga", "mesin cuci yang hemat listrik apa ya",
    "do you buy used electronics", "bisa servis laptop di toko ga", "apakah ada kartu member",
    "berapa ukuran kulkas 2 pintu", "is the samsung s24 available", "ada lowongan kerja gak min",
    "kapan stok ps5 datang lagi",
]


# "No thanks" and "yes please" to the offer of a person (handlers/greeting.py), said in words instead of the button.

OFFER = "Mohon maaf, Rina, jawaban untuk pertanyaan ini belum ada pada kami. Mau kami hubungkan dengan petugas kami?"


def conversation_status(sapa) -> str:
    with sapa.database.unit_of_work(read_only=True) as session:
        return session.execute(select(Conversation)).scalar_one().status


@pytest.mark.parametrize("answer", ["gak usah, makasih", "nggak deh makasih", "no thank you"])
def test_no_thanks_to_the_offer_of_a_person_is_understood(customer, sapa, answer):
    customer.say("halo")
    customer.say("Rina")
    assert customer.say("bisa kirim ke singapura ga kak") == [OFFER]
    replies = customer.say(answer)
    assert replies in (["Baik, tidak apa-apa, Rina. Kalau nanti ada yang bisa kami bantu, tulis saja di sini."],
                       ["All right, no problem, Rina. If there is anything else we can help with, just write here."])
    assert last_inbound(sapa).intent == "deny"
    assert conversation_status(sapa) == "bot"


def test_yes_to_the_offer_of_a_person_hands_the_conversation_over(customer, sapa):
    customer.say("halo")
    customer.say("Rina")
    assert customer.say("bisa kirim ke singapura ga kak") == [OFFER]
    assert customer.say("iya boleh") == [
        "Baik, Rina. Percakapan ini kami teruskan ke petugas kami. Mohon tunggu sebentar, petugas akan membalas "
        "di sini."
    ]
    assert conversation_status(sapa) == "waiting"


def test_no_thanks_to_nothing_offered_is_not_mistaken_for_an_answer(customer, sapa):
    customer.say("halo")
    customer.say("Rina")
    customer.say("jam buka toko jam berapa")  # answered: nothing offered
    assert customer.say("gak usah, makasih") == [
        "Mohon maaf, kami belum memahami pesan Anda. Silakan tulis ulang dengan kata lain, atau kami hubungkan "
        "dengan petugas kami."
    ]
