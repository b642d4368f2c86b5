"""Chat text reaches the classifier in one canonical spelling, however the customer typed it."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlu.normalise import KNOWN_WORDS, LEXICON, LexiconError, load_lexicon, normalise, words


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sy mau tanya", "saya mau tanya"),
        ("gk jd kak", "tidak jadi kakak"),
        ("ga usah kirim2 wa lagi", "tidak usah kirim kirim whatsapp lagi"),
        ("pesenan aku udh dateng blm ya min", "pesanan aku sudah datang belum ya admin"),
        ("knp lama bgt", "kenapa lama banget"),
        ("gmn cara tuker poin", "bagaimana cara tukar poin"),
        ("brp ongkir ke bandung", "berapa ongkos kirim ke bandung"),
        ("tlg cek resi dgn cepet", "tolong cek resi dengan cepat"),
        ("mksh kak", "terima kasih kakak"),
        ("makasih", "terima kasih"),
        ("terimakasih", "terima kasih"),
        ("trims", "terima kasih"),
        ("tq min", "terima kasih admin"),
        ("thx", "thanks"),
        ("ok", "oke"),
        ("gw pengen refund", "saya ingin refund"),
        ("aq blom terima barangnya", "aku belum terima barangnya"),
        ("brg nya rusak krn kurir", "barang nya rusak karena kurir"),
        ("skrg tgl brp", "sekarang tanggal berapa"),
        ("hrs bs dikirim hr ini", "harus bisa dikirim hari ini"),
        ("klo udh sampe kabarin ya", "kalau sudah sampai kabari ya"),
        ("pesananan saya kirm kmn", "pesanan saya kirim kemana"),
        ("cs nya gk bales2", "customer service nya tidak balas balas"),
        ("pls reply asap", "please reply as soon as possible"),
        ("idk where u sent it", "i do not know where you sent it"),
        ("I don't have ur number", "i do not have your number"),
        ("dll", "dan lain lain"),
        ("kirim s/d besok", "kirim sampai dengan besok"),
        ("pengiriman via j&t", "pengiriman via jnt"),
        ("no hp saya ganti", "nomor hp saya ganti"),
        ("no, thanks", "no thanks"),
        ("tv lg saya rusak", "tv lg saya rusak"),
        ("lg di jalan", "lagi di jalan"),
        ("buat pesanan baru", "buat pesanan baru"),
    ],
)
def test_slang_and_abbreviations_become_standard_words(text: str, expected: str) -> None:
    assert normalise(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tolonggg", "tolong"),
        ("bangettt", "banget"),
        ("haloooo", "halo"),
        ("HALOOO", "halo"),
        ("makasiii", "terima kasih"),
        ("gkkkk", "tidak"),
        ("siaaaap", "siap"),
        ("mantulll", "mantap"),
        ("tungguuuu", "tunggu"),
        ("okeeee", "oke"),
        ("pleaseeee", "please"),
        ("goood", "good"),
        ("asdfffff", "asdf"),
        # two letters at the end of a known word are an elongation too
        ("yaa", "ya"),
        ("kakk", "kakak"),
        ("tolongg", "tolong"),
        # words that really double a letter keep it
        ("maaf", "maaf"),
        ("maaaaf", "maaf"),
        ("saat", "saat"),
        ("saaaat", "saat"),
        ("tunggu", "tunggu"),
        ("minggu", "minggu"),
        ("anggota", "anggota"),
        ("good", "good"),
        ("too", "too"),
        ("all", "all"),
        ("pass", "pass"),
    ],
)
def test_elongations_are_squeezed_but_real_double_letters_stay(text: str, expected: str) -> None:
    assert normalise(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kirim2", "kirim kirim"),
        ("barang2", "barang barang"),
        ("brg2 saya", "barang barang saya"),
        ("hati2 ya", "hati hati ya"),
        ("kira2nya kapan", "kira kiranya kapan"),
        ("kirim2an", "kirim kiriman"),
        ("barang-barang", "barang barang"),
        ("kirim²", "kirim kirim"),
        ("masuk2,", "masuk masuk"),
        # a 2 that is a number, not a reduplication
        ("ke2", "ke2"),
        ("ps2", "ps2"),
        ("2 barang", "2 barang"),
    ],
)
def test_reduplication_with_a_2_is_spelt_out(text: str, expected: str) -> None:
    assert normalise(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("POIN SAYA BERAPA", "poin saya berapa"),
        ("Selamat Pagi", "selamat pagi"),
        ("Ｈａｌｏ ｋａｋ", "halo kakak"),  # full-width letters (NFKC)
        ("kak,pesanan", "kakak pesanan"),
        ("halo kak, pesanan saya mana?", "halo kakak pesanan saya mana ?"),
        ("kok belum sampai???", "kok belum sampai ?"),
        ("PARAH!!!", "parah !"),
        ("serius?!", "serius ?"),
        ('"tolong" (segera)', "tolong segera"),
        ("rp1.500.000", "rp1.500.000"),
        ("Rp 1.500.000,- ya", "rp 1.500.000 ya"),
        ("1,5jt", "1,5jt"),
        ("diskon 50%", "diskon 50%"),
        ("INV-2026-00123", "inv-2026-00123"),
        ("#A7F3K9", "a7f3k9"),
        ("INV/2026/XI/0042.", "inv/2026/xi/0042"),
        ("0812-3456-7890", "0812-3456-7890"),
        ("+62 812 3456 7890", "62 812 3456 7890"),
        ("tgl 12/12/2026 jam 10.00", "tanggal 12/12/2026 jam 10.00"),
        ("di-approve", "di approve"),
        ("e-mail", "email"),
        ("it’s late", "it is late"),
        ("   spasi    banyak  ", "spasi banyak"),
    ],
)
def test_case_punctuation_and_numbers(text: str, expected: str) -> None:
    assert normalise(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("saldo kepotong dua kali min 😡", "saldo kepotong dua kali admin emosi_negatif"),
        ("kecewa 😭😭😭", "kecewa emosi_negatif"),
        ("barangnya rusak👎", "barangnya rusak emosi_negatif"),
        ("lama banget :(", "lama banget emosi_negatif"),
        ("T_T", "emosi_negatif"),
        ("makasiii 🙏", "terima kasih"),
        ("iya min 👍", "iya admin"),
        ("hai kak 👋😊", "hai kakak"),
        ("selamat pagi kak 😊", "selamat pagi kakak"),
        ("oke :)", "oke"),
        ("😂", ""),
        ("🙂👍🙏❤️", ""),
        ("👨‍👩‍👧‍👦🇮🇩", ""),
    ],
)
def test_upset_emoji_become_one_token_and_other_emoji_go(text: str, expected: str) -> None:
    assert normalise(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cek https://contoh.co.id/promo?x=1 ya", "cek url ya"),
        ("link: http://bit.ly/abc123", "link url"),
        ("www.contoh.co.id", "url"),
        ("lihat di contoh.co.id/promo kak", "lihat di url kakak"),
        ("ganti email jadi Budi.Santoso@Contoh.co.id", "ganti email jadi email"),
        ("wkwkwk", "haha"),
        ("hahahaaa", "haha"),
        ("wkwkwkwkw lucu", "haha lucu"),
    ],
)
def test_links_addresses_and_laughter_become_placeholders(text: str, expected: str) -> None:
    assert normalise(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "\n\t",
        "😡😂🙏" * 50,
        "asdkjh qwpoeiru zxmcnv",
        "a" * 10_000,
        "kak " * 2_500,
        "a." * 5_000,
        "a@" * 5_000,
        ":(" * 5_000,
        "2" * 10_000,
        "aaabbbccc" * 1_000,
        "@#$%^&*()_+=-[]{}|\\;:'\",.<>/?`~",
        "\x00\x01\u200b\ufeff",
        "ẞ ǅ ﬁ Ⅻ ① ㎏",
        "你好 مرحبا Привет",
    ],
)
def test_never_raises_on_odd_input(text: str) -> None:
    result = normalise(text)
    assert isinstance(result, str)
    assert result == result.strip()
    assert "  " not in result


def test_ten_thousand_characters_are_normalised_whole() -> None:
    text = ("pesanan saya kemana yaaa kak 😡 https://contoh.id/a brg2 INV-2026-00123 " * 200)[:10_000]
    assert normalise(text).startswith("pesanan saya kemana ya kakak emosi_negatif url barang barang inv-2026-00123")


def test_words_are_the_normalised_text_split() -> None:
    text = "Halo kak, tq ya 🙏 pesenan2 aku mana?"
    assert words(text) == ["halo", "kakak", "terima", "kasih", "ya", "pesanan", "pesanan", "aku", "mana", "?"]
    assert normalise(text) == " ".join(words(text))


def test_the_lexicon_is_large_and_every_entry_applies_as_written() -> None:
    assert len(LEXICON) >= 250
    wrong = {
        informal: normalise(informal) for informal, canonical in LEXICON.items() if normalise(informal) != canonical
    }
    assert wrong == {}
    changed = {word: normalise(word) for word in KNOWN_WORDS - LEXICON.keys() if normalise(word) != word}
    assert changed == {}


def test_lexicon_entries_are_one_step() -> None:
    chained = {
        informal: canonical
        for informal, canonical in LEXICON.items()
        if any(word in LEXICON for word in canonical.split())
    }
    assert chained == {}


def test_lexicon_file_accepts_tabs_spaces_comments_and_known_words(tmp_path: Path) -> None:
    path = tmp_path / "slang.tsv"
    path.write_text("# comment\n\nGK\ttidak   # trailing comment\ntq   terima  kasih\nmaaf\n", encoding="utf-8")
    lexicon, known = load_lexicon(path)
    assert lexicon == {"gk": "tidak", "tq": "terima kasih"}
    assert known == {"gk", "tidak", "tq", "terima", "kasih", "maaf"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("gk\ttidak\ngk\tenggak\n", "slang.tsv:2: 'gk' is listed twice"),
        ("tidak jadi\tgajadi\n", "slang.tsv:1: 'tidak jadi' is not one token"),
        ("?!\ttanya\n", "slang.tsv:1: '?!' is not one token"),
    ],
)
def test_lexicon_file_mistakes_name_the_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "slang.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(LexiconError, match=message.replace("?", r"\?")):
        load_lexicon(path)
