"""The retrieval loop's domain: feedback's votes, the bounded prior, and how it reorders candidates."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cairn_retriever.domain.models import SearchHit
from cairn_retriever.domain.priors import (
    ChunkKey,
    Sentiment,
    ServedChunk,
    ServedContext,
    Votes,
    feedback_votes,
    rerank,
    sentiment_of,
)

NOW = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)


def hit(n: int, source: str) -> SearchHit:
    return SearchHit(
        chunk_id=f"c{n}",
        document_id=f"doc-{source}",
        collection="kb",
        source_uri=source,
        text=f"chunk {n}",
        content_hash=f"sha256:{n}",
        ordinal=n,
        similarity=0.5,
        fused=0.5,
    )


def key(n: int, source: str) -> ChunkKey:
    return ChunkKey(f"doc-{source}", f"sha256:{n}")


CANDIDATES = [hit(0, "a"), hit(1, "b"), hit(2, "a"), hit(3, "c"), hit(4, "d")]
SERVED = ServedContext(
    "acme",
    "req-1",
    served=tuple(ServedChunk.of(h) for h in CANDIDATES[:2]),
    candidates=tuple(ServedChunk.of(h) for h in CANDIDATES),
    served_at=NOW,
)


@pytest.mark.parametrize(
    ("thumbs", "rating", "expected"),
    [
        ("down", 5, Sentiment.NEGATIVE),
        ("up", 1, Sentiment.POSITIVE),
        (None, 2, Sentiment.NEGATIVE),
        (None, 1, Sentiment.NEGATIVE),
        (None, 3, Sentiment.NEUTRAL),
        (None, 4, Sentiment.POSITIVE),
        (None, None, Sentiment.NEUTRAL),
    ],
)
def test_thumbs_decide_then_the_rating(thumbs: str | None, rating: int | None, expected: Sentiment) -> None:
    assert sentiment_of(thumbs, rating) is expected


def test_negative_feedback_votes_down_what_was_served() -> None:
    cast = feedback_votes(Sentiment.NEGATIVE, [], SERVED)
    assert cast.votes == {key(0, "a"): Votes(down=1), key(1, "b"): Votes(down=1)}
    assert cast.unreachable == ()


def test_a_named_source_votes_up_its_candidates_and_is_spared_the_down_votes() -> None:
    cast = feedback_votes(Sentiment.NEGATIVE, ["a", "c"], SERVED)
    assert cast.votes == {
        key(0, "a"): Votes(up=1),  # served and right: its best chunk voted up, none voted down
        key(1, "b"): Votes(down=1),
        key(3, "c"): Votes(up=1),  # missed: the best candidate of the right source
    }
    assert (cast.ups, cast.downs) == (2, 1)


def test_a_named_source_outside_the_candidates_is_unreachable() -> None:
    cast = feedback_votes(Sentiment.NEUTRAL, ["zzz"], SERVED)
    assert cast.votes == {}
    assert cast.unreachable == ("zzz",)


def test_positive_or_neutral_feedback_without_a_source_casts_nothing() -> None:
    # a thumbs up does not say which served chunk helped (voting them all up was measured to hurt)
    assert feedback_votes(Sentiment.POSITIVE, [], SERVED).votes == {}
    assert feedback_votes(Sentiment.NEUTRAL, [], SERVED).votes == {}
    assert feedback_votes(Sentiment.POSITIVE, ["c"], SERVED).votes == {key(3, "c"): Votes(up=1)}


def test_the_prior_is_smoothed_and_bounded() -> None:
    assert Votes().prior() == 0.0
    assert Votes(down=1).prior() == -0.5
    assert Votes(up=2).prior() == pytest.approx(2 / 3)
    assert Votes(up=3, down=3).prior() == 0.0
    assert Votes(down=1).prior(smoothing=3.0) == -0.25


@given(st.integers(0, 10_000), st.integers(0, 10_000), st.floats(0.01, 100))
def test_the_prior_stays_inside_minus_one_one(up: int, down: int, smoothing: float) -> None:
    assert -1.0 < Votes(up, down).prior(smoothing) < 1.0


def test_without_priors_the_stores_order_is_kept() -> None:
    ranked = rerank(CANDIDATES, {}, weight=1.0, k=3)
    assert [h.chunk_id for h in ranked] == ["c0", "c1", "c2"]
    assert ranked[0].fused == pytest.approx(1.0)  # relative to the best candidate


def scored(*fused: float) -> list[SearchHit]:
    return [replace(hit(n, "abcde"[n]), fused=f) for n, f in enumerate(fused)]


def test_a_raised_chunk_moves_up_and_a_lowered_one_down() -> None:
    candidates = scored(0.030, 0.029, 0.028, 0.027, 0.026)
    priors = {key(4, "e"): 0.5, key(0, "a"): -0.5}
    ranked = rerank(candidates, priors, weight=1.0, k=5)
    assert [h.chunk_id for h in ranked] == ["c4", "c1", "c2", "c3", "c0"]


def test_the_boost_is_bounded_by_the_weight_and_only_reorders_close_candidates() -> None:
    # relative scores 1.0, 0.9, 0.5: a full prior at w = 0.2 lifts the 0.9 past the top, never the 0.5
    candidates = scored(0.02, 0.018, 0.01)
    ranked = rerank(candidates, {key(1, "b"): 0.99, key(2, "c"): 0.99}, weight=0.2, k=3)
    assert [h.chunk_id for h in ranked] == ["c1", "c0", "c2"]
    assert ranked[0].fused == pytest.approx(0.9 + 0.2 * 0.99)
    assert rerank(CANDIDATES, {}, weight=0.2, k=1)[0].fused == pytest.approx(1.0)


def test_negative_store_scores_count_as_zero() -> None:
    candidates = scored(0.5, -0.2)
    assert [h.fused for h in rerank(candidates, {}, weight=0.1, k=2)] == [1.0, 0.0]
    assert rerank(CANDIDATES, {key(4, "d"): 0.99}, weight=0.0, k=2) == rerank(CANDIDATES, {}, weight=1.0, k=2)
