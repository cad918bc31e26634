"""PII detectors: Luhn and IBAN mod-97 validity (hypothesis), detection, no false positives, redaction."""

from __future__ import annotations

import string
from datetime import date, time
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cairn_safety.domain.pii import IBAN_LENGTHS, PiiKind, find_pii, iban_valid, luhn_valid, redact


def luhn_digit(body: str) -> str:
    """The check digit that makes body + digit Luhn-valid."""
    for d in "0123456789":
        if luhn_valid(body + d):
            return d
    raise AssertionError("unreachable")


def make_iban(country: str, bban: str) -> str:
    rearranged = bban + country + "00"
    check = 98 - int("".join(str(int(c, 36)) for c in rearranged)) % 97
    return f"{country}{check:02d}{bban}"


def kinds(text: str) -> list[tuple[PiiKind, str]]:
    return [(m.kind, text[m.start : m.end]) for m in find_pii(text)]


# --- Luhn ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number", ["4111111111111111", "5500005555555559", "378282246310005", "6011111111111117", "79927398713"]
)
def test_known_luhn_valid_numbers(number: str) -> None:
    assert luhn_valid(number)


@pytest.mark.parametrize("number", ["4111111111111112", "79927398710", "1234567812345678", "", "7", "12a4"])
def test_known_luhn_invalid_numbers(number: str) -> None:
    assert not luhn_valid(number)


@given(st.text(alphabet=string.digits, min_size=1, max_size=30))
def test_luhn_check_digit_makes_any_body_valid(body: str) -> None:
    assert luhn_valid(body + luhn_digit(body))


@given(st.text(alphabet=string.digits, min_size=12, max_size=18), st.data())
def test_luhn_detects_every_single_digit_error(body: str, data: st.DataObject) -> None:
    number = body + luhn_digit(body)
    i = data.draw(st.integers(0, len(number) - 1))
    wrong = data.draw(st.sampled_from([d for d in string.digits if d != number[i]]))
    assert not luhn_valid(number[:i] + wrong + number[i + 1 :])


# --- cards ---------------------------------------------------------------------------------------

CARD_PREFIXES = ["4", "51", "55", "2221", "2720", "34", "37", "6011", "65", "3530", "62"]


@st.composite
def card_numbers(draw: st.DrawFn, valid: bool = True) -> str:
    prefix = draw(st.sampled_from(CARD_PREFIXES))
    length = draw(
        st.sampled_from([15] if prefix in ("34", "37") else [13, 16, 19] if prefix == "4" else [16])
    )
    body = prefix + draw(
        st.text(alphabet=string.digits, min_size=length - 1 - len(prefix), max_size=length - 1 - len(prefix))
    )
    check = luhn_digit(body)
    if not valid:
        check = str((int(check) + draw(st.integers(1, 9))) % 10)
    return body + check


def grouped(number: str, sep: str) -> str:
    return sep.join(number[i : i + 4] for i in range(0, len(number), 4)) if sep != "" else number


@given(card_numbers(), st.sampled_from(["", " ", "-"]))
def test_valid_card_numbers_are_found_in_any_grouping(number: str, sep: str) -> None:
    shown = grouped(number, sep)
    text = f"Please charge {shown} today."
    assert kinds(text) == [(PiiKind.CARD_NUMBER, shown)]
    assert redact(text, find_pii(text)) == "Please charge [CARD_NUMBER] today."


@given(card_numbers(valid=False), st.sampled_from(["", " ", "-"]))
def test_card_like_numbers_failing_luhn_are_not_cards(number: str, sep: str) -> None:
    assert find_pii(f"Reference {grouped(number, sep)} attached") == []


@pytest.mark.parametrize(
    "text",
    [
        "order 1234567890123456 shipped",  # 16 digits, fails Luhn
        "tracking 9400111899223344556677",  # 22 digits: too long for a card
        "id 1000000000000009",  # passes Luhn but no card starts with 1
        "4111 1111-1111 1111",  # mixed separators
    ],
)
def test_not_cards(text: str) -> None:
    assert PiiKind.CARD_NUMBER not in {k for k, _ in kinds(text)}


# --- IBAN ------------------------------------------------------------------------------------------


@st.composite
def ibans(draw: st.DrawFn, digits_only: bool = False) -> str:
    country = draw(st.sampled_from(sorted(IBAN_LENGTHS)))
    alphabet = string.digits if digits_only else string.digits + string.ascii_uppercase
    size = IBAN_LENGTHS[country] - 4
    return make_iban(country, draw(st.text(alphabet=alphabet, min_size=size, max_size=size)))


@pytest.mark.parametrize(
    "iban",
    ["DE89370400440532013000", "GB82WEST12345698765432", "FR1420041010050500013M02606", "NL91ABNA0417164300"],
)
def test_known_ibans_are_valid(iban: str) -> None:
    assert iban_valid(iban)
    assert iban_valid(" ".join(iban[i : i + 4] for i in range(0, len(iban), 4)))


@given(ibans())
def test_generated_ibans_are_valid_and_found(iban: str) -> None:
    assert iban_valid(iban)
    spaced = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    for shown in (iban, spaced, iban.lower()):
        text = f"Pay to {shown}, thanks"
        assert kinds(text) == [(PiiKind.IBAN, shown)]
        assert redact(text, find_pii(text)) == "Pay to [IBAN], thanks"


@given(ibans(digits_only=True), st.data())
def test_mod97_detects_every_single_digit_error(iban: str, data: st.DataObject) -> None:
    i = data.draw(st.integers(2, len(iban) - 1))
    wrong = data.draw(st.sampled_from([d for d in string.digits if d != iban[i]]))
    changed = iban[:i] + wrong + iban[i + 1 :]
    assert not iban_valid(changed)
    assert PiiKind.IBAN not in {k for k, _ in kinds(f"Pay to {changed}")}


@pytest.mark.parametrize(
    "text",
    [
        "DE89370400440532013001",  # check fails
        "XX89370400440532013000",  # unknown country
        "DE8937040044053201300",  # one short for Germany
        "DE893704004405320130001",  # one long
        "Ref DE12 and the 2 cats",
    ],
)
def test_not_ibans(text: str) -> None:
    assert PiiKind.IBAN not in {k for k, _ in kinds(text)}


# --- e-mail, phones, national ids --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to bob.smith+tag@example.co.uk please", [(PiiKind.EMAIL, "bob.smith+tag@example.co.uk")]),
        ("Contact: ANNA_1@Sub.Example.ORG.", [(PiiKind.EMAIL, "ANNA_1@Sub.Example.ORG")]),
        ("call +44 20 7946 0958 now", [(PiiKind.PHONE, "+44 20 7946 0958")]),
        ("call +1 (555) 123-4567", [(PiiKind.PHONE, "+1 (555) 123-4567")]),
        ("or +4915112345678", [(PiiKind.PHONE, "+4915112345678")]),
        ("office (555) 123-4567", [(PiiKind.PHONE, "(555) 123-4567")]),
        (
            "cell 555-123-4567 or 555.123.4567",
            [(PiiKind.PHONE, "555-123-4567"), (PiiKind.PHONE, "555.123.4567")],
        ),
        ("mobile 07700 900123", [(PiiKind.PHONE, "07700 900123")]),
        ("London 020 7946 0958", [(PiiKind.PHONE, "020 7946 0958")]),
        ("SSN 123-45-6789.", [(PiiKind.US_SSN, "123-45-6789")]),
        ("ssn 123 45 6789", [(PiiKind.US_SSN, "123 45 6789")]),
        ("NI number AB 12 34 56 C", [(PiiKind.UK_NINO, "AB 12 34 56 C")]),
        ("ni: ce123456d", [(PiiKind.UK_NINO, "ce123456d")]),
    ],
)
def test_detects(text: str, expected: list[tuple[PiiKind, str]]) -> None:
    assert kinds(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "user@localhost is not routable",
        "follow @cairn on social",
        "a@b",
        "000-12-3456",  # SSN area 000 is never issued
        "666-12-3456",
        "912-12-3456",
        "123-00-4567",
        "123-45-0000",
        "123-456-789",  # not an SSN layout
        "QQ 12 34 56 C",  # QQ: the HMRC example prefix, never issued
        "BG123456A",
        "AB123456E",  # suffix must be A-D
        "ext 4567",
        "room 101, floor 3",
        "call 555 1234",  # too few digits for a phone number
    ],
)
def test_no_false_positives_on_near_misses(text: str) -> None:
    assert find_pii(text) == []


# --- ordinary numbers, dates and times are not personal data -------------------------------------------


DATE_FORMATS = ["%Y-%m-%d", "%d/%m/%Y", "%m-%d-%Y", "%d.%m.%Y", "%d %B %Y", "%B %d, %Y", "%Y%m%d", "%d %m %Y"]


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)), st.sampled_from(DATE_FORMATS))
def test_dates_are_not_pii(day: date, fmt: str) -> None:
    assert find_pii(f"Delivered on {day.strftime(fmt)} as promised") == []


@given(st.times(), st.sampled_from(["%H:%M", "%H:%M:%S", "%I:%M %p", "%H.%M"]))
def test_times_are_not_pii(at: time, fmt: str) -> None:
    assert find_pii(f"at {at.strftime(fmt)} sharp") == []


@given(st.integers(min_value=0, max_value=10**12 - 1))
def test_integers_up_to_twelve_digits_are_not_pii(n: int) -> None:
    assert find_pii(f"There are {n} items; order #{n}; total {n:,}") == []


@given(st.decimals(min_value=-(10**9), max_value=10**9, allow_nan=False, places=2))
def test_amounts_are_not_pii(amount: object) -> None:
    assert find_pii(f"The refund is ${amount} (EUR {amount}), {amount}%") == []


@given(st.lists(st.integers(0, 99), min_size=2, max_size=4))
def test_version_numbers_are_not_pii(parts: list[int]) -> None:
    assert find_pii(f"upgrade to v{'.'.join(map(str, parts))} now") == []


# --- redaction -------------------------------------------------------------------------------------------


def test_redaction_uses_typed_placeholders_and_keeps_the_rest() -> None:
    text = "I'm bob@example.com, card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00, tel +1 (555) 123-4567."
    matches = find_pii(text)
    assert [m.kind for m in matches] == [PiiKind.EMAIL, PiiKind.CARD_NUMBER, PiiKind.IBAN, PiiKind.PHONE]
    assert redact(text, matches) == "I'm [EMAIL], card [CARD_NUMBER], IBAN [IBAN], tel [PHONE]."


def test_redaction_of_some_kinds_only() -> None:
    text = "bob@example.com / 123-45-6789"
    assert redact(text, find_pii(text), {PiiKind.US_SSN}) == "bob@example.com / [US_SSN]"
    assert find_pii(text, [PiiKind.EMAIL])[0].kind is PiiKind.EMAIL
    assert len(find_pii(text, [PiiKind.EMAIL])) == 1


def test_an_iban_is_not_also_reported_as_a_phone_number() -> None:
    text = "DE89 3704 0044 0532 0130 00"
    assert kinds(text) == [(PiiKind.IBAN, text)]


WORDS = ["please", "refund", "my", "order", "thanks", "the", "box", "arrived", "late", "and", "is", "broken"]
EMAILS = st.builds(
    lambda user, host: f"{user}@{host}.com",
    st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=8),
    st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=8),
)


@st.composite
def texts_with_pii(draw: st.DrawFn) -> tuple[str, str]:
    """A sentence of ordinary words and personal data, and the same sentence as redaction should leave it."""
    pieces: list[tuple[str, str]] = []
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["word", "word", "card", "iban", "email"]))
        if kind == "word":
            word = draw(st.sampled_from(WORDS))
            pieces.append((word, word))
        elif kind == "card":
            pieces.append(
                (grouped(draw(card_numbers()), draw(st.sampled_from(["", " ", "-"]))), "[CARD_NUMBER]")
            )
        elif kind == "iban":
            pieces.append((draw(ibans()), "[IBAN]"))
        else:
            pieces.append((draw(EMAILS), "[EMAIL]"))
    return ", ".join(p for p, _ in pieces), ", ".join(r for _, r in pieces)


@settings(max_examples=200)
@given(texts_with_pii())
def test_redaction_replaces_exactly_the_personal_data(case: tuple[str, str]) -> None:
    text, expected = case
    assert redact(text, find_pii(text)) == expected


@settings(max_examples=100)
@given(st.text(max_size=300))
def test_detectors_take_any_text(text: str) -> None:
    matches = find_pii(text)
    assert all(0 <= m.start < m.end <= len(text) for m in matches)
    assert all(a.end <= b.start for a, b in pairwise(matches))


def test_placeholders_and_labels() -> None:
    assert PiiKind.EMAIL.placeholder == "[EMAIL]"
    assert PiiKind.CARD_NUMBER.placeholder == "[CARD_NUMBER]"
    assert PiiKind.UK_NINO.label == "uk_national_insurance_number"
