"""Text metrics: normalisation, exact match, token F1, ROUGE-L."""

from __future__ import annotations

import pytest

from cairn_evaluator.domain.metrics import exact_match, normalise, rouge_l, token_f1


def test_normalise_drops_case_punctuation_articles_and_spaces() -> None:
    assert normalise("  The Answer, is: a GENERATOR!  ") == "answer is generator"


def test_exact_match_after_normalisation() -> None:
    assert exact_match("The generator.", "generator") == 1.0
    assert exact_match("a generator function", "generator") == 0.0
    assert exact_match("", "") == 1.0


def test_token_f1() -> None:
    assert token_f1("yield makes a generator", "yield makes a generator") == 1.0
    # pred: yield makes generator function (4); ref: yield makes generator (3); overlap 3
    assert token_f1("yield makes a generator function", "yield makes the generator") == pytest.approx(
        2 * (3 / 4) * (3 / 3) / (3 / 4 + 1)
    )
    assert token_f1("nothing alike", "yield") == 0.0
    assert token_f1("", "yield") == 0.0
    assert token_f1("", "") == 1.0


def test_token_f1_counts_repeated_tokens_once_per_match() -> None:
    # pred: yield yield yield (3); ref: yield (1); overlap 1 → p 1/3, r 1
    assert token_f1("yield yield yield", "yield") == pytest.approx(0.5)


def test_rouge_l_uses_the_longest_common_subsequence() -> None:
    # LCS of [police killed gunman] and [police kill gunman] is 2 → p = r = 2/3
    assert rouge_l("police killed the gunman", "the police kill the gunman") == pytest.approx(2 / 3)
    # order matters for ROUGE-L, not for token F1
    assert rouge_l("z y x", "x y z") == pytest.approx(1 / 3)
    assert token_f1("z y x", "x y z") == 1.0
    assert rouge_l("", "") == 1.0
    assert rouge_l("x", "") == 0.0
