"""Personal data in text: detectors for e-mail addresses, phone numbers, card numbers (Luhn), IBANs
(mod-97), US social security numbers and UK national insurance numbers; and redaction with typed
placeholders such as `[EMAIL]`.

Detectors favour precision: a number is a card only when it passes Luhn and starts like a card, an
IBAN only when its country, length and mod-97 check agree, a phone number only when it is written
like one (a leading `+`, or separators in a national layout). Plain numbers, dates, times and
amounts are not personal data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "IBAN_LENGTHS",
    "PiiKind",
    "PiiMatch",
    "find_pii",
    "iban_valid",
    "luhn_valid",
    "redact",
]


class PiiKind(StrEnum):
    """A kind of personal data; the value names its finding (`pii.<kind>`) and its placeholder."""

    EMAIL = "email"
    PHONE = "phone"
    CARD_NUMBER = "card_number"
    IBAN = "iban"
    US_SSN = "us_ssn"
    UK_NINO = "uk_nino"

    @property
    def placeholder(self) -> str:
        """What replaces a match when redacting, e.g. `[EMAIL]`."""
        return f"[{self.value.upper()}]"

    @property
    def label(self) -> str:
        """The finding label, e.g. `email_address`."""
        return _LABELS[self]


_LABELS = {
    PiiKind.EMAIL: "email_address",
    PiiKind.PHONE: "phone_number",
    PiiKind.CARD_NUMBER: "payment_card_number",
    PiiKind.IBAN: "iban",
    PiiKind.US_SSN: "us_social_security_number",
    PiiKind.UK_NINO: "uk_national_insurance_number",
}

# How sure a match of each kind is personal data (the finding's score).
CONFIDENCE: dict[PiiKind, float] = {
    PiiKind.EMAIL: 1.0,
    PiiKind.CARD_NUMBER: 1.0,
    PiiKind.IBAN: 1.0,
    PiiKind.US_SSN: 0.9,
    PiiKind.UK_NINO: 0.9,
    PiiKind.PHONE: 0.8,
}


@dataclass(frozen=True)
class PiiMatch:
    """One piece of personal data found in a text: its kind and its span [start, end)."""

    kind: PiiKind
    start: int
    end: int

    @property
    def confidence(self) -> float:
        """How sure the detector is (1.0 for checksum-validated kinds)."""
        return CONFIDENCE[self.kind]


def luhn_valid(digits: str) -> bool:
    """True when `digits` (only 0-9, at least 2 of them) passes the Luhn check."""
    if len(digits) < 2 or not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


# ISO 13616 IBAN lengths of the countries in the SWIFT IBAN registry.
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23,
    "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip


def iban_valid(iban: str) -> bool:
    """True when `iban` (spaces allowed) has a known country, that country's length and mod-97 == 1."""
    compact = iban.replace(" ", "").upper()
    if not compact.isascii() or not compact.isalnum() or len(compact) < 5:
        return False
    country, check = compact[:2], compact[2:4]
    if IBAN_LENGTHS.get(country) != len(compact) or not check.isdigit() or not country.isalpha():
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


# --- detectors: each returns spans in one text -----------------------------------------------------

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,63})@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,24}(?![\w-])"
)

# 13-19 digits, optionally grouped by one kind of separator (space or hyphen).
_CARD = re.compile(r"(?<![\w.,/+-])\d(?:[ -]?\d){12,18}(?![\w/]|[.,-]\d)")

_SSN = re.compile(r"(?<![\w-])(?!000|666|9\d\d)(\d{3})([- ])(?!00)(\d{2})\2(?!0000)(\d{4})(?![\w-])")

# UK NINO: two prefix letters (D, F, I, Q, U, V never; O never second; some pairs never
# allocated), six digits, a suffix A-D; the usual layout groups them in pairs.
_NINO = re.compile(
    r"(?<![\w-])(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
    r"(?: ?\d{2}){3} ?[A-D](?![\w-])",
    re.IGNORECASE,
)

_PHONE_PATTERNS = (
    # international: +CC then groups (optionally one group in parentheses)
    re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(\d{1,4}\))?(?:[ .-]?\d{1,5}){1,6}(?![\w-]|[.,]\d)"),
    # North American: (555) 123-4567, 555-123-4567, 555.123.4567, 555 123 4567
    re.compile(r"(?<![\w(.-])(?:\(\d{3}\) ?|\d{3}([ .-]))\d{3}[ .-]\d{4}(?![\w-]|[.,]\d)"),
    # national trunk prefix 0 with spaces or hyphens: 020 7946 0958, 07700 900123, 030-1234-5678
    re.compile(r"(?<![\w.-])0\d{2,4}(?:[ -]\d{3,6}){1,2}(?![\w-]|[.,]\d)"),
)


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _card_prefix_ok(digits: str) -> bool:
    """Starts like a payment card (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro)."""
    if digits[0] in "3456":
        return True
    return digits[0] == "2" and 2221 <= int(digits[:4]) <= 2720  # Mastercard 2-series


def _cards(text: str) -> Iterable[tuple[int, int]]:
    for m in _CARD.finditer(text):
        raw = m.group(0)
        seps = {ch for ch in raw if not ch.isdigit()}
        digits = _digits(raw)
        if len(seps) <= 1 and 13 <= len(digits) <= 19 and _card_prefix_ok(digits) and luhn_valid(digits):
            yield m.start(), m.end()


_IBAN_START = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{2})(\d{2})")


def _ibans(text: str) -> Iterable[tuple[int, int]]:
    pos = 0
    while True:
        m = _IBAN_START.search(text, pos)
        if m is None:
            return
        country = m.group(1).upper()
        length = IBAN_LENGTHS.get(country)
        end = _iban_end(text, m.end(), length - 4) if length else None
        if end is not None and iban_valid(text[m.start() : end]):
            yield m.start(), end
            pos = end
        else:
            pos = m.start() + 1


def _iban_end(text: str, i: int, wanted: int) -> int | None:
    """Index after `wanted` more alphanumerics from `i`, single spaces allowed between; None if cut short."""
    got = 0
    n = len(text)
    while got < wanted:
        if i < n and text[i] == " " and i + 1 < n and text[i + 1].isalnum():
            i += 1
        if i >= n or not (text[i].isascii() and text[i].isalnum()):
            return None
        got += 1
        i += 1
    if i < n and text[i].isascii() and text[i].isalnum():
        return None  # longer than this country's IBAN
    return i


def _regex(pattern: re.Pattern[str]) -> Callable[[str], Iterable[tuple[int, int]]]:
    return lambda text: ((m.start(), m.end()) for m in pattern.finditer(text))


def _inside_longer_number(text: str, start: int, end: int) -> bool:
    """True when the span is one group of a longer run of digit groups (`5100 0000 0000 0009`)."""
    before = start >= 2 and text[start - 1] in " -." and text[start - 2].isdigit()
    after = end + 1 < len(text) and text[end] in " -." and text[end + 1].isdigit()
    return before or after


def _phones(text: str) -> Iterable[tuple[int, int]]:
    for pattern in _PHONE_PATTERNS:
        for m in pattern.finditer(text):
            if 7 <= len(_digits(m.group(0))) <= 15 and not _inside_longer_number(text, m.start(), m.end()):
                yield m.start(), m.end()


# Order is priority: a span claimed by an earlier detector is not reported again by a later one.
_DETECTORS: tuple[tuple[PiiKind, Callable[[str], Iterable[tuple[int, int]]]], ...] = (
    (PiiKind.EMAIL, _regex(_EMAIL)),
    (PiiKind.IBAN, _ibans),
    (PiiKind.CARD_NUMBER, _cards),
    (PiiKind.US_SSN, _regex(_SSN)),
    (PiiKind.UK_NINO, _regex(_NINO)),
    (PiiKind.PHONE, _phones),
)


def find_pii(text: str, kinds: Iterable[PiiKind] | None = None) -> list[PiiMatch]:
    """Every piece of personal data of `kinds` (all kinds when None) in `text`, by position, not overlapping."""
    wanted = set(PiiKind) if kinds is None else set(kinds)
    taken: list[PiiMatch] = []
    for kind, detect in _DETECTORS:
        if kind not in wanted:
            continue
        for start, end in detect(text):
            if all(end <= t.start or start >= t.end for t in taken):
                taken.append(PiiMatch(kind, start, end))
    return sorted(taken, key=lambda m: m.start)


def redact(text: str, matches: Sequence[PiiMatch], kinds: Iterable[PiiKind] | None = None) -> str:
    """`text` with each match (of `kinds`, all when None) replaced by its kind's placeholder."""
    wanted = set(PiiKind) if kinds is None else set(kinds)
    out: list[str] = []
    pos = 0
    for m in sorted(matches, key=lambda m: m.start):
        if m.kind not in wanted or m.start < pos:
            continue
        out.append(text[pos : m.start])
        out.append(m.kind.placeholder)
        pos = m.end
    out.append(text[pos:])
    return "".join(out)
