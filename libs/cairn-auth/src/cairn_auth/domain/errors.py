"""What can go wrong when a caller is identified and checked. No message ever contains a key or secret."""

from __future__ import annotations

__all__ = [
    "AuthError",
    "AuthenticationError",
    "DuplicateKeyError",
    "InsufficientRoleError",
    "KeyNotFoundError",
    "TenantAccessError",
]


class AuthError(Exception):
    """Base class of every access-control error."""


class AuthenticationError(AuthError):
    """No credential, or one that is malformed, unknown or revoked (HTTP 401)."""


class InsufficientRoleError(AuthError):
    """The caller is known but its role does not allow the action (HTTP 403)."""


class TenantAccessError(AuthError):
    """The caller asked for another tenant's resource (HTTP 404: its existence is not confirmed)."""


class KeyNotFoundError(AuthError, LookupError):
    """No API key has this id."""


class DuplicateKeyError(AuthError):
    """An API key with this id exists already."""
