"""The inference service reads each of its credentials through `read_secret` (`*_FILE` honoured), redacted."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn_inference.settings import Settings
from cairn_testing.secrets import settings_from_secret_files

SECRETS = {
    "postgres_password": "inference-Pg-Pass-1",
    "s3_access_key": "INFERENCEACCESSKEY",
    "s3_secret_key": "inference-S3-Secret-2",
    "sglang_api_key": "inference-Sglang-Key-3",
}


def test_every_credential_comes_from_its_file_and_stays_out_of_logs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with settings_from_secret_files(
        Settings, SECRETS, "postgresql://cairn_inference@db:5432/cairn_inference", monkeypatch, tmp_path
    ) as settings:
        assert (
            settings.postgres_dsn
            == "postgresql://cairn_inference:inference-Pg-Pass-1@db:5432/cairn_inference"
        )
        assert settings.s3_access_key == "INFERENCEACCESSKEY"
        assert settings.s3_secret_key.get_secret_value() == "inference-S3-Secret-2"
        assert settings.sglang_api_key is not None
        assert settings.sglang_api_key.get_secret_value() == "inference-Sglang-Key-3"
