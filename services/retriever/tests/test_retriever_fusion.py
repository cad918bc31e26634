"""Reciprocal rank fusion."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cairn_retriever.domain.fusion import rrf_fuse, rrf_scores


def test_scores_are_sums_of_reciprocal_ranks() -> None:
    scores = rrf_scores([["a", "b", "c"], ["c", "a"]], k=60)
    assert scores["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert scores["b"] == pytest.approx(1 / 62)
    assert scores["c"] == pytest.approx(1 / 63 + 1 / 61)


def test_an_item_in_both_lists_beats_the_top_of_one() -> None:
    fused = rrf_fuse([["x", "both"], ["y", "both"]])
    assert fused[0][0] == "both"
    assert [item for item, _ in fused] == ["both", "x", "y"]


def test_ties_go_to_the_better_rank_then_the_earlier_list() -> None:
    assert [i for i, _ in rrf_fuse([["a"], ["b"]])] == ["a", "b"]
    assert [i for i, _ in rrf_fuse([["b"], ["a"]])] == ["b", "a"]


def test_a_repeated_item_counts_once_per_list() -> None:
    assert rrf_scores([["a", "a", "b"]])["a"] == pytest.approx(1 / 61)


def test_empty_lists() -> None:
    assert rrf_fuse([[], []]) == []


def test_k_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        rrf_scores([["a"]], k=0)


@given(
    lists=st.lists(st.lists(st.integers(0, 30), unique=True, max_size=20), min_size=1, max_size=4),
    k=st.integers(1, 100),
)
def test_fused_order_is_by_score_and_holds_every_item(lists: list[list[int]], k: int) -> None:
    fused = rrf_fuse(lists, k)
    scores = [s for _, s in fused]
    assert scores == sorted(scores, reverse=True)
    assert {i for i, _ in fused} == {i for lst in lists for i in lst}
    # an item ranked at least as well in every list, and present wherever the other is, scores at least as high
    for a, sa in fused:
        for b, sb in fused:
            if all(
                (a in lst) >= (b in lst) and (b not in lst or lst.index(a) <= lst.index(b)) for lst in lists
            ):
                assert sa >= sb - 1e-12
