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

The implementation lives in `cairn_bus.secrets`, below every service, so that the settings every
service shares (`cairn_bus.settings`: database password, S3 keys, ...) read their credentials
through this same `read_secret`; this module is its public face.
"""

from __future__ import annotations

from cairn_bus import secrets as _impl
from cairn_bus.secrets import *  # noqa: F403 - this module re-exports cairn_bus.secrets, nothing more

__all__ = list(_impl.__all__)
