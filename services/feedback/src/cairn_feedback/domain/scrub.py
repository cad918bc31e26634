"""PII scrubbing of dataset text: e-mail addresses, phone numbers, card numbers and IBANs become markers.

Checked candidates only: a card number must pass the Luhn check and an IBAN its mod-97 check, so
order numbers and the like stay. IBANs and cards go first, as their digits would look like a phone.
"""

from __future__ import annotations

import re

__all__ = ["CARD", "EMAIL", "IBAN", "PHONE", "iban_is_valid", "luhn_is_valid", "scrub"]

EMAIL = "[EMAIL]"
PHONE = "[PHONE]"
CARD = "[CARD]"
IBAN = "[IBAN]"

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])"
)
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_PHONE = re.compile(r"(?<![\w+@])(?:\+|\(\d)?[\d(][\d ().-]{6,}\d(?![\w@])")


def luhn_is_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn checksum (payment card numbers do)."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iban_is_valid(text: str) -> bool:
    """Whether `text` (spaces allowed) is an IBAN with a correct mod-97 check."""
    compact = text.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(char, 36)) for char in rearranged)
    return int(number) % 97 == 1


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return CARD if 13 <= len(digits) <= 19 and luhn_is_valid(digits) else match.group()


def _iban(match: re.Match[str]) -> str:
    text = match.group()
    # the pattern may run into a following word of capitals and digits; take the longest valid prefix
    for end in range(len(text), 14, -1):
        if iban_is_valid(text[:end]) and not text[:end].endswith(" "):
            return IBAN + text[end:]
    return text


def _phone(match: re.Match[str]) -> str:
    text = match.group()
    digits = sum(char.isdigit() for char in text)
    if not 9 <= digits <= 15:
        return text
    separators = {char for char in text if char in " ()-"}
    dots = text.count(".")
    if not text.startswith("+") and not separators and dots < 2:
        return text  # a bare number or a decimal is not taken for a phone
    return PHONE


def scrub(text: str) -> str:
    """`text` with e-mails → [EMAIL], IBANs → [IBAN], card numbers → [CARD], phone numbers → [PHONE]."""
    text = _EMAIL.sub(EMAIL, text)
    text = _IBAN.sub(_iban, text)
    text = _CARD.sub(_card, text)
    return _PHONE.sub(_phone, text)
