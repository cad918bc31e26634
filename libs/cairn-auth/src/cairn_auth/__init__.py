"""Cairn access control and secrets.

- API keys `cairn_<key_id>_<secret>`, stored as salted hashes, each with a role (`viewer` <
  `operator` < `admin`) and a tenant (`*`: platform-wide, admins only);
- `Authenticator` resolves a presented key to a `Principal`; `cairn_auth.fastapi` guards routes
  (`require(role)`, `principal.check_tenant(tenant)`);
- `cairn_auth.secrets` reads secrets from the environment, mounted files or Vault, and redacts
  them from logs (`redact_secrets` structlog processor);
- administrative actions become `cairn.admin_action.recorded.v1` events (`admin_action`);
- `cairn_auth.cli.app` is `cairn keys`.
"""

from cairn_auth.adapters.memory import InMemoryKeyStore
from cairn_auth.authenticator import API_KEY_HEADER, Authenticator, presented_key
from cairn_auth.domain import (
    PLATFORM_TENANT,
    AuthenticationError,
    AuthError,
    DuplicateKeyError,
    InsufficientRoleError,
    IssuedKey,
    KeyNotFoundError,
    KeyRecord,
    Principal,
    Role,
    TenantAccessError,
    hash_secret,
    new_key,
    parse_key,
    verify_secret,
)
from cairn_auth.management import admin_action, create_key, install_bootstrap_key, revoke_key
from cairn_auth.ports import KeyStore
from cairn_auth.secrets import read_secret, redact, redact_secrets, register_secret
from cairn_auth.settings import AuthSettings

__all__ = [
    "API_KEY_HEADER",
    "PLATFORM_TENANT",
    "AuthError",
    "AuthSettings",
    "AuthenticationError",
    "Authenticator",
    "DuplicateKeyError",
    "InMemoryKeyStore",
    "InsufficientRoleError",
    "IssuedKey",
    "KeyNotFoundError",
    "KeyRecord",
    "KeyStore",
    "Principal",
    "Role",
    "TenantAccessError",
    "admin_action",
    "create_key",
    "hash_secret",
    "install_bootstrap_key",
    "new_key",
    "parse_key",
    "presented_key",
    "read_secret",
    "redact",
    "redact_secrets",
    "register_secret",
    "revoke_key",
    "verify_secret",
]
