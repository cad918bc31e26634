"""Splitting a document's text into overlapping chunks at paragraph, sentence and word boundaries.

The text is first cut into *units* no larger than the chunk size: whole paragraphs where they fit,
else sentences, else lines, else words, else (a word longer than a chunk) hard slices. Units are
then packed greedily into chunks of at most `size`. Each chunk after the first starts with the
tail of the previous one: the longest run of whole words that measures at most `overlap`.

Sizes are measured by a function (`len` for characters, a tokenizer's count for tokens), so the
same rules chunk by characters or by the embedding model's tokens. Every chunk keeps its span in
the original text; together the spans cover every non-blank character.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass

Measure = Callable[[str], int]
"""How big a piece of text is: characters (`len`) or tokens."""

# coarsest first: paragraphs, sentences, lines, words
_LEVELS = (
    re.compile(r"\n[ \t]*\n\s*"),
    re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+"),
    re.compile(r"\n\s*"),
    re.compile(r"\s+"),
)
_WORD_START = re.compile(r"(?<=\s)\S")


@dataclass(frozen=True)
class TextChunk:
    """One chunk: its position among the document's chunks, its span and its (trimmed) text."""

    ordinal: int
    start: int
    """Start offset of the span in the document text."""
    end: int
    """End offset (exclusive) of the span; the span may begin or end with whitespace."""
    text: str
    """`text[start:end]` without surrounding whitespace."""


def chunk_text(text: str, size: int, overlap: int, measure: Measure = len) -> list[TextChunk]:
    """Chunks of at most `size` (by `measure`), each repeating at most `overlap` of the previous one.

    Raises ValueError unless 0 <= overlap < size.
    """
    if size < 1:
        raise ValueError("chunk size must be positive")
    if not 0 <= overlap < size:
        raise ValueError("chunk overlap must be at least 0 and smaller than the chunk size")
    if not text.strip():
        return []
    return _Chunker(text, size, overlap, measure).run()


class _Chunker:
    def __init__(self, text: str, size: int, overlap: int, measure: Measure) -> None:
        self.text = text
        self.size = size
        self.overlap = overlap
        self.measure = measure
        self.word_starts = [m.start() for m in _WORD_START.finditer(text)]

    def fits(self, start: int, end: int) -> bool:
        return self.measure(self.text[start:end]) <= self.size

    def run(self) -> list[TextChunk]:
        units = self.units(0, len(self.text), 0)
        spans: list[tuple[int, int]] = []
        i, carry = 0, None
        while i < len(units):
            unit_start, unit_end = units[i]
            start = unit_start if carry is None else carry
            while start < unit_start and not self.fits(start, unit_end):
                start = self.next_word_start(start, unit_start)
            end = unit_end
            i += 1
            while i < len(units) and self.fits(start, units[i][1]):
                end = units[i][1]
                i += 1
            spans.append((start, end))
            carry = self.overlap_start(start, end) if self.overlap and i < len(units) else None
        chunks: list[TextChunk] = []
        for start, end in spans:
            body = self.text[start:end].strip()
            if body:
                chunks.append(TextChunk(len(chunks), start, end, body))
        return chunks

    def units(self, start: int, end: int, level: int) -> list[tuple[int, int]]:
        """Contiguous spans covering [start, end), each measuring at most `size`."""
        if self.fits(start, end):
            return [(start, end)]
        for depth in range(level, len(_LEVELS)):
            cuts = [m.end() for m in _LEVELS[depth].finditer(self.text, start, end) if start < m.end() < end]
            if cuts:
                bounds = [start, *cuts, end]
                out: list[tuple[int, int]] = []
                for a, b in itertools.pairwise(bounds):
                    out.extend(self.units(a, b, depth + 1))
                return out
        return self.slices(start, end)

    def slices(self, start: int, end: int) -> list[tuple[int, int]]:
        """Hard cuts of a span with no usable boundary: the longest prefixes that fit."""
        out: list[tuple[int, int]] = []
        while start < end:
            lo, hi = start + 1, end  # the answer lies in [lo, hi]; one character always goes
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if self.fits(start, mid):
                    lo = mid
                else:
                    hi = mid - 1
            out.append((start, lo))
            start = lo
        return out

    def next_word_start(self, after: int, limit: int) -> int:
        """The first word start after `after`, or `limit` when none comes before it."""
        k = bisect.bisect_right(self.word_starts, after)
        return self.word_starts[k] if k < len(self.word_starts) and self.word_starts[k] < limit else limit

    def overlap_start(self, start: int, end: int) -> int | None:
        """Where the next chunk starts: the earliest word start in (start, end) whose tail fits `overlap`."""
        lo = bisect.bisect_right(self.word_starts, start)
        hi = bisect.bisect_left(self.word_starts, end)
        candidates = self.word_starts[lo:hi]
        # tails shrink as the start moves right: find the first that fits
        a, b = 0, len(candidates)
        while a < b:
            mid = (a + b) // 2
            if self.measure(self.text[candidates[mid] : end]) <= self.overlap:
                b = mid
            else:
                a = mid + 1
        return candidates[a] if a < len(candidates) else None
