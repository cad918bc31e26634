"""A lexical embedder: content words hashed into a fixed number of buckets (no model, deterministic).

Used for request drift when `groundedness_embedder=lexical` (groundedness is then lexical only), and
as the deterministic embedder of unit tests."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

from cairn_embedding.groundedness import content_words


class HashingEmbedder:
    """The Embedder port on hashed bags of content words, L2-normalised."""

    name = "hashing"

    def __init__(self, dimension: int = 256) -> None:
        self.dimension = dimension

    def _bucket(self, word: str) -> int:
        return int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big") % self.dimension

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for text in texts:
            vector = [0.0] * self.dimension
            for word in content_words(text):
                vector[self._bucket(word)] += 1.0
            norm = math.sqrt(sum(x * x for x in vector))
            out.append([x / norm for x in vector] if norm else vector)
        return out
