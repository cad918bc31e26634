"""The retriever service reads each of its credentials through `read_secret` (`*_FILE` honoured), redacted."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn_bus.secrets import forget_secrets, redact, secret_env_name
from cairn_bus.settings import credential_fields
from cairn_retriever.settings import Settings

SECRETS = {
    "postgres_password": "retriever-Pg-Pass-1",
    "s3_access_key": "RETRIEVERACCESSKEY",
    "s3_secret_key": "retriever-S3-Secret-2",
}


def test_every_credential_comes_from_its_file_and_stays_out_of_logs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert {"postgres_password", "s3_access_key", "s3_secret_key"} <= set(credential_fields(Settings))
    forget_secrets()
    monkeypatch.setenv("CAIRN_POSTGRES_DSN", "postgresql://cairn_retriever@db:5432/cairn_retriever")
    for name, value in SECRETS.items():
        monkeypatch.delenv(secret_env_name(name), raising=False)
        (tmp_path / name).write_text(value + "\n")
        monkeypatch.setenv(secret_env_name(name) + "_FILE", str(tmp_path / name))
    settings = Settings()
    assert settings.postgres_dsn == "postgresql://cairn_retriever:retriever-Pg-Pass-1@db:5432/cairn_retriever"
    assert settings.s3_access_key == "RETRIEVERACCESSKEY"
    assert settings.s3_secret_key.get_secret_value() == "retriever-S3-Secret-2"
    line = redact(f"{settings!r} " + " ".join(SECRETS.values()))
    for name, value in SECRETS.items():
        assert (value in line) is (name == "s3_access_key"), name  # an access key names the account
    forget_secrets()
