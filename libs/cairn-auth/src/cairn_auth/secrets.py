"""Secrets: read only from the environment, mounted files or HashiCorp Vault, and kept out of every log line.

`read_secret("postgres_password")` looks, in order, at:

1. `CAIRN_POSTGRES_PASSWORD`, the value itself;
2. `CAIRN_POSTGRES_PASSWORD_FILE`, the path of a mounted secret file (surrounding whitespace stripped);
3. HashiCorp Vault, when `CAIRN_VAULT_ADDR` is set: field `postgres_password` of the KV v2 secret
   at `CAIRN_VAULT_SECRET_PATH` (default `cairn`) under mount `CAIRN_VAULT_MOUNT` (default
   `secret`), with the token from `CAIRN_VAULT_TOKEN` or `CAIRN_VAULT_TOKEN_FILE`. The `hvac`
   client is imported only then (`pip install 'cairn-auth[vault]'`).

Every value read is registered, and `redact` (and the structlog processor `redact_secrets`, and
the logging filter `RedactingFilter`) replace registered values, API keys, passwords in URLs and
bearer tokens with `[REDACTED]`. Error messages here name variables and paths, never values.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import threading
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

import structlog

__all__ = [
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "RedactingFilter",
    "SecretNotFoundError",
    "VaultError",
    "forget_secrets",
    "read_secret",
    "redact",
    "redact_secrets",
    "register_secret",
    "secret_env_name",
]

REDACTED = "[REDACTED]"
"""What a secret is replaced with."""

MIN_SECRET_LENGTH = 4
"""Shorter values are not registered: redacting every `abc` in every log line would hide more than secrets."""


class SecretNotFoundError(LookupError):
    """No source provides the secret (or the one that should is empty)."""


class VaultError(RuntimeError):
    """Vault is configured but the secret could not be read from it (or `hvac` is not installed)."""


# --- the registry of known secret values -------------------------------------------------------

_lock = threading.Lock()
_registered: set[str] = set()
_registered_re: re.Pattern[str] | None = None


def register_secret(value: str | None) -> None:
    """Remember a secret value so that `redact` hides it wherever it appears."""
    global _registered_re
    if not value or len(value) < MIN_SECRET_LENGTH:
        return
    with _lock:
        if value in _registered:
            return
        _registered.add(value)
        alternatives = sorted(_registered, key=len, reverse=True)  # longest first: no partial leftovers
        _registered_re = re.compile("|".join(re.escape(v) for v in alternatives))


def forget_secrets() -> None:
    """Forget every registered value (for tests)."""
    global _registered_re
    with _lock:
        _registered.clear()
        _registered_re = None


_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # API keys: the id stays (it is public and names the key), the secret goes.
    (re.compile(r"\bcairn_([0-9a-f]{12})_[A-Za-z0-9_-]{16,}"), rf"cairn_\1_{REDACTED}"),
    # user:password@ in any URL (postgresql://, redis://, https://, ...).
    (re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#@]*:)[^\s@/]+@"), rf"\1{REDACTED}@"),
    # Bearer tokens, e.g. an Authorization header printed whole.
    (re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+"), rf"\1{REDACTED}"),
)


def redact(text: str) -> str:
    """`text` with registered secrets, API keys, URL passwords and bearer tokens replaced by `[REDACTED]`."""
    pattern = _registered_re
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    for regex, replacement in _PATTERNS:
        text = regex.sub(replacement, text)
    return text


# --- structlog and logging ---------------------------------------------------------------------

_SENSITIVE_KEY = re.compile(
    r"(?i)^(?:.*[_.-])?(?:password|passwd|secret|api[_-]?key|private[_-]?key|credentials?)$"
    r"|^(?:authorization|x-api-key|token|access[_-]token|refresh[_-]token|vault[_-]token)$"
)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bool | int | float | type(None)):
        return value
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and _SENSITIVE_KEY.match(k) and v is not None else _scrub(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return type(value)(_scrub(v) for v in value)
    if isinstance(value, BaseException):
        return redact(f"{type(value).__name__}: {value}")
    text = repr(value)  # an object the renderer would print: only replaced when it shows a secret
    cleaned = redact(text)
    return value if cleaned == text else cleaned


def redact_secrets(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: every value of the event dict with secrets redacted (keys like `password` wholly).

    Put it after `format_exc_info` and before the renderer. An `exc_info` still in the dict is
    formatted here first, so tracebacks are redacted too.
    """
    if event_dict.get("exc_info"):
        event_dict = structlog.processors.format_exc_info(logger, method_name, event_dict)
    for key in list(event_dict):
        value = event_dict[key]
        event_dict[key] = REDACTED if _SENSITIVE_KEY.match(key) and value is not None else _scrub(value)
    return event_dict


class RedactingFilter(logging.Filter):
    """A `logging` filter that redacts the message and traceback of every record (for stdlib loggers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


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
    name: str, *, environ: Mapping[str, str] | None = None, vault_client: Any | None = None
) -> str:
    """The value of a secret from the environment, a mounted file or Vault (see the module docstring).

    The value is registered for redaction. Raises SecretNotFoundError when no source has it,
    ValueError when both the variable and its `_FILE` are set, VaultError when Vault fails.
    `vault_client` replaces the hvac client (tests).
    """
    env = os.environ if environ is None else environ
    var = secret_env_name(name)
    value = _from_env_or_file(var, env)
    if value is None and env.get("CAIRN_VAULT_ADDR"):
        value = _from_vault(name, env, vault_client)
    if value is None:
        raise SecretNotFoundError(f"secret {name!r} not found: set {var} or {var}_FILE, or configure Vault")
    register_secret(value)
    return value
