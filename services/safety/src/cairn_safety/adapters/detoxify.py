"""The `detoxify` toxicity classifier (BERT-family models from Unitary), loaded from a local checkpoint.

`detoxify` downloads its checkpoints at run time by default; Cairn never does: the checkpoint
must be on disk (`CAIRN_DETOXIFY_CHECKPOINT`), and, for machines without network access, the
Hugging Face config/tokenizer folder of its base model too (`CAIRN_DETOXIFY_HF_CONFIG_PATH`).
The package is imported only when this adapter is chosen.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cairn_safety.adapters.errors import ClassifierUnavailableError

_HINT = "or set CAIRN_TOXICITY_CLASSIFIER=profanity-check"


class DetoxifyClassifier:
    """ToxicityClassifier on `detoxify.Detoxify(...).predict(texts)["toxicity"]`."""

    name = "detoxify"

    def __init__(
        self,
        checkpoint: str | None,
        *,
        model_type: str = "original",
        device: str = "cpu",
        huggingface_config_path: str | None = None,
    ) -> None:
        if not checkpoint:
            raise ClassifierUnavailableError(
                f"the toxicity classifier `detoxify` needs a local checkpoint: set CAIRN_DETOXIFY_CHECKPOINT "
                f"to its path ({_HINT})"
            )
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise ClassifierUnavailableError(
                f"detoxify checkpoint {str(path)!r} (CAIRN_DETOXIFY_CHECKPOINT) does not exist or is not a file"
            )
        if huggingface_config_path and not Path(huggingface_config_path).expanduser().is_dir():
            raise ClassifierUnavailableError(
                f"detoxify Hugging Face config folder {huggingface_config_path!r} "
                "(CAIRN_DETOXIFY_HF_CONFIG_PATH) does not exist"
            )
        try:
            module = importlib.import_module("detoxify")
        except ImportError as exc:
            raise ClassifierUnavailableError(
                f"the toxicity classifier `detoxify` needs the package detoxify (pip install detoxify), {_HINT}"
            ) from exc
        kwargs: dict[str, Any] = {"checkpoint": str(path), "device": device}
        if huggingface_config_path:
            kwargs["huggingface_config_path"] = str(Path(huggingface_config_path).expanduser())
        try:
            self._model: Any = module.Detoxify(model_type, **kwargs)
        except Exception as exc:
            raise ClassifierUnavailableError(
                f"detoxify could not load checkpoint {str(path)!r}: {exc}"
            ) from exc

    def scores(self, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        result = self._model.predict(list(texts))
        values = result["toxicity"]
        if isinstance(values, float | int):  # detoxify returns scalars for a single string
            values = [values]
        return [min(1.0, max(0.0, float(v))) for v in values]
