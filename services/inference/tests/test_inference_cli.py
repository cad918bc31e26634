"""`cairn inference generate|prepare` on the tiny model and with bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cairn_inference.cli import app
from cairn_testing.tiny import TINY_MODEL_NAME


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CAIRN_MODEL_NAME", TINY_MODEL_NAME)
    monkeypatch.setenv("CAIRN_TORCH_THREADS", "1")
    return CliRunner()


def test_generate_answers_with_the_local_backend(runner: CliRunner, tiny_model_dir: Path) -> None:
    result = runner.invoke(
        app, ["generate", "What does yield do?", "--max-tokens", "5", "--model-dir", str(tiny_model_dir)]
    )
    assert result.exit_code == 0, result.output
    assert f"[{TINY_MODEL_NAME} on transformers-cpu: finish=" in result.output
    assert "out=" in result.output


def test_generate_reports_a_model_error_and_fails(runner: CliRunner, tiny_model_dir: Path) -> None:
    result = runner.invoke(app, ["generate", "hi " * 2000, "--model-dir", str(tiny_model_dir)])
    assert result.exit_code == 1
    assert "exceeds the model's context" in result.output


def test_prepare_refuses_a_missing_gguf(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["prepare", "--model-dir", str(tmp_path / "m"), "--gguf", str(tmp_path / "none.gguf")]
    )
    assert result.exit_code == 1
    assert "not found" in result.output
