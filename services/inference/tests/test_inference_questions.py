"""The semantic cache's guard: the signatures of two close questions must agree on numbers, negation
and word order before one's answer may serve the other."""

from __future__ import annotations

import pytest

from cairn_inference.domain.questions import compatible, signature


@pytest.mark.parametrize(
    ("stored", "new"),
    [
        ("How do I cancel my subscription?", "How can I end my subscription?"),
        ("How do I change my email adress?", "How do I change the email address on my account?"),
        ("I can't log in", "I cannot log in"),  # two spellings of one negation
        ("I can\u2019t log in", "I can't sign in"),  # the typographic apostrophe
        ("Refund within 14 days?", "Can I get a refund within 14 days?"),
        ("Is the 2fa code sent by SMS?", "Do you text the 2FA code?"),  # case does not matter
    ],
)
def test_questions_that_agree_on_numbers_negation_and_order_are_compatible(stored: str, new: str) -> None:
    assert compatible(signature(stored), signature(new))


@pytest.mark.parametrize(
    ("stored", "new"),
    [
        ("Cancel my subscription", "Don't cancel my subscription"),  # negation
        ("Is the clinic open on Sundays?", "Is the clinic not open on Sundays?"),
        ("Free delivery on orders under £50?", "Free delivery on orders under £80?"),  # numbers
        ("Remind me at 7am", "Remind me at 7pm"),
        ("Convert Word to PDF", "Convert PDF to Word"),  # the same words swapped
        ("Move money from savings to current", "Move money from current to savings"),
    ],
)
def test_questions_that_differ_in_numbers_negation_or_order_are_not(stored: str, new: str) -> None:
    assert not compatible(signature(stored), signature(new))


def test_a_signature_keeps_digests_not_words() -> None:
    sig = signature("Transfer £50 to Alice's savings account")
    assert "alice" not in sig.casefold()
    assert "50" not in sig.split(":")[2:]
    assert sig.startswith("q1:")


def test_a_missing_or_foreign_signature_is_never_compatible() -> None:
    new = signature("How long do refunds take?")
    assert not compatible(None, new)
    assert not compatible("q0:a:0:b:c", new)
    assert not compatible("garbage", new)
    assert compatible(new, new)
