"""Chunking: chunks cover the text, stay within the size, overlap by at most the overlap, and cut at
paragraph and sentence boundaries when they can."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cairn_retriever.domain.chunking import TextChunk, chunk_text

WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789", min_size=1, max_size=14)
SENTENCE = st.lists(WORD, min_size=1, max_size=18).map(lambda ws: " ".join(ws) + ".")
PARAGRAPH = st.lists(SENTENCE, min_size=1, max_size=6).map(" ".join)
PROSE = st.lists(PARAGRAPH, min_size=0, max_size=6).map("\n\n".join)
ANY_TEXT = st.lists(st.sampled_from([*"ab c.!?\n\t\u00e9\u4e2d", "  ", "\n\n", "word "]), max_size=300).map(
    "".join
)
TEXTS = st.one_of(PROSE, ANY_TEXT)


def words(text: str) -> int:
    return len(text.split())


def check_invariants(text: str, chunks: list[TextChunk], size: int, overlap: int, measure=len) -> None:  # type: ignore[no-untyped-def]
    covered = [False] * len(text)
    for n, c in enumerate(chunks):
        assert c.ordinal == n
        assert 0 <= c.start < c.end <= len(text)
        assert c.text == text[c.start : c.end].strip()
        assert c.text
        assert measure(text[c.start : c.end]) <= size
        for i in range(c.start, c.end):
            covered[i] = True
    missed = [i for i, ch in enumerate(text) if not ch.isspace() and not covered[i]]
    assert missed == [], f"characters not in any chunk: {missed[:10]}"
    for prev, nxt in itertools.pairwise(chunks):
        assert prev.start < nxt.start
        assert prev.end < nxt.end
        shared = max(0, prev.end - nxt.start)
        assert measure(text[nxt.start : prev.end]) <= overlap if shared else True


@settings(max_examples=200, deadline=None)
@given(text=TEXTS, size=st.integers(8, 300), data=st.data())
def test_chunks_cover_the_text_within_size_and_overlap(text: str, size: int, data: st.DataObject) -> None:
    overlap = data.draw(st.integers(0, size - 1))
    check_invariants(text, chunk_text(text, size, overlap), size, overlap)


@settings(max_examples=100, deadline=None)
@given(text=PROSE, size=st.integers(3, 60), data=st.data())
def test_any_measure_is_respected(text: str, size: int, data: st.DataObject) -> None:
    overlap = data.draw(st.integers(0, size - 1))
    check_invariants(text, chunk_text(text, size, overlap, words), size, overlap, words)


@settings(max_examples=100, deadline=None)
@given(text=PROSE, size=st.integers(60, 300))
def test_consecutive_chunks_overlap_unless_the_next_one_is_full(text: str, size: int) -> None:
    # a word is at most 15 characters with its full stop, so the previous chunk's last word always
    # fits the overlap; the next chunk may drop it only when its own first unit leaves no room
    overlap = 30
    chunks = chunk_text(text, size, overlap)
    for prev, nxt in itertools.pairwise(chunks):
        if nxt.start < prev.end:
            continue
        single_word = len(text[prev.start : prev.end].split()) == 1
        assert single_word or nxt.end - nxt.start > size - overlap, (prev, nxt)


def test_paragraphs_that_fit_are_kept_whole() -> None:
    paragraphs = [("Alpha beta gamma delta. " * 4).strip(), ("Epsilon zeta eta. " * 5).strip(), "Theta iota."]
    text = "\n\n".join(paragraphs)
    chunks = chunk_text(text, max(map(len, paragraphs)) + 2, 0)
    assert [c.text for c in chunks] == paragraphs


def test_long_paragraphs_break_at_sentence_ends() -> None:
    sentences = [f"Sentence number {i} says something about generators and yield." for i in range(20)]
    text = " ".join(sentences)
    chunks = chunk_text(text, 200, 0)
    assert len(chunks) > 1
    for c in chunks:
        assert c.text.endswith("."), c.text
        assert len(c.text) <= 200


def test_overlap_repeats_the_previous_chunks_last_words() -> None:
    text = " ".join(f"w{i}" for i in range(300))
    chunks = chunk_text(text, 100, 20)
    assert len(chunks) > 3
    for prev, nxt in itertools.pairwise(chunks):
        shared = text[nxt.start : prev.end]
        assert 0 < len(shared) <= 20
        assert prev.text.endswith(shared.strip())
        assert nxt.text.startswith(shared.strip())
        assert re.match(r"w\d+", nxt.text)  # starts on a whole word


def test_a_word_longer_than_a_chunk_is_cut() -> None:
    text = "short " + "x" * 250 + " tail"
    chunks = chunk_text(text, 100, 10)
    assert all(c.end - c.start <= 100 for c in chunks)
    assert "".join(c.text for c in chunks if set(c.text) == {"x"}).count("x") >= 200


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t"])
def test_blank_text_has_no_chunks(text: str) -> None:
    assert chunk_text(text, 50, 5) == []


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (10, 10), (10, -1), (10, 11)])
def test_bad_sizes_are_refused(size: int, overlap: int) -> None:
    with pytest.raises(ValueError, match="chunk"):
        chunk_text("some text", size, overlap)
