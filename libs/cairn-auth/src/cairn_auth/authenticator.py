"""Turning a presented API key into a Principal."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from cairn_auth.domain.errors import AuthenticationError
from cairn_auth.domain.keys import parse_key, verify_secret
from cairn_auth.domain.principals import Principal
from cairn_auth.ports import KeyStore

__all__ = ["API_KEY_HEADER", "Authenticator", "presented_key"]

API_KEY_HEADER = "X-API-Key"
"""The alternative to `Authorization: Bearer <key>`."""


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # plain dicts are case-sensitive; HTTP header names are not
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key in `Authorization: Bearer <key>` or, failing that, `X-API-Key`; None if neither."""
    authorization = _header(headers, "Authorization")
    if authorization:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    api_key = _header(headers, API_KEY_HEADER)
    return api_key.strip() if api_key and api_key.strip() else None


class Authenticator:
    """Resolves presented keys to principals; unknown, revoked or malformed keys are AuthenticationError.

    Successful look-ups are cached for `cache_ttl_s` seconds (0 turns the cache off), so a
    revocation takes effect on other processes within that time; `forget` drops a key at once
    in this process. The cache is keyed by a hash of the whole key, never the key itself.
    """

    def __init__(
        self,
        store: KeyStore,
        *,
        cache_ttl_s: float = 10.0,
        cache_size: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.cache_ttl_s = cache_ttl_s
        self.cache_size = cache_size
        self._clock = clock
        self._cache: OrderedDict[bytes, tuple[Principal, float]] = OrderedDict()

    async def authenticate(self, presented: str | None) -> Principal:
        """The principal of a presented key; raises AuthenticationError for anything else.

        The error message says what was wrong (missing, malformed, unknown or revoked) but never
        contains the key.
        """
        if not presented:
            raise AuthenticationError("missing API key")
        fingerprint = hashlib.sha256(presented.encode("utf-8")).digest()
        cached = self._cache.get(fingerprint)
        if cached is not None:
            principal, expires = cached
            if self._clock() < expires:
                return principal
            del self._cache[fingerprint]
        key = parse_key(presented)
        record = await self.store.get(key.key_id)
        valid = verify_secret(key.secret, record.secret_hash if record else None)  # same cost either way
        if record is None or not valid:
            raise AuthenticationError("unknown API key")
        if record.revoked:
            raise AuthenticationError(f"API key {record.key_id} is revoked")
        principal = record.principal()
        if self.cache_ttl_s > 0:
            self._cache[fingerprint] = (principal, self._clock() + self.cache_ttl_s)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return principal

    async def authenticate_headers(self, headers: Mapping[str, str]) -> Principal:
        """The principal of the key in the request headers (see `presented_key`)."""
        return await self.authenticate(presented_key(headers))

    def forget(self, key_id: str | None = None) -> None:
        """Drop cached look-ups of one key (all keys when None), e.g. right after revoking it here."""
        if key_id is None:
            self._cache.clear()
            return
        for fingerprint, (principal, _) in list(self._cache.items()):
            if principal.key_id == key_id:
                del self._cache[fingerprint]
