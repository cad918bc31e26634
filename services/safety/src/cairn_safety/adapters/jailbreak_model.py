"""The jailbreak detector's artefact: a JSON file (no pickle) shipped in the package.

```json
{"format": "cairn-jailbreak-detector/1", "version": "jailbreak-v1", "intercept": -1.2, "threshold": 0.5,
 "block_threshold": 0.8, "window_words": 200, "char": {"ign": [3.1, 0.42], ...}, "word": {"ignore": [2.7, 1.3], ...},
 "provenance": {"collections": ..., "packages": ..., "seed": 0, "metrics": ..., "code": ...}}
```
`char`/`word` map an n-gram to `[idf, coefficient]`.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from cairn_safety.domain.jailbreak import JailbreakModel

__all__ = ["FORMAT", "SHIPPED", "dump_model", "load_model", "shipped_model"]

FORMAT = "cairn-jailbreak-detector/1"
SHIPPED = Path(__file__).resolve().parent.parent / "models" / "jailbreak-v1.json"
"""The artefact `cairn safety train` writes and the service loads by default."""


def _weights(raw: dict[str, list[float]]) -> dict[str, tuple[float, float]]:
    return {gram: (float(pair[0]), float(pair[1])) for gram, pair in raw.items()}


def load_model(path: Path = SHIPPED) -> JailbreakModel:
    """Read a detector from its JSON file; a missing file or another format is a clear error."""
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path}: no jailbreak detector here; build it with `make safety-model`"
        ) from None
    if data.get("format") != FORMAT:
        raise ValueError(f"{path}: format {data.get('format')!r} is not {FORMAT!r}")
    return JailbreakModel(
        version=str(data["version"]),
        char_weights=_weights(data["char"]),
        word_weights=_weights(data["word"]),
        intercept=float(data["intercept"]),
        threshold=float(data["threshold"]),
        block_threshold=float(data.get("block_threshold", 1.0)),
        window_words=int(data["window_words"]),
        provenance=data.get("provenance", {}),
    )


@lru_cache(maxsize=1)
def shipped_model() -> JailbreakModel:
    """The detector shipped with the package, read once per process."""
    return load_model(SHIPPED)


def _rounded(weights: Any) -> dict[str, list[float]]:
    return {gram: [round(idf, 5), round(coef, 6)] for gram, (idf, coef) in sorted(weights.items())}


def dump_model(model: JailbreakModel, path: Path) -> None:
    """Write a detector as JSON (sorted keys, rounded weights: the same model gives the same bytes)."""
    data = {
        "format": FORMAT,
        "version": model.version,
        "intercept": round(model.intercept, 6),
        "threshold": round(model.threshold, 6),
        "block_threshold": round(model.block_threshold, 6),
        "window_words": model.window_words,
        "provenance": model.provenance,
        "char": _rounded(model.char_weights),
        "word": _rounded(model.word_weights),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=False) + "\n")
