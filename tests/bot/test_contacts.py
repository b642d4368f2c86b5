"""Phone and email normalisation (CRM-1.3: data entered completely and accurately)."""

from __future__ import annotations

import pytest

from bot.contacts import normalise_email, normalise_phone


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("0812-3456-7890", "+6281234567890"),
        ("+62 812 3456 7890", "+6281234567890"),
        ("(021) 555-1234", "+62215551234"),
        ("6281234567890", "+6281234567890"),  # country code written without the +
        ("0812345abc54", None),
        ("08123-CALL-ME", None),
        ("12", None),
        ("", None),
    ],
)
def test_phone_numbers_become_e164_or_are_refused(raw, e164):
    assert normalise_phone(raw) == e164


def test_emails_are_lower_cased_and_checked():
    assert normalise_email(" Budi@Example.COM ") == "budi@example.com"
    assert normalise_email("budi@@example.com") is None
    assert normalise_email("budi") is None
