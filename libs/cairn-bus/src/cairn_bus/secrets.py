"""Secrets: read only from the environment, mounted files or HashiCorp Vault, and kept out of every log line.

`read_secret("postgres_password")` looks, in order, at:

1. `CAIRN_POSTGRES_PASSWORD`, the value itself;
2. `CAIRN_POSTGRES_PASSWORD_FILE`, the path of a mounted secret file (surrounding whitespace stripped);
3. HashiCorp Vault, when `CAIRN_VAULT_ADDR` is set: field `postgres_password` of the KV v2 secret
   at `CAIRN_VAULT_SECRET_PATH` (default `cairn`) under mount `CAIRN_VAULT_MOUNT` (default
   `secret`), with the token from `CAIRN_VAULT_TOKEN` or `CAIRN_VAULT_TOKEN_FILE`. The `hvac`
   client is imported only then (`pip install 'cairn-auth[vault]'`).

Every value read is registered for redaction (`cairn_observability.redaction`). Error messages here
name variables and paths, never values.

It lives in cairn-bus, below every service, so that the shared settings (`cairn_bus.settings`) read
each credential through it; `cairn_auth.secrets` is its public face (the same functions).
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cairn_observability.redaction import (
    MIN_SECRET_LENGTH,
    REDACTED,
    RedactingFilter,
    forget_secrets,
    redact,
    redact_secrets,
    register_secret,
)

__all__ = [
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "RedactingFilter",
    "SecretNotFoundError",
    "VaultError",
    "forget_secrets",
    "optional_secret",
    "read_secret",
    "redact",
    "redact_secrets",
    "register_secret",
    "secret_env_name",
]


class SecretNotFoundError(LookupError):
    """No source provides the secret (or the one that should is empty)."""


class VaultError(RuntimeError):
    """Vault is configured but the secret could not be read from it (or `hvac` is not installed)."""


# --- reading secrets ---------------------------------------------------------------------------


def secret_env_name(name: str) -> str:
    """The variable holding a secret: `postgres_password` → `CAIRN_POSTGRES_PASSWORD`."""
    upper = re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_")
    if not upper:
        raise ValueError(f"invalid secret name {name!r}")
    return upper if upper.startswith("CAIRN_") else f"CAIRN_{upper}"


def _from_env_or_file(var: str, env: Mapping[str, str]) -> str | None:
    value, file = env.get(var), env.get(f"{var}_FILE")
    if value is not None and file is not None:
        raise ValueError(f"set {var} or {var}_FILE, not both")
    if value is not None:
        if not value.strip():
            raise SecretNotFoundError(f"{var} is empty")
        return value
    if file is None:
        return None
    try:
        text = Path(file).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SecretNotFoundError(f"{var}_FILE names {file}, which cannot be read ({exc.strerror})") from None
    if not text:
        raise SecretNotFoundError(f"{var}_FILE names {file}, which is empty")
    return text


def _vault_client(addr: str, env: Mapping[str, str]) -> Any:
    try:
        hvac = importlib.import_module("hvac")
    except ModuleNotFoundError:
        raise VaultError(
            "CAIRN_VAULT_ADDR is set but the hvac package is not installed: "
            "pip install 'cairn-auth[vault]' (or unset CAIRN_VAULT_ADDR)"
        ) from None
    token = _from_env_or_file("CAIRN_VAULT_TOKEN", env)
    register_secret(token)
    return hvac.Client(url=addr, token=token, namespace=env.get("CAIRN_VAULT_NAMESPACE"))


def _from_vault(name: str, env: Mapping[str, str], client: Any | None) -> str:
    addr = env["CAIRN_VAULT_ADDR"]
    path = env.get("CAIRN_VAULT_SECRET_PATH", "cairn").strip("/")
    mount = env.get("CAIRN_VAULT_MOUNT", "secret").strip("/")
    field = secret_env_name(name).removeprefix("CAIRN_").lower()
    where = f"{mount}/{path} at {addr}"
    client = client if client is not None else _vault_client(addr, env)
    try:
        response = client.secrets.kv.v2.read_secret_version(
            path=path, mount_point=mount, raise_on_deleted_version=True
        )
        data = response["data"]["data"]
    except Exception as exc:
        raise VaultError(
            f"could not read {where} from Vault: {type(exc).__name__}: {redact(str(exc))}"
        ) from None
    value = data.get(field) if isinstance(data, Mapping) else None
    if not isinstance(value, str) or not value:
        raise SecretNotFoundError(f"the Vault secret {where} has no field {field!r}")
    return value


def read_secret(
    name: str,
    *,
    environ: Mapping[str, str] | None = None,
    vault_client: Any | None = None,
    redacted: bool = True,
) -> str:
    """The value of a secret from the environment, a mounted file or Vault (see the module docstring).

    The value is registered for redaction unless `redacted` is False (a credential's public half,
    such as an S3 access key, which names an account like a user name does). Raises
    SecretNotFoundError when no source has it, ValueError when both the variable and its `_FILE`
    are set, VaultError when Vault fails. `vault_client` replaces the hvac client (tests).
    """
    env = os.environ if environ is None else environ
    var = secret_env_name(name)
    value = _from_env_or_file(var, env)
    if value is None and env.get("CAIRN_VAULT_ADDR"):
        value = _from_vault(name, env, vault_client)
    if value is None:
        raise SecretNotFoundError(f"secret {name!r} not found: set {var} or {var}_FILE, or configure Vault")
    if redacted:
        register_secret(value)
    return value


def optional_secret(
    name: str,
    *,
    environ: Mapping[str, str] | None = None,
    vault_client: Any | None = None,
    redacted: bool = True,
) -> str | None:
    """`read_secret(name)`, or None when no source has it (a credential that may be absent, such as
    the password of a database that trusts local connections). A source that is configured but
    broken (an unreadable `_FILE`, both the variable and its `_FILE`, Vault failing) still raises."""
    env = os.environ if environ is None else environ
    var = secret_env_name(name)
    if var not in env and f"{var}_FILE" not in env and not env.get("CAIRN_VAULT_ADDR"):
        return None
    try:
        return read_secret(name, environ=env, vault_client=vault_client, redacted=redacted)
    except SecretNotFoundError:
        if var in env or f"{var}_FILE" in env:
            raise
        return None  # Vault is configured but holds no such field
