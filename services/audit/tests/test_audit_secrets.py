"""The audit service reads each of its credentials through `read_secret` (`*_FILE` honoured), redacted."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn_audit.settings import Settings
from cairn_bus.secrets import forget_secrets, redact, secret_env_name
from cairn_bus.settings import credential_fields

SECRETS = {"postgres_password": "audit-Pg-Pass-1"}


def test_every_credential_comes_from_its_file_and_stays_out_of_logs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert {"postgres_password"} <= set(credential_fields(Settings))
    forget_secrets()
    monkeypatch.setenv("CAIRN_POSTGRES_DSN", "postgresql://cairn_audit@db:5432/cairn_audit")
    for name, value in SECRETS.items():
        monkeypatch.delenv(secret_env_name(name), raising=False)
        (tmp_path / name).write_text(value + "\n")
        monkeypatch.setenv(secret_env_name(name) + "_FILE", str(tmp_path / name))
    settings = Settings()
    assert settings.postgres_dsn == "postgresql://cairn_audit:audit-Pg-Pass-1@db:5432/cairn_audit"
    line = redact(f"{settings!r} " + " ".join(SECRETS.values()))
    for name, value in SECRETS.items():
        assert (value in line) is (name == "s3_access_key"), name  # an access key names the account
    forget_secrets()
