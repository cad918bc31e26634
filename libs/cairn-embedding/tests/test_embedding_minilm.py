"""The shared MiniLM embedder on the packaged model: normalised 384-d vectors, lazy loading, tokens."""

from __future__ import annotations

import math

from cairn_embedding import MODEL_NAME, MiniLMEmbedder


def test_a_lazy_embedder_counts_tokens_without_loading_the_model() -> None:
    embedder = MiniLMEmbedder()
    assert embedder.name == MODEL_NAME
    assert embedder.count_tokens("hello world") == 2
    assert embedder._model is None


def test_vectors_are_normalised_and_similar_texts_are_closer() -> None:
    embedder = MiniLMEmbedder(eager=True)
    a, b, c = embedder.embed_documents(["a cat sat on the mat", "a cat on a mat", "stock market futures"])
    assert embedder.dimension == len(a) == 384
    assert math.isclose(sum(x * x for x in a), 1.0, rel_tol=1e-4)
    dot = lambda u, v: sum(x * y for x, y in zip(u, v, strict=True))  # noqa: E731
    assert dot(a, b) > dot(a, c)
    assert embedder.embed_query("a cat sat on the mat") == a
    assert embedder.embed_documents([]) == []
