"""Console sessions: an operator logs in with an API key; the browser keeps it sealed in a cookie.

The cookie holds the key, a CSRF token and an expiry, sealed with AES-256-GCM under a key derived
from the secret `console_secret` (`CAIRN_CONSOLE_SECRET`, a mounted file or Vault, like every secret),
else under a random key per process: sessions then end when the process does and are not shared by
replicas, so production deployments set the secret. The key is needed to call
the services' APIs on the operator's behalf, so every service keeps enforcing its own roles and
tenant scope; it never appears in a page. The cookie is `HttpOnly`, `SameSite=Strict` and, behind
TLS (`CAIRN_CONSOLE_SECURE_COOKIE=true`), `Secure`. Every form carries the session's CSRF token, and
a POST whose token or `Origin` does not match is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["COOKIE", "LOGIN_COOKIE", "Session", "SessionSealer", "new_token", "same_token"]

COOKIE = "cairn_console"
"""The session cookie's name."""
LOGIN_COOKIE = "cairn_console_login"
"""A short-lived cookie holding the login form's CSRF token (double submit: there is no session yet)."""
_NONCE = 12
_AAD = b"cairn-console-session-v1"


def new_token() -> str:
    """A fresh random token (CSRF, login)."""
    return secrets.token_urlsafe(24)


def same_token(a: str | None, b: str | None) -> bool:
    """Whether two tokens are present and equal (constant time)."""
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


@dataclass(frozen=True)
class Session:
    """What the cookie holds."""

    api_key: str
    csrf: str
    expires_at: float


class SessionSealer:
    """Seals and opens session cookies."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the console's session key must be 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def of_secret(cls, secret: str | None) -> SessionSealer:
        """The sealer for a configured secret (any length), else for a random key."""
        if secret:
            return cls(hmac.new(secret.encode(), b"cairn-console-session", hashlib.sha256).digest())
        return cls(os.urandom(32))

    def seal(self, session: Session) -> str:
        nonce = os.urandom(_NONCE)
        plain = json.dumps({"k": session.api_key, "c": session.csrf, "e": session.expires_at}).encode()
        return base64.urlsafe_b64encode(nonce + self._aead.encrypt(nonce, plain, _AAD)).decode()

    def open(self, cookie: str | None, now: float | None = None) -> Session | None:
        """The session in `cookie`; None when there is none, it was tampered with or it expired."""
        if not cookie:
            return None
        try:
            raw = base64.urlsafe_b64decode(cookie.encode())
            fields = json.loads(self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], _AAD))
            session = Session(str(fields["k"]), str(fields["c"]), float(fields["e"]))
        except (InvalidTag, ValueError, KeyError, TypeError):
            return None
        if session.expires_at <= (time.time() if now is None else now):
            return None
        return session
