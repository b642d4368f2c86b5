"""Tell Indonesian from English by the everyday words each uses (informal spellings included)."""

from __future__ import annotations

import re

_ID = set("""
saya aku sy gw gue kamu anda bapak ibu kak kakak min mimin yang yg tidak tdk gak ga gk nggak ngga enggak
mau ingin bisa boleh tolong tlg mohon apa apakah gimana gmn bagaimana kenapa knp kapan berapa brp dimana
mana sudah udah udh sdh belum blm ini itu dan di ke dari untuk utk dengan dgn ada pesanan barang kirim
terima kasih makasih mksh trims halo selamat pagi siang sore malam dong sih deh ya iya nya juga lagi
sama buat aja saja cuma kok kenapa sampai sampe akan sedang lagi harus tapi tetapi karena krn jadi
nomor nama hapus ganti ubah poin tukar pesan berhenti komplain keluhan rusak lama banget bgt
""".split())
_EN = set("""
i me my mine you your we our the a an is are was were be been am do does did not no yes please can could
would will what where when why how which who order orders thanks thank hello hi hey good morning evening
want need to of for with from this that it its and or but my points change delete help agent
human person talk speak about status delivery refund there here have has had get got just still yet
""".split())
# "stop", "ok", "promo" are everyday Indonesian too: they say nothing about the language.
_WORD = re.compile(r"[a-zA-Z]+")


def detect_language(text: str) -> str | None:
    """'id', 'en', or None when the words do not say (then the profile or hint decides)."""
    words = [w.lower() for w in _WORD.findall(text)]
    id_score = sum(1 for w in words if w in _ID)
    en_score = sum(1 for w in words if w in _EN)
    if id_score == en_score:
        return None
    return "id" if id_score > en_score else "en"
