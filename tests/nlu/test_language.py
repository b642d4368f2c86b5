"""Each message is answered in the customer's language; when the words do not say, the profile decides."""

from __future__ import annotations

import pytest

from nlu.language import detect_language

INDONESIAN = [
    # informal chat
    "gk udh blm knp",
    "halo kak, pesanan saya udah sampai mana ya",
    "min pesenan aku blm nyampe2",
    "kak brp ongkir ke bandung",
    "tlg dicek dong",
    "makasih ya kak",
    "gak jadi deh",
    "poin aku brp skrg",
    "knp lama bgt sih",
    "ga usah kirim2 wa lagi",
    "udh tf tp blm dikonfirmasi",
    "barangnya rusak 😡😡",
    "halo",
    "ya",
    "kok gitu",
    "mau ganti alamat",
    "HALOOO MIN",
    "tq kak",
    "sy mau komplain",
    # formal
    "Selamat pagi, saya ingin menanyakan status pengembalian dana",
    "Mohon informasi mengenai jam buka cabang Bandung",
    "Apakah pesanan saya sudah dikirim?",
    "Saya ingin menghapus akun dan data pribadi saya",
    "Terima kasih atas bantuannya",
    "Bagaimana cara menukarkan poin loyalitas?",
    "Mohon maaf, saya ingin menyampaikan keluhan",
    "Tolong batalkan pengiriman besok",
]

ENGLISH = [
    "hello, where is my order please",
    "Could you please tell me the status of my refund?",
    "I want to talk to a human",
    "thank you",
    "good morning",
    "my package has not arrived yet",
    "how many points do I have",
    "can I change the delivery address for this order",
    "please delete my account and all my data",
    "why is it taking so long",
    "idk where u sent it",
    "I don't want these messages anymore",
    "is there a branch in Surabaya",
    "what are your opening hours",
    "the item I received is damaged",
    "pls help asap",
]

MIXED = [
    ("min order aku kok blm nyampe ya, tracking nya stuck", "id"),
    ("hi, where is my order? thanks kak", "en"),
    ("please cancel my order, makasih", "en"),
    ("sorry kak, barangnya broken pas dateng", "id"),
    ("btw the payment udah aku transfer ya", "id"),
    ("is the promo still available kak?", "en"),
    ("hello kak, I want to return this item", "en"),
    ("tolong dong cek status order saya, thanks", "id"),
    ("kak refund aku udh di-approve belum?", "id"),
    ("ok sis, I will wait for the update", "en"),
    ("thanks kak", "id"),
    ("trackingnya stuck", "id"),
]

UNSURE = [
    "",
    "ok",
    "oke",
    "👍",
    "😂🙏",
    "123",
    "123 !!!",
    "INV-2026-00123",
    "#A7F3K9",
    "JP1234567890",
    "0812-3456-7890",
    "budi@contoh.id",
    "https://contoh.co.id/promo",
    "stop",
    "promo",
    "admin",
    "cs",
    "order",
    "ok ok",
    "hi",
    "thanks",
    "p",
    "hmm",
    "wkwkwk",
    "asdfghjkl",
]


@pytest.mark.parametrize("text", INDONESIAN)
def test_indonesian_formal_and_informal(text: str) -> None:
    assert detect_language(text) == "id"


@pytest.mark.parametrize("text", ENGLISH)
def test_english(text: str) -> None:
    assert detect_language(text) == "en"


@pytest.mark.parametrize(("text", "language"), MIXED)
def test_mixed_messages_take_the_language_the_sentence_is_built_in(text: str, language: str) -> None:
    assert detect_language(text) == language


@pytest.mark.parametrize("text", UNSURE)
def test_messages_that_do_not_say_are_left_to_the_profile(text: str) -> None:
    assert detect_language(text) is None


@pytest.mark.parametrize("text", ["a" * 10_000, "😡" * 5_000, "kak " * 2_500, "\x00\u200b", "你好"])
def test_odd_input_never_raises(text: str) -> None:
    assert detect_language(text) in {"id", "en", None}
