"""The retriever service reads each of its credentials through `read_secret` (`*_FILE` honoured), redacted."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn_retriever.settings import Settings
from cairn_testing.secrets import settings_from_secret_files

SECRETS = {
    "postgres_password": "retriever-Pg-Pass-1",
    "s3_access_key": "RETRIEVERACCESSKEY",
    "s3_secret_key": "retriever-S3-Secret-2",
}


def test_every_credential_comes_from_its_file_and_stays_out_of_logs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with settings_from_secret_files(
        Settings, SECRETS, "postgresql://cairn_retriever@db:5432/cairn_retriever", monkeypatch, tmp_path
    ) as settings:
        assert (
            settings.postgres_dsn
            == "postgresql://cairn_retriever:retriever-Pg-Pass-1@db:5432/cairn_retriever"
        )
        assert settings.s3_access_key == "RETRIEVERACCESSKEY"
        assert settings.s3_secret_key.get_secret_value() == "retriever-S3-Secret-2"
