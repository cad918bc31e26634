"""The shared settings read every credential through `read_secret`: variable, `_FILE` or Vault; redacted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cairn_bus.secrets import forget_secrets, redact
from cairn_bus.settings import (
    PostgresSettings,
    S3Settings,
    dsn_with_password,
    local_stack_env,
    settings_or_local_stack,
)

CREDENTIAL_VARIABLES = (
    "CAIRN_POSTGRES_DSN",
    "CAIRN_POSTGRES_PASSWORD",
    "CAIRN_POSTGRES_PASSWORD_FILE",
    "CAIRN_S3_ACCESS_KEY",
    "CAIRN_S3_ACCESS_KEY_FILE",
    "CAIRN_S3_SECRET_KEY",
    "CAIRN_S3_SECRET_KEY_FILE",
    "CAIRN_VAULT_ADDR",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    forget_secrets()
    yield
    forget_secrets()


def test_a_password_file_goes_into_the_dsn_and_out_of_the_logs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "pg"
    secret.write_text("p@ss/w:rd-42\n")
    monkeypatch.setenv("CAIRN_POSTGRES_DSN", "postgresql://cairn_audit@db:5432/cairn_audit")
    monkeypatch.setenv("CAIRN_POSTGRES_PASSWORD_FILE", str(secret))
    settings = PostgresSettings()
    assert settings.postgres_dsn == "postgresql://cairn_audit:p%40ss%2Fw%3Ard-42@db:5432/cairn_audit"
    assert settings.postgres_password is not None
    assert settings.postgres_password.get_secret_value() == "p@ss/w:rd-42"
    line = redact(f"connecting to {settings.postgres_dsn} as p@ss/w:rd-42")
    assert "p%40ss" not in line
    assert "p@ss" not in line


def test_without_a_password_the_dsn_is_left_alone() -> None:
    assert PostgresSettings().postgres_dsn == "postgresql://cairn@127.0.0.1:15432/cairn"
    assert PostgresSettings().postgres_password is None


def test_a_password_in_the_dsn_is_redacted_and_two_passwords_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CAIRN_POSTGRES_DSN", "postgresql://u:inline-pass-9@db/x")
    assert redact(f"dsn password inline-pass-9 in {PostgresSettings().postgres_dsn}").count("inline") == 0
    monkeypatch.setenv("CAIRN_POSTGRES_PASSWORD", "second-pass-9")
    with pytest.raises(ValueError, match="keep one"):
        PostgresSettings()


def test_settings_rebuilt_from_their_own_values_keep_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAIRN_POSTGRES_DSN", "postgresql://u@db/x")
    monkeypatch.setenv("CAIRN_POSTGRES_PASSWORD", "pw/42-abc")
    first = PostgresSettings()
    again = PostgresSettings(**first.model_dump())
    assert again.postgres_dsn == first.postgres_dsn == "postgresql://u:pw%2F42-abc@db/x"


def test_a_password_needs_a_url_with_a_user() -> None:
    with pytest.raises(ValueError, match="USER"):
        dsn_with_password("postgresql://db:5432/x", "pw-12345")
    with pytest.raises(ValueError, match="USER"):
        dsn_with_password("host=db user=u", "pw-12345")


def test_s3_keys_from_files_the_secret_one_redacted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "ak").write_text("AKIAEXAMPLEACCESS\n")
    (tmp_path / "sk").write_text("s3-Secret-From-File\n")
    monkeypatch.setenv("CAIRN_S3_ACCESS_KEY_FILE", str(tmp_path / "ak"))
    monkeypatch.setenv("CAIRN_S3_SECRET_KEY_FILE", str(tmp_path / "sk"))
    settings = S3Settings()
    assert settings.s3_access_key == "AKIAEXAMPLEACCESS"
    assert settings.s3_secret_key.get_secret_value() == "s3-Secret-From-File"
    assert redact("keys AKIAEXAMPLEACCESS s3-Secret-From-File") == "keys AKIAEXAMPLEACCESS [REDACTED]"


def test_a_value_given_to_the_constructor_wins_and_a_variable_with_its_file_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "sk").write_text("from-file-secret")
    monkeypatch.setenv("CAIRN_S3_SECRET_KEY_FILE", str(tmp_path / "sk"))
    assert S3Settings(s3_secret_key="given-secret").s3_secret_key.get_secret_value() == "given-secret"
    monkeypatch.setenv("CAIRN_S3_SECRET_KEY", "from-variable")
    with pytest.raises(ValueError, match="not both"):
        S3Settings()


def test_an_unreadable_secret_file_fails_the_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CAIRN_POSTGRES_PASSWORD_FILE", str(tmp_path / "absent"))
    with pytest.raises(LookupError, match="cannot be read"):
        PostgresSettings()


def test_a_secret_file_wins_over_the_local_stack_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "sk").write_text("mounted-s3-secret")
    monkeypatch.setenv("CAIRN_S3_SECRET_KEY_FILE", str(tmp_path / "sk"))
    settings = settings_or_local_stack(S3Settings, profile="test")
    assert settings.s3_secret_key.get_secret_value() == "mounted-s3-secret"
    monkeypatch.delenv("CAIRN_S3_SECRET_KEY_FILE")
    assert (
        settings_or_local_stack(S3Settings, profile="test").s3_secret_key.get_secret_value()
        == (local_stack_env("test")["CAIRN_S3_SECRET_KEY"])
    )
