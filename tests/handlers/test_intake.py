"""Name capture: what counts as a name, and what is a request in disguise."""

from __future__ import annotations

import pytest

from handlers.intake import extract_name


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
        "???",
    ],
)
def test_sentences_and_numbers_are_not_names(text):
    assert extract_name(text) is None
