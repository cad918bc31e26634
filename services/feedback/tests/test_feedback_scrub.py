"""The PII scrubber: e-mails, phone numbers, card numbers (Luhn) and IBANs (mod 97) become markers."""

from __future__ import annotations

import pytest

from cairn_feedback.domain.scrub import iban_is_valid, luhn_is_valid, scrub


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail ana.lopez+work@example.co.uk now", "mail [EMAIL] now"),
        ("call +44 20 7946 0958 today", "call [PHONE] today"),
        ("call (555) 123-4567.", "call [PHONE]."),
        ("or 555.123.4567", "or [PHONE]"),
        ("+33 6 12 34 56 78", "[PHONE]"),
        ("card 4111 1111 1111 1111 ok", "card [CARD] ok"),
        ("card 5500-0000-0000-0004", "card [CARD]"),
        ("iban DE89 3704 0044 0532 0130 00 please", "iban [IBAN] please"),
        ("GB82WEST12345698765432", "[IBAN]"),
        ("Ana <ana@example.com>, 4111111111111111", "Ana <[EMAIL]>, [CARD]"),
    ],
)
def test_pii_becomes_markers(text: str, expected: str) -> None:
    assert scrub(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Order 4111 1111 1111 1112 failed",  # fails Luhn
        "DE89 3704 0044 0532 0130 01",  # fails mod 97 (and is too short a phone run)
        "released on 2025-03-04 at 09:15",
        "pi is 3.14159265358",
        "version 1.2.3, ticket 12345",
        "order number 123456789012",  # a bare number is not a phone
        "no pii here at all",
    ],
)
def test_look_alikes_stay(text: str) -> None:
    assert scrub(text) == text


def test_checksums() -> None:
    assert luhn_is_valid("4111111111111111")
    assert not luhn_is_valid("4111111111111112")
    assert iban_is_valid("DE89 3704 0044 0532 0130 00")
    assert not iban_is_valid("DE88 3704 0044 0532 0130 00")
    assert not iban_is_valid("DE89")


def test_scrub_is_idempotent() -> None:
    text = "ana@example.com +1 415 555 2671 4111-1111-1111-1111 DE89370400440532013000"
    once = scrub(text)
    assert once == "[EMAIL] [PHONE] [CARD] [IBAN]"
    assert scrub(once) == once
