"""The feedback service reads each of its credentials through `read_secret` (`*_FILE` honoured), redacted."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn_feedback.settings import Settings
from cairn_testing.secrets import settings_from_secret_files

SECRETS = {
    "postgres_password": "feedback-Pg-Pass-1",
    "s3_access_key": "FEEDBACKACCESSKEY",
    "s3_secret_key": "feedback-S3-Secret-2",
}


def test_every_credential_comes_from_its_file_and_stays_out_of_logs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with settings_from_secret_files(
        Settings, SECRETS, "postgresql://cairn_feedback@db:5432/cairn_feedback", monkeypatch, tmp_path
    ) as settings:
        assert (
            settings.postgres_dsn == "postgresql://cairn_feedback:feedback-Pg-Pass-1@db:5432/cairn_feedback"
        )
        assert settings.s3_access_key == "FEEDBACKACCESSKEY"
        assert settings.s3_secret_key.get_secret_value() == "feedback-S3-Secret-2"
