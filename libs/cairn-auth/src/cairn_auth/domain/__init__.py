"""The access-control domain: roles, principals, API keys and their errors (no I/O)."""

from cairn_auth.domain.errors import (
    AuthenticationError,
    AuthError,
    DuplicateKeyError,
    InsufficientRoleError,
    KeyNotFoundError,
    TenantAccessError,
)
from cairn_auth.domain.keys import IssuedKey, KeyRecord, hash_secret, new_key, parse_key, verify_secret
from cairn_auth.domain.principals import PLATFORM_TENANT, Principal, Role, check_tenant_id

__all__ = [
    "PLATFORM_TENANT",
    "AuthError",
    "AuthenticationError",
    "DuplicateKeyError",
    "InsufficientRoleError",
    "IssuedKey",
    "KeyNotFoundError",
    "KeyRecord",
    "Principal",
    "Role",
    "TenantAccessError",
    "check_tenant_id",
    "hash_secret",
    "new_key",
    "parse_key",
    "verify_secret",
]
