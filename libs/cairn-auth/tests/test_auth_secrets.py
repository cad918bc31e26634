"""Secrets from the environment, mounted files and (a fake) Vault; redaction of known and shaped secrets."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cairn_auth.secrets import (
    SecretNotFoundError,
    VaultError,
    read_secret,
    redact,
    register_secret,
    secret_env_name,
)


class FakeKV2:
    def __init__(self, data: dict[str, dict[str, str]], error: Exception | None = None) -> None:
        self.data = data
        self.error = error
        self.calls: list[dict[str, Any]] = []

    def read_secret_version(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if self.error is not None:
            raise self.error
        return {"data": {"data": self.data[f"{kwargs['mount_point']}/{kwargs['path']}"], "metadata": {}}}


def fake_vault(data: dict[str, dict[str, str]], error: Exception | None = None) -> Any:
    kv = FakeKV2(data, error)
    return SimpleNamespace(secrets=SimpleNamespace(kv=SimpleNamespace(v2=kv)), kv=kv)


def test_secret_names_map_to_cairn_variables() -> None:
    assert secret_env_name("postgres_password") == "CAIRN_POSTGRES_PASSWORD"
    assert secret_env_name("s3-secret-key") == "CAIRN_S3_SECRET_KEY"
    assert secret_env_name("CAIRN_VAULT_TOKEN") == "CAIRN_VAULT_TOKEN"
    with pytest.raises(ValueError, match="invalid secret name"):
        secret_env_name("--")


def test_a_secret_from_the_environment_is_registered_for_redaction() -> None:
    value = read_secret("postgres_password", environ={"CAIRN_POSTGRES_PASSWORD": "pg-Secret-42"})
    assert value == "pg-Secret-42"
    assert redact("login failed with pg-Secret-42 for cairn") == "login failed with [REDACTED] for cairn"


def test_the_real_environment_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAIRN_SMTP_PASSWORD", "mail-pass-9")
    assert read_secret("smtp_password") == "mail-pass-9"


def test_a_secret_from_a_mounted_file_is_stripped(tmp_path: Path) -> None:
    path = tmp_path / "s3-secret"
    path.write_text("\n  s3-secret-from-file \n")
    assert (
        read_secret("s3_secret_key", environ={"CAIRN_S3_SECRET_KEY_FILE": str(path)}) == "s3-secret-from-file"
    )
    assert redact("s3-secret-from-file") == "[REDACTED]"


def test_missing_empty_and_ambiguous_secrets_are_errors_that_never_show_values(tmp_path: Path) -> None:
    with pytest.raises(SecretNotFoundError, match="set CAIRN_API_TOKEN or CAIRN_API_TOKEN_FILE"):
        read_secret("api_token", environ={})
    empty = tmp_path / "empty"
    empty.write_text("  \n")
    with pytest.raises(SecretNotFoundError, match="which is empty"):
        read_secret("api_token", environ={"CAIRN_API_TOKEN_FILE": str(empty)})
    with pytest.raises(SecretNotFoundError, match="cannot be read"):
        read_secret("api_token", environ={"CAIRN_API_TOKEN_FILE": str(tmp_path / "absent")})
    with pytest.raises(SecretNotFoundError, match="is empty"):
        read_secret("api_token", environ={"CAIRN_API_TOKEN": ""})
    with pytest.raises(ValueError, match="not both") as both:
        read_secret(
            "api_token", environ={"CAIRN_API_TOKEN": "tok-value-1", "CAIRN_API_TOKEN_FILE": str(empty)}
        )
    assert "tok-value-1" not in str(both.value)


VAULT_ENV = {
    "CAIRN_VAULT_ADDR": "https://vault.internal:8200",
    "CAIRN_VAULT_SECRET_PATH": "cairn/prod",
}


def test_a_secret_from_vault() -> None:
    vault = fake_vault({"secret/cairn/prod": {"postgres_password": "from-vault-77", "other": "x"}})
    value = read_secret("postgres_password", environ=VAULT_ENV, vault_client=vault)
    assert value == "from-vault-77"
    assert vault.kv.calls == [
        {"path": "cairn/prod", "mount_point": "secret", "raise_on_deleted_version": True}
    ]
    assert redact("pw=from-vault-77") == "pw=[REDACTED]"


def test_the_environment_wins_over_vault_and_vault_is_not_asked() -> None:
    vault = fake_vault({})
    env = {**VAULT_ENV, "CAIRN_POSTGRES_PASSWORD": "env-wins-1"}
    assert read_secret("postgres_password", environ=env, vault_client=vault) == "env-wins-1"
    assert vault.kv.calls == []


def test_vault_failures_are_clear_and_redacted() -> None:
    vault = fake_vault({"secret/cairn/prod": {"other": "x"}})
    with pytest.raises(SecretNotFoundError, match="has no field 'postgres_password'"):
        read_secret("postgres_password", environ=VAULT_ENV, vault_client=vault)
    register_secret("vault-token-abc")
    broken = fake_vault({}, error=PermissionError("permission denied for token vault-token-abc"))
    with pytest.raises(VaultError) as info:
        read_secret(
            "postgres_password", environ={**VAULT_ENV, "CAIRN_VAULT_MOUNT": "kv"}, vault_client=broken
        )
    assert "kv/cairn/prod at https://vault.internal:8200" in str(info.value)
    assert "vault-token-abc" not in str(info.value)
    assert "[REDACTED]" in str(info.value)


def test_vault_without_hvac_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hvac", None)  # as if not installed
    with pytest.raises(VaultError, match="hvac package is not installed"):
        read_secret("postgres_password", environ={**VAULT_ENV, "CAIRN_VAULT_TOKEN": "t0ken-x"})


def test_vault_builds_an_hvac_client_with_the_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    made: list[dict[str, Any]] = []
    vault = fake_vault({"secret/cairn/prod": {"postgres_password": "hv-secret-5"}})

    def client(**kwargs: Any) -> Any:
        made.append(kwargs)
        return vault

    monkeypatch.setitem(sys.modules, "hvac", SimpleNamespace(Client=client))
    token_file = tmp_path / "vault-token"
    token_file.write_text("s.vaulttoken123\n")
    env = {**VAULT_ENV, "CAIRN_VAULT_TOKEN_FILE": str(token_file)}
    assert read_secret("postgres_password", environ=env) == "hv-secret-5"
    assert made == [{"url": "https://vault.internal:8200", "token": "s.vaulttoken123", "namespace": None}]
    assert redact("token s.vaulttoken123") == "token [REDACTED]"


def test_shaped_secrets_are_redacted_without_registration() -> None:
    key = "cairn_0123456789ab_" + "Zx9-_" * 8 + "abc"
    assert redact(f"key={key}.") == "key=cairn_0123456789ab_[REDACTED]."
    assert (
        redact("dsn postgresql://cairn:pa55word@db:5432/cairn ok")
        == "dsn postgresql://cairn:[REDACTED]@db:5432/cairn ok"
    )
    assert redact("redis://:onlypass@cache:6379/0") == "redis://:[REDACTED]@cache:6379/0"
    assert redact("postgresql://cairn@db/cairn and http://host:8080/a@b") == (
        "postgresql://cairn@db/cairn and http://host:8080/a@b"
    )
    assert redact("Authorization: Bearer abc.def-ghi") == "Authorization: Bearer [REDACTED]"
    assert redact("nothing secret here: 42 tokens") == "nothing secret here: 42 tokens"


def test_short_values_are_not_registered() -> None:
    register_secret("ab")
    register_secret("")
    register_secret(None)
    assert redact("ab cab") == "ab cab"


def test_overlapping_secrets_are_redacted_whole() -> None:
    register_secret("secret-one")
    register_secret("secret-one-two")
    assert redact("x secret-one-two y secret-one z") == "x [REDACTED] y [REDACTED] z"


# Secrets drawn from an alphabet `[REDACTED]` does not use, so an occurrence cannot span a replacement.
@given(
    st.lists(st.text(alphabet="abcdef0123456789-_.", min_size=4, max_size=40), min_size=1, max_size=4),
    st.text(max_size=30),
    st.text(max_size=30),
)
def test_a_registered_secret_never_survives_redaction(secrets: list[str], before: str, after: str) -> None:
    for secret in secrets:
        register_secret(secret)
    text = redact(before + "".join(secrets) + after + secrets[0])
    for secret in secrets:
        assert secret not in text
