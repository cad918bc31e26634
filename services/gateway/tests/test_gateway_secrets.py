"""The gateway service reads each of its credentials through `read_secret` (`*_FILE` honoured), redacted."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn_gateway.settings import Settings
from cairn_testing.secrets import settings_from_secret_files

SECRETS = {"postgres_password": "gateway-Pg-Pass-1"}


def test_every_credential_comes_from_its_file_and_stays_out_of_logs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with settings_from_secret_files(
        Settings, SECRETS, "postgresql://cairn_gateway@db:5432/cairn_gateway", monkeypatch, tmp_path
    ) as settings:
        assert settings.postgres_dsn == "postgresql://cairn_gateway:gateway-Pg-Pass-1@db:5432/cairn_gateway"
