"""GGUF → safetensors conversion: idempotent, atomic, reported; the real SmolLM2 when it is available."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from cairn_events import ChatMessage, GenerationParams
from cairn_inference.adapters import conversion
from cairn_inference.adapters.conversion import (
    MANIFEST,
    ConversionError,
    ensure_converted,
    file_sha256,
    find_smollm2_gguf,
    read_manifest,
)

from .conftest import REAL_MODEL_DIR, real_model_available


class FakeConverter:
    """Stands in for the slow transformers conversion: writes a config, weights and the manifest."""

    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail

    def __call__(self, gguf: Path, staging: Path, sha: str, say: conversion.Progress) -> None:
        self.calls += 1
        staging.mkdir(parents=True)
        (staging / "config.json").write_text("{}")
        (staging / "model.safetensors").write_bytes(b"weights of " + gguf.read_bytes())
        if self.fail:
            raise RuntimeError("disk full")
        (staging / MANIFEST).write_text(json.dumps({"gguf_sha256": sha}))


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF v1")
    return path


def test_a_conversion_happens_once_per_gguf(
    tmp_path: Path, gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeConverter()
    monkeypatch.setattr(conversion, "_convert_into", fake)
    target = tmp_path / "models" / "smol"
    messages: list[str] = []
    first = ensure_converted(target, gguf, progress=messages.append)
    assert first.converted
    assert first.model_dir == target
    assert first.gguf_sha256 == file_sha256(gguf)
    assert read_manifest(target) == {"gguf_sha256": first.gguf_sha256}
    assert any("converted to" in m for m in messages)
    second = ensure_converted(target, gguf, progress=messages.append)
    assert not second.converted
    assert fake.calls == 1
    assert "up to date" in messages[-1]
    assert ensure_converted(target, gguf, force=True).converted
    assert fake.calls == 2


def test_a_changed_gguf_is_converted_again_and_replaces_the_old_folder(
    tmp_path: Path, gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(conversion, "_convert_into", FakeConverter())
    target = tmp_path / "smol"
    ensure_converted(target, gguf)
    (target / "stale-file").write_text("from the old conversion")
    gguf.write_bytes(b"GGUF v2")
    assert ensure_converted(target, gguf).converted
    assert (target / "model.safetensors").read_bytes() == b"weights of GGUF v2"
    assert not (target / "stale-file").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.gguf", "smol"]  # no temp folders left


def test_a_failed_conversion_leaves_the_previous_model_untouched(
    tmp_path: Path, gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(conversion, "_convert_into", FakeConverter())
    target = tmp_path / "smol"
    ensure_converted(target, gguf)
    gguf.write_bytes(b"GGUF v2")
    monkeypatch.setattr(conversion, "_convert_into", FakeConverter(fail=True))
    with pytest.raises(ConversionError, match="disk full"):
        ensure_converted(target, gguf)
    assert (target / "model.safetensors").read_bytes() == b"weights of GGUF v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.gguf", "smol"]


def test_a_missing_gguf_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match="not found"):
        ensure_converted(tmp_path / "smol", tmp_path / "nope.gguf")


def test_the_smollm2_gguf_is_found_in_its_package_without_importing_it() -> None:
    path = find_smollm2_gguf()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 50_000_000


real_model = pytest.mark.skipif(
    not real_model_available(),
    reason="no converted SmolLM2 (run `cairn inference prepare`) and CAIRN_REAL_MODEL_TESTS is not 1",
)


@pytest.mark.integration
@real_model
def test_the_real_gguf_converts_to_a_loadable_model(tmp_path: Path) -> None:
    """Converts into a fresh folder when CAIRN_REAL_MODEL_TESTS=1 (tens of seconds); otherwise checks
    that the existing conversion is recognised as up to date."""
    fresh = os.environ.get("CAIRN_REAL_MODEL_TESTS") == "1"
    target = tmp_path / "SmolLM2-135M-Instruct" if fresh else REAL_MODEL_DIR
    result = ensure_converted(target)
    assert result.converted is fresh
    manifest = read_manifest(target)
    assert manifest is not None
    assert manifest["gguf_sha256"] == result.gguf_sha256
    config = json.loads((target / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["num_hidden_layers"] == 30
    assert (target / "model.safetensors").stat().st_size > 400_000_000
    assert not ensure_converted(target).converted


@pytest.mark.integration
@real_model
def test_the_real_model_answers_a_simple_question() -> None:
    from cairn_inference.adapters.transformers_cpu import TransformersBackend

    if not (REAL_MODEL_DIR / MANIFEST).is_file():
        ensure_converted(REAL_MODEL_DIR)
    backend = TransformersBackend.load(REAL_MODEL_DIR, model_name="SmolLM2-135M-Instruct")

    async def ask() -> str:
        try:
            completion = await backend.generate(
                [ChatMessage(role="user", content="What is the capital of France?")],
                GenerationParams(max_tokens=24),
                model="SmolLM2-135M-Instruct",
            )
        finally:
            await backend.aclose()
        assert completion.finish_reason == "stop"
        assert completion.usage.input_tokens > 10
        return completion.text

    assert "Paris" in asyncio.run(ask())
