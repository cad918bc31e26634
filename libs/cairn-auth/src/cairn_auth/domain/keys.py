"""API keys: the token format, the stored record, and hashing with constant-time verification.

A key reads `cairn_<key_id>_<secret>`: `key_id` is 12 hex digits (public: it names the key in
listings, logs and the audit trail), `secret` is 32 random bytes, URL-safe base64 (43 characters).
Only a hash of the secret is stored: `sha256$<salt>$<HMAC-SHA256(salt, secret)>` with a random
16-byte salt per key.

Why a fast keyed hash and not argon2 or bcrypt: slow password hashes exist to make guessing
low-entropy, human-chosen passwords expensive after a database leak. A Cairn key secret is 256
bits from `secrets.token_urlsafe`; no amount of hashing speed makes guessing it feasible, so a
slow hash would add nothing but tens of milliseconds of CPU to every API request (and a cheap
way to load the server with bogus keys). The salt still makes every stored hash unique, so equal
hashes reveal nothing and no table can be precomputed. This is what GitHub, Stripe and others do
for tokens. Verification compares digests with `hmac.compare_digest` (constant time), and an
unknown key id is checked against a dummy hash so that it costs the same as a known one.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from cairn_auth.domain.errors import AuthenticationError
from cairn_auth.domain.principals import Principal, Role

__all__ = [
    "KEY_ID_PATTERN",
    "KEY_PATTERN",
    "IssuedKey",
    "KeyRecord",
    "hash_secret",
    "new_key",
    "parse_key",
    "verify_secret",
]

KEY_ID_PATTERN = r"^[0-9a-f]{12}$"
"""A key id: 12 lower-case hex digits."""

KEY_PATTERN = r"^cairn_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$"
"""A whole API key: `cairn_<key_id>_<secret>`."""

_KEY_RE = re.compile(KEY_PATTERN)
_SCHEME = "sha256"
_SALT_BYTES = 16


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key just created: the only moment the secret exists outside the caller's hands."""

    key_id: str
    secret: str = field(repr=False)

    @property
    def token(self) -> str:
        """The whole key as the caller presents it: `cairn_<key_id>_<secret>`."""
        return f"cairn_{self.key_id}_{self.secret}"


def new_key() -> IssuedKey:
    """A new random key (48-bit id, 256-bit secret)."""
    return IssuedKey(key_id=secrets.token_hex(6), secret=secrets.token_urlsafe(32))


def parse_key(token: str) -> IssuedKey:
    """Split a presented key into id and secret; raises AuthenticationError if it is malformed."""
    match = _KEY_RE.match(token.strip())
    if match is None:
        raise AuthenticationError("malformed API key")
    return IssuedKey(key_id=match.group(1), secret=match.group(2))


def _digest(salt: bytes, secret: str) -> str:
    return hmac.new(salt, secret.encode("utf-8"), hashlib.sha256).hexdigest()


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    """The stored form of a secret: `sha256$<salt hex>$<digest hex>` (a new random salt by default)."""
    salt = salt if salt is not None else secrets.token_bytes(_SALT_BYTES)
    return f"{_SCHEME}${salt.hex()}${_digest(salt, secret)}"


_DUMMY_HASH = hash_secret(secrets.token_urlsafe(32))


def verify_secret(secret: str, stored: str | None) -> bool:
    """Whether `secret` matches the stored hash, compared in constant time.

    `stored` None (an unknown key id) is checked against a dummy hash and is never a match.
    """
    scheme, _, rest = (stored or _DUMMY_HASH).partition("$")
    salt_hex, _, expected = rest.partition("$")
    try:
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        salt = b""
    matches = hmac.compare_digest(_digest(salt, secret), expected)
    return matches and stored is not None and scheme == _SCHEME and len(salt) == _SALT_BYTES


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A stored API key: everything but the secret, which is kept only as a salted hash."""

    key_id: str
    tenant: str
    role: Role
    name: str
    secret_hash: str = field(repr=False)
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        """Whether the key was revoked (revoked keys are kept, for the record)."""
        return self.revoked_at is not None

    def principal(self) -> Principal:
        """The principal a caller presenting this key acts as."""
        return Principal(key_id=self.key_id, tenant=self.tenant, role=Role(self.role), name=self.name)
