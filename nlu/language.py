"""Tell Indonesian from English by the everyday words each uses, after slang is spelt out.

The message is read through `nlu.normalise.words`, so "gk udh blm knp" is scored as
"tidak sudah belum kenapa". Each word that belongs to one language adds its weight to that
language; the heavier side wins, and a message that says too little ("ok", "👍", an order id)
gets None so the customer's profile or the channel's hint decides.

Weights follow how Indonesian customers actually mix: they drop English nouns and courtesies
into Indonesian sentences ("tracking nya stuck", "thanks kak"), while the grammar words (aku,
kok, belum, ya, -nya) show the language the sentence is built in. So Indonesian function words
weigh 1.5, other Indonesian words 1, English function words 1 and English courtesies 0.5.
Words common to both ("ok", "stop", "promo", "admin", "order", "cs") are in neither list.
"""

from __future__ import annotations

from nlu.normalise import words

_ID_FUNCTION = frozenset(
    """
saya aku kamu anda kita kami dia mereka kalian beliau kakak bapak ibu mbak mas abang
yang tidak bukan belum sudah sedang akan masih juga lagi saja cuma hanya sangat banget sekali lebih paling
ini itu sini situ sana begitu begini di ke dari pada kepada untuk dengan dan atau tapi tetapi namun karena
kalau jika agar supaya sampai hingga oleh sama bagi tentang seperti sebagai tersebut mengenai terhadap
apa apakah siapa mana dimana kemana kapan berapa bagaimana kenapa mengapa ada adalah ialah merupakan
bisa dapat boleh harus mau ingin perlu mohon tolong silakan jangan
ya iya dong sih deh nih kok kan lho loh yah tuh lah pun kah nya
jadi lalu kemudian terus baru setelah sebelum sesudah nanti tadi sekarang kemarin besok lusa
""".split()
)

_ID_CONTENT = frozenset(
    """
halo hai selamat pagi siang sore malam permisi kasih maaf assalamualaikum sampai jumpa
pesanan pesan barang kirim dikirim kiriman pengiriman datang alamat nomor nama ganti ubah hapus batal
batalkan dibatalkan bayar pembayaran harga ongkos uang dana saldo poin tukar hadiah rusak salah lama
cepat lambat terlambat tunggu ditunggu cek lihat tanya bantu bantuan dibantu minta tagihan faktur garansi
toko cabang buka tutup jam hari minggu bulan tahun produk stok tersedia beli pembelian belanja keluhan
komplain kecewa kurir paket resi lacak diproses proses pengembalian ulang akun data pribadi berhenti
langganan berlangganan informasi pelanggan kartu cicilan rekening caranya cara kabar benar betul salah
baik bagus mantap siap setuju lanjut usah
rumah kantor teknisi pemasangan pasang kulkas mesin cuci lemari tahu mengerti bicara orang manusia
""".split()
)

_EN_FUNCTION = frozenset(
    """
i me my mine myself you your yours we us our ours he him his she her they them their it its
this that these those the a an is are was were be been being am do does did done have has had
will would shall should can could may might must cannot not no yes yeah
what where when why how which who whom whose there here of to for with from at by about into
after before until since because if then than so but and or also just only still yet already
very too much many more most some any all every each other another again now today tomorrow yesterday
want need know think get got give send receive received arrived delivered hello good morning afternoon
evening night thank you please sorry anyone someone nobody answer
""".split()
)

# Courtesies Indonesian customers use too: they lean English, but never decide a message alone.
_EN_WEAK = frozenset("hi hey thanks please sorry help bye yes no yeah".split())

_ID_WEIGHT = {word: 1.0 for word in _ID_CONTENT} | {word: 1.5 for word in _ID_FUNCTION}  # function weight wins
_EN_WEIGHT = {word: 1.0 for word in _EN_FUNCTION - _EN_WEAK} | {word: 0.5 for word in _EN_WEAK}


def detect_language(text: str) -> str | None:
    """'id', 'en', or None when the words do not say (then the profile or hint decides)."""
    indonesian = english = 0.0
    for word in words(text):
        weight = _ID_WEIGHT.get(word)
        if weight is not None:
            indonesian += weight
            continue
        weight = _EN_WEIGHT.get(word)
        if weight is not None:
            english += weight
        elif len(word) > 4 and word.isalpha() and (word.endswith("nya") or word.endswith("kan")):
            indonesian += 1.0  # Indonesian suffixes on any stem: "trackingnya", "batalkan", "pesanannya"
    if max(indonesian, english) < 1.0 or indonesian == english:
        return None
    return "id" if indonesian > english else "en"
