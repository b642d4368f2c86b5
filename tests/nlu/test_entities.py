"""Entities a handler receives from a customer's words, normalised as docs/nlu.md promises."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from nlu.entities import MAX_SCAN_CHARS, extract_entities

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Jakarta"))  # a Monday


def found(text: str, kind: str) -> list[tuple[str | int, str]]:
    """(value, text as written) of every entity of one kind, checking each span points into the message."""
    entities = extract_entities(text, NOW)
    for e in entities:
        assert e.start is not None and e.end is not None
        assert text[e.start:e.end] == e.text
    return [(e.value, e.text) for e in entities if e.entity == kind]


# --- order_id ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tolong kirim ulang invoice INV-2026-00123 ya", [("INV-2026-00123", "INV-2026-00123")]),
        ("faktur INV/2026/XI/0042 belum lunas", [("INV/2026/XI/0042", "INV/2026/XI/0042")]),
        ("inv 2026 00123?", [("inv 2026 00123", "inv 2026 00123")]),
        ("pesanan #A7F3K9 belum sampai", [("A7F3K9", "#A7F3K9")]),
        ("kode #a7f3k9.", [("a7f3k9", "#a7f3k9")]),
        ("resi JNE saya JP1234567890 kok belum gerak", [("JP1234567890", "JP1234567890")]),
        ("no resi: 0123456789012", [("0123456789012", "0123456789012")]),
        ("nomor pesanan saya 2026112300123", [("2026112300123", "2026112300123")]),
        ("Where is my order INV-2026-00123?", [("INV-2026-00123", "INV-2026-00123")]),
        ("tracking number 0987654321098 please", [("0987654321098", "0987654321098")]),
        ("my order #12345 and AWB RR123456789ID", [("12345", "#12345"), ("RR123456789ID", "RR123456789ID")]),
        ("nomer resi sicepat 000123456789 tolong dicek", [("000123456789", "000123456789")]),
        ("tracking anteraja 10002345678901 kok belum update", [("10002345678901", "10002345678901")]),
    ],
)
def test_order_ids_are_read_as_written_without_the_hash(text, expected):
    assert found(text, "order_id") == expected


# Indonesian couriers' tracking numbers and marketplace order numbers, in the shapes customers paste them.
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("paket sy blm nyampe udh seminggu, resi JNE JP1234567890", "JP1234567890"),  # J&T: JP/JD/JX + 10 digits
        ("resi jnt JD0123456789 blm gerak", "JD0123456789"),
        ("sicepat 002345678901 kok blm sampe", "002345678901"),  # a courier's name introduces the number
        ("JNE 8803042010000123 udah 5 hari", "8803042010000123"),
        ("resi: CGK1A01234567890", "CGK1A01234567890"),  # JNE with its origin code
        ("awb SPXID012345678901", "SPXID012345678901"),  # Shopee Express
        ("SPXID012345678901 posisinya dimana", "SPXID012345678901"),
        ("ninja NLIDAP12345678 gak update", "NLIDAP12345678"),
        ("lion parcel 11LP1234567890123", "11LP1234567890123"),
        ("pesanan 220101ABCDEF12 belum dikirim", "220101ABCDEF12"),  # a marketplace order number
        ("INV/20260101/MPL/1234567890 kapan sampai", "INV/20260101/MPL/1234567890"),
        ("resi jne 0115 1234 5678 9012", "0115 1234 5678 9012"),  # read out in groups
    ],
)
def test_tracking_numbers_of_indonesian_couriers(text, expected):
    assert [value for value, _ in found(text, "order_id")] == [expected]


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("Rp1500000000", "amount", 1500000000),  # letters and digits, but money
        ("IDR150000000", "amount", 150000000),
        ("resi 0812 3456 7890", "phone", "+6281234567890"),  # a phone in groups is still a phone
    ],
)
def test_amounts_and_phones_are_not_tracking_numbers(text, kind, value):
    assert found(text, "order_id") == []
    assert [v for v, _ in found(text, kind)] == [value]


@pytest.mark.parametrize("text", ["jne ke bandung berapa lama", "pesanan ABCDEFGH12", "resi abcdefgh", "pos 1234"])
def test_a_courier_or_resi_without_a_number_is_no_order_id(text):
    assert found(text, "order_id") == []


@pytest.mark.parametrize(
    "text",
    [
        "ada #promo apa hari ini?",
        "ikut #promo2026 dong",
        "pesan 2 unit tv 43 inch",
        "order 12345",  # too short to be a pesanan number without INV or #
        "kirim inv 2 lembar",
        "resi saya 081234567890",  # a phone number is not an order id
        "hubungi wa 0812-3456-7890",
        "tahun 2025",
    ],
)
def test_what_is_not_an_order_id(text):
    assert found(text, "order_id") == []


# --- amount --------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "value", "written"),
    [
        ("sudah transfer Rp 1.500.000 kak", 1500000, "Rp 1.500.000"),
        ("total Rp1.500.000,00", 1500000, "Rp1.500.000,00"),
        ("budget 1,5jt aja", 1500000, "1,5jt"),
        ("kisaran 1.5 juta", 1500000, "1.5 juta"),
        ("ongkir 250rb?", 250000, "250rb"),
        ("cashback 250 ribu", 250000, "250 ribu"),
        ("harganya 250k", 250000, "250k"),
        ("kurang 2 juta", 2000000, "2 juta"),
        ("dp rp. 50.000", 50000, "rp. 50.000"),
        ("refund 75.000 rupiah", 75000, "75.000 rupiah"),
        ("saldo Rp 1,2 M", 1200000000, "Rp 1,2 M"),
        ("dua juta", 2000000, "dua juta"),
        ("seratus ribu saja", 100000, "seratus ribu"),
        ("lima ratus rb", 500000, "lima ratus rb"),
        ("setengah juta", 500000, "setengah juta"),
        ("satu setengah juta", 1500000, "satu setengah juta"),
        ("dua ratus lima puluh ribu rupiah", 250000, "dua ratus lima puluh ribu rupiah"),
        ("dua belas ribu", 12000, "dua belas ribu"),
        ("sebelas juta", 11000000, "sebelas juta"),
        ("seribu", 1000, "seribu"),
        ("ada kipas yg 300 ribuan?", 300000, "300 ribuan"),
        ("I paid IDR 75,000 twice", 75000, "IDR 75,000"),
        ("refund of Rp 1,500,000.00", 1500000, "Rp 1,500,000.00"),
        ("charged IDR 1.5m", 1500000, "IDR 1.5m"),
        ("about 2 million", 2000000, "2 million"),
        ("the fee was 25k", 25000, "25k"),
    ],
)
def test_amounts_become_integer_rupiah(text, value, written):
    assert found(text, "amount") == [(value, written)]


@pytest.mark.parametrize(
    "text",
    [
        "pesan 2 unit",
        "tv 43 inch",
        "tahun 2025",
        "harga 1.500.000 ya",  # a bare number: no currency and no ribu/juta
        "kabel 5m",  # metres: "m" is million only after Rp/IDR
        "invoice INV-2026-00123",
        "dua unit",
        "tiga hari",
        "I need 3 chairs",
    ],
)
def test_what_is_not_an_amount(text):
    assert found(text, "amount") == []


# --- phone ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "value", "written"),
    [
        ("hubungi 0812-3456-7890 ya", "+6281234567890", "0812-3456-7890"),
        ("wa saya 0812 3456 7890", "+6281234567890", "0812 3456 7890"),
        ("nomor baru +62 812 3456 7890.", "+6281234567890", "+62 812 3456 7890"),
        ("hp: 6281234567890", "+6281234567890", "6281234567890"),
        ("kantor (021) 555-1234", "+62215551234", "(021) 555-1234"),
        ("telp 021-5551234", "+62215551234", "021-5551234"),
        ("0812 3456 7890 2 unit", "+6281234567890", "0812 3456 7890"),
        ("call me on +65 6123 4567", "+6561234567", "+65 6123 4567"),
        ("my US number is +1 415 555 2671", "+14155552671", "+1 415 555 2671"),
        ("phone: +62 21 5551234", "+62215551234", "+62 21 5551234"),
    ],
)
def test_phones_become_e164(text, value, written):
    assert found(text, "phone") == [(value, written)]


@pytest.mark.parametrize(
    "text",
    [
        "invoice INV-2026-00123",
        "resi JP1234567890",
        "no resi 0123456789012",
        "kirim 12-12-2026",
        "nomor 081234",  # too short
        "email budi081234567890@contoh.id",
        "transfer Rp 1.500.000",
        "call 415 555 2671",  # foreign numbers need their +
    ],
)
def test_what_is_not_a_phone(text):
    assert found(text, "phone") == []


# --- email ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "value", "written"),
    [
        ("ganti email saya jadi Budi.Santoso@Contoh.co.id", "budi.santoso@contoh.co.id", "Budi.Santoso@Contoh.co.id"),
        ("kirim ke budi@contoh.id.", "budi@contoh.id", "budi@contoh.id"),
        ("emailnya (rina_w+cs@mail.contoh.com), makasih", "rina_w+cs@mail.contoh.com", "rina_w+cs@mail.contoh.com"),
        ("Please send it to SARAH.LEE@EXAMPLE.COM!", "sarah.lee@example.com", "SARAH.LEE@EXAMPLE.COM"),
        ("my email is john-doe99@example.org, thanks", "john-doe99@example.org", "john-doe99@example.org"),
    ],
)
def test_emails_are_lower_cased(text, value, written):
    assert found(text, "email") == [(value, written)]


@pytest.mark.parametrize("text", ["mention @budi", "budi at contoh dot id", "a@b", "user@localhost"])
def test_what_is_not_an_email(text):
    assert found(text, "email") == []


# --- date ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "value", "written"),
    [
        ("bisa dikirim hari ini?", "2026-11-23", "hari ini"),
        ("kirim besok aja", "2026-11-24", "besok"),
        ("besuk pagi ya", "2026-11-24", "besuk"),
        ("bsk bisa?", "2026-11-24", "bsk"),
        ("lusa saja", "2026-11-25", "lusa"),
        ("yang kemarin rusak", "2026-11-22", "kemarin"),
        ("senin depan bisa?", "2026-11-30", "senin depan"),
        ("jumat depan", "2026-11-27", "jumat depan"),
        ("Jumat ini", "2026-11-27", "Jumat ini"),
        ("hari jumat", "2026-11-27", "hari jumat"),
        ("hari senin", "2026-11-30", "hari senin"),  # today is Monday: a bare weekday is a future one
        ("hari minggu", "2026-11-29", "hari minggu"),
        ("senin ini", "2026-11-23", "senin ini"),
        ("jumat lalu", "2026-11-20", "jumat lalu"),
        ("jumat minggu depan", "2026-12-04", "jumat minggu depan"),
        ("minggu depan aja", "2026-11-30", "minggu depan"),
        ("tanggal 12 Desember", "2026-12-12", "12 Desember"),
        ("12 Des 2026 bisa?", "2026-12-12", "12 Des 2026"),
        ("tgl 23 November", "2026-11-23", "23 November"),  # no year: on or after today
        ("tgl 22 november", "2027-11-22", "22 november"),
        ("5 ags", "2027-08-05", "5 ags"),
        ("tgl 12/12/2026", "2026-12-12", "12/12/2026"),
        ("tgl 01-12-2026", "2026-12-01", "01-12-2026"),
        ("kirim ke tanggal 15 ya", "2026-12-15", "tanggal 15"),  # the 15th of November has passed
        ("tgl 30", "2026-11-30", "tgl 30"),
        ("yg aku order tanggal 1 kemarin", "2026-11-01", "tanggal 1 kemarin"),
        ("hingga Senin, 7 Desember", "2026-12-07", "Senin, 7 Desember"),
        ("can you deliver tomorrow?", "2026-11-24", "tomorrow"),
        ("today please", "2026-11-23", "today"),
        ("the day after tomorrow", "2026-11-25", "day after tomorrow"),
        ("it broke yesterday", "2026-11-22", "yesterday"),
        ("next friday", "2026-11-27", "next friday"),
        ("next monday", "2026-11-30", "next monday"),
        ("on Friday", "2026-11-27", "on Friday"),
        ("next week", "2026-11-30", "next week"),
        ("deliver on Dec 12", "2026-12-12", "Dec 12"),
        ("December 12th works", "2026-12-12", "December 12th"),
        ("by 2026-12-12", "2026-12-12", "2026-12-12"),
        ("29 Feb", "2028-02-29", "29 Feb"),
    ],
)
def test_dates_become_iso_days_in_jakarta(text, value, written):
    assert found(text, "date") == [(value, written)]


@pytest.mark.parametrize(
    "text",
    [
        "tahun 2025",
        "2 minggu lalu",  # two weeks, not one
        "dua minggu depan",
        "minggu ini sibuk",
        "jam 10.30",
        "31 Feb",
        "tv 43 inch",
        "pesan 2 unit",
        "it may 2x the price",
    ],
)
def test_what_is_not_a_date(text):
    assert found(text, "date") == []


def test_relative_dates_count_from_the_day_in_jakarta_not_utc():
    late_sunday_utc = datetime(2026, 11, 22, 20, 0, tzinfo=UTC)  # already Monday 03:00 in Jakarta
    assert [e.value for e in extract_entities("besok", late_sunday_utc)] == ["2026-11-24"]
    naive_local = datetime(2026, 11, 23, 3, 0)
    assert [e.value for e in extract_entities("besok", naive_local)] == ["2026-11-24"]


# --- person_name ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "value", "written"),
    [
        ("nama saya budi santoso dan saya mau komplain", "Budi Santoso", "budi santoso"),
        ("nama sy Dewi", "Dewi", "Dewi"),
        ("namaku rina, mau tanya", "Rina", "rina"),
        ("halo kak, saya Dewi", "Dewi", "Dewi"),
        ("aku Andi dari Surabaya", "Andi", "Andi"),
        ("panggil saja Rudi ya", "Rudi", "Rudi"),
        ("nama saya adalah SITI NURHALIZA", "Siti Nurhaliza", "SITI NURHALIZA"),
        ("nama saya Muhammad Rizki Pratama Putra", "Muhammad Rizki Pratama", "Muhammad Rizki Pratama"),
        ("my name is Sarah Lee", "Sarah Lee", "Sarah Lee"),
        ("Hi, this is John.", "John", "John"),
        ("I'm Kevin", "Kevin", "Kevin"),
        ("I'm Ahmed from Jakarta", "Ahmed", "Ahmed"),
        ("call me dave, please", "Dave", "dave"),
        ("tolong ubah nama saya jadi budi", "Budi", "budi"),
        ("selamat siang, saya Ibu Kartika", "Kartika", "Kartika"),  # the honorific is not the name
        ("cek pesanan atas nama Hendra dong", "Hendra", "Hendra"),
        ("salam kenal aku nadia putri", "Nadia Putri", "nadia putri"),
        ("ganti nama akun jadi Putri Ayu dong", "Putri Ayu", "Putri Ayu"),
        ("nama aku di akun salah ketik, harusnya Rizky Pratama", "Rizky Pratama", "Rizky Pratama"),
        ("my name is spelled wrong, it should be Michael Hartono", "Michael Hartono", "Michael Hartono"),
        ("please update my name to Michael Tan", "Michael Tan", "Michael Tan"),
        ("pesanan ini atas nama penerima Dimas Saputra ya", "Dimas Saputra", "Dimas Saputra"),
    ],
)
def test_names_from_self_introductions_are_title_cased(text, value, written):
    assert found(text, "person_name") == [(value, written)]


@pytest.mark.parametrize(
    "text",
    [
        "saya mau komplain",
        "saya sudah transfer",
        "saya kecewa.",
        "SAYA KECEWA SEKALI",
        "saya menunggu",
        "pesanan saya rusak.",
        "nama saya salah di invoice",
        "I'm angry",
        "I'm waiting.",
        "this is ridiculous!",
        "Hi this is urgent",
        "my name is wrong on the invoice",
        "ganti nama akun",
        "saya pamit dulu",
        "aku ditagih 2 juta",
        "i'm off, bye",
        "saya kapok belanja di sini",
        "Perkenalkan, saya bersedia",
        "tolong bikinin invoice atas nama PT Sinar Jaya",
        "kirim jadi dua paket ya",  # "jadi" names someone only after "nama"/"name"
        "ganti nama barang jadi kulkas",
    ],
)
def test_what_is_not_a_name(text):
    assert found(text, "person_name") == []


# --- overlaps and the whole message --------------------------------------------------------------

def test_an_introduction_is_not_followed_by_a_second_name():
    assert found("my name is Budi, please send it to Jakarta", "person_name") == [("Budi", "Budi")]


def test_a_message_with_all_six_kinds():
    text = ("halo saya Budi 🙏 mau tanya INV-2026-00123, sudah bayar Rp 1.500.000 ke budi@contoh.id, "
            "hp 0812-3456-7890, kirim besok ya")
    entities = extract_entities(text, NOW)
    assert [(e.entity, e.value, e.text, e.start) for e in entities] == [
        ("person_name", "Budi", "Budi", 10),
        ("order_id", "INV-2026-00123", "INV-2026-00123", 27),
        ("amount", 1500000, "Rp 1.500.000", 55),
        ("email", "budi@contoh.id", "budi@contoh.id", 71),
        ("phone", "+6281234567890", "0812-3456-7890", 90),
        ("date", "2026-11-24", "besok", 112),
    ]
    assert all(e.end == e.start + len(e.text) for e in entities if e.start is not None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("resi saya 081234567890", [("phone", "+6281234567890")]),
        ("no resi 0123456789012", [("order_id", "0123456789012")]),
        ("email budi081234567890@contoh.id", [("email", "budi081234567890@contoh.id")]),
        ("IDR 75,000 ke 0812 3456 7890", [("amount", 75000), ("phone", "+6281234567890")]),
        ("tgl 12-12-2026", [("date", "2026-12-12")]),
        ("INV-2026-12-12", [("order_id", "INV-2026-12-12")]),
        ("kirim #A7F3K9 tanggal 12 Desember", [("order_id", "A7F3K9"), ("date", "2026-12-12")]),
        ("hari minggu depan", [("date", "2026-11-29")]),
        ("ditunda hingga Senin, 7 Desember", [("date", "2026-12-07")]),
    ],
)
def test_one_reading_per_span(text, expected):
    assert [(e.entity, e.value) for e in extract_entities(text, NOW)] == expected


# --- robustness ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text",
    ["", "   ", "😀🙏😡" * 50, "asdkjh qwe zxcmn 12 ,,, ..!! ##", "\x00\n\t", "ʕ•ᴥ•ʔ ¯\\_(ツ)_/¯", "+++---(((0)))"],
)
def test_nothing_in_empty_or_noise(text):
    assert extract_entities(text, NOW) == ()


def test_long_and_random_messages_give_valid_spans():
    rng = random.Random(7)
    alphabet = "abcdefghij klmnopqrstuvwxyz 0123456789 .,-+@#/:()Rp jt rb saya besok 😀"
    samples = ["".join(rng.choice(alphabet) for _ in range(10_000)) for _ in range(5)]
    samples += ["saya " * 2000, "0812 " * 2000, "12/12/2026 " * 1000, "a" * 10_000, "dua ratus " * 1000]
    for text in samples:
        entities = extract_entities(text, NOW)
        ends = [0, *(e.end for e in entities)]
        for previous_end, e in zip(ends, entities, strict=False):
            assert e.start is not None and e.end is not None
            assert previous_end <= e.start < e.end <= MAX_SCAN_CHARS
            assert text[e.start:e.end] == e.text


def test_only_the_first_characters_are_read():
    text = "x" * MAX_SCAN_CHARS + " budi@contoh.id"
    assert extract_entities(text, NOW) == ()
