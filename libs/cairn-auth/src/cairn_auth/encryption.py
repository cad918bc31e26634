"""Encryption at rest per tenant, with crypto-shredding.

Envelope encryption: each tenant has a random 256-bit data key; the data key is stored only wrapped
(AES-256-GCM) by the master key, which comes from `read_secret("master_key")` (32 bytes, base64).
Every service keeps its own keyring (the `tenant_keys` table in its own PostgreSQL), so a tenant's
key exists once per service that holds the tenant's data, and erasing the tenant destroys each.

A sealed value is text, versioned and self-describing, so any reader knows which key opens it:

    cairn-enc:v1:<key id>:<base64url(nonce (12 bytes) || AES-256-GCM ciphertext and tag)>

The key id is the associated data, so a ciphertext cannot be moved under another key. Erasing a
tenant (`Keyring.erase`) deletes the wrapped data key and marks it erased: every value sealed under
it is unreadable from then on (`TenantErasedError`; readers show `ERASED`). Data the tenant sends
after the erasure is sealed under a new key.

Keys are cached per process for `cache_ttl_s`: another replica of the same service forgets an
erased key within that time at most.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cairn_auth.secrets import SecretNotFoundError, read_secret

__all__ = [
    "ENCRYPTION_SWITCH",
    "ERASED",
    "MASTER_KEY_SECRET",
    "SEALED_FIELD",
    "SEALED_PREFIX",
    "TENANT_ERASE",
    "TENANT_KEYS_DDL",
    "EncryptionError",
    "InMemoryTenantKeyStore",
    "Keyring",
    "MasterKey",
    "PostgresTenantKeyStore",
    "StoredKey",
    "TenantErasedError",
    "TenantKeyStore",
    "UnknownKeyError",
    "is_sealed",
    "new_master_key",
    "sealed_token",
]

MASTER_KEY_SECRET = "master_key"
"""The secret holding the master key (`CAIRN_MASTER_KEY`, `CAIRN_MASTER_KEY_FILE` or Vault)."""
ENCRYPTION_SWITCH = "CAIRN_ENCRYPTION"
"""`off`: services store new content in clear text even where a master key is configured (see
`MasterKey.configured`)."""
SEALED_PREFIX = "cairn-enc:v1:"
"""How every sealed value starts (format version 1)."""
ERASED = "[erased]"
"""What readers show instead of content sealed under an erased key."""
TENANT_ERASE = "tenant.erase"
"""The admin action (`cairn.admin_action.recorded.v1`, target: the tenant) that erases a tenant:
every service holding the tenant's data destroys its key for the tenant."""

_NONCE_BYTES = 12
_KEY_BYTES = 32
_WRAP_AAD = b"cairn-tenant-key:"


class EncryptionError(Exception):
    """A sealed value cannot be opened: malformed, tampered with, or its key is unknown."""


class UnknownKeyError(EncryptionError):
    """The value names a key this keyring has never held."""


class TenantErasedError(EncryptionError):
    """The value was sealed under a key destroyed by erasing its tenant: the content is gone."""

    def __init__(self, tenant: str, key_id: str) -> None:
        super().__init__(f"tenant {tenant!r} was erased: key {key_id} is destroyed")
        self.tenant = tenant
        self.key_id = key_id


def new_master_key() -> str:
    """A fresh master key as `read_secret` expects it (32 random bytes, base64)."""
    return base64.b64encode(os.urandom(_KEY_BYTES)).decode()


class MasterKey:
    """The key-encryption key: wraps and unwraps tenants' data keys (AES-256-GCM)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != _KEY_BYTES:
            raise ValueError(f"the master key must be {_KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)

    @classmethod
    def from_text(cls, text: str) -> MasterKey:
        """A master key from its base64 text. Raises ValueError (never showing the value)."""
        try:
            raw = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("the master key is not valid base64") from None
        return cls(raw)

    @classmethod
    def from_secrets(cls, environ: Mapping[str, str] | None = None) -> MasterKey:
        """The master key from the secrets source. Raises SecretNotFoundError when none is configured."""
        return cls.from_text(read_secret(MASTER_KEY_SECRET, environ=environ))

    @classmethod
    def configured(cls, environ: Mapping[str, str] | None = None) -> MasterKey | None:
        """The master key from the secrets source; else, for a process run beside the embedded local
        stack (no `environ` given, the local stack package installed: never in a production image),
        the local stack's development key; else None. `CAIRN_ENCRYPTION=off` turns encryption off (None): for
        measuring its cost, or where the disks are encrypted and erasure is not needed."""
        if (os.environ if environ is None else environ).get(ENCRYPTION_SWITCH, "").lower() == "off":
            return None
        try:
            return cls.from_secrets(environ)
        except SecretNotFoundError:
            if environ is not None:
                return None
        from cairn_bus.settings import local_stack_env

        local = local_stack_env().get("CAIRN_MASTER_KEY")
        return cls.from_text(local) if local else None

    def wrap(self, key_id: str, data_key: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data_key, _WRAP_AAD + key_id.encode())

    def unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        try:
            return self._aead.decrypt(
                wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:], _WRAP_AAD + key_id.encode()
            )
        except InvalidTag:
            raise EncryptionError(
                f"key {key_id} cannot be unwrapped: wrong master key or tampered row"
            ) from None


@dataclass(frozen=True)
class StoredKey:
    """A row of the keyring: a tenant's data key, wrapped; `wrapped` is None once erased."""

    key_id: str
    tenant: str
    wrapped: bytes | None
    created_at: datetime
    erased_at: datetime | None = None


class TenantKeyStore(Protocol):
    """Where a service keeps its tenants' wrapped data keys.

    `conn`, where a method takes it, is a connection of the caller's to the database the store is in,
    inside the caller's open transaction: the store reads and writes on it instead of taking a
    connection of its own (so a caller holding the pool's last connection does not wait for itself).
    A store outside the caller's database ignores it.
    """

    async def active(self, tenant: str, *, conn: Any = None) -> StoredKey | None:
        """The tenant's key that is not erased, if any."""
        ...

    async def by_ids(self, key_ids: Sequence[str], *, conn: Any = None) -> list[StoredKey]:
        """The keys with these ids (erased ones included); unknown ids are left out."""
        ...

    async def add(self, key: StoredKey, *, conn: Any = None) -> StoredKey:
        """Store a new key; returns the tenant's active key (this one, or the one another writer added first)."""
        ...

    async def erase(self, tenant: str) -> int:
        """Destroy every key of the tenant that is not erased yet (idempotent); how many were destroyed."""
        ...


class InMemoryTenantKeyStore:
    """TenantKeyStore in a dict (unit tests)."""

    def __init__(self) -> None:
        self.keys: dict[str, StoredKey] = {}

    async def active(self, tenant: str, *, conn: Any = None) -> StoredKey | None:
        return next((k for k in self.keys.values() if k.tenant == tenant and k.erased_at is None), None)

    async def by_ids(self, key_ids: Sequence[str], *, conn: Any = None) -> list[StoredKey]:
        return [self.keys[i] for i in key_ids if i in self.keys]

    async def add(self, key: StoredKey, *, conn: Any = None) -> StoredKey:
        existing = await self.active(key.tenant)
        if existing is not None:
            return existing
        self.keys[key.key_id] = key
        return key

    async def erase(self, tenant: str) -> int:
        now = datetime.now(UTC)
        erased = 0
        for key in list(self.keys.values()):
            if key.tenant == tenant and key.erased_at is None:
                self.keys[key.key_id] = replace(key, wrapped=None, erased_at=now)
                erased += 1
        return erased


TENANT_KEYS_DDL = """
CREATE TABLE IF NOT EXISTS tenant_keys (
    key_id      text        PRIMARY KEY,
    tenant      text        NOT NULL,
    wrapped_key bytea,
    created_at  timestamptz NOT NULL,
    erased_at   timestamptz,
    CHECK ((wrapped_key IS NULL) = (erased_at IS NOT NULL))
);
CREATE UNIQUE INDEX IF NOT EXISTS tenant_keys_one_active ON tenant_keys (tenant) WHERE erased_at IS NULL;
"""
"""The keyring table, created by `PostgresTenantKeyStore.migrate` in the service's own database."""

_KEY_COLUMNS = "key_id, tenant, wrapped_key, created_at, erased_at"


def _stored(row: Any) -> StoredKey:
    wrapped = row["wrapped_key"]
    return StoredKey(
        key_id=row["key_id"],
        tenant=row["tenant"],
        wrapped=bytes(wrapped) if wrapped is not None else None,
        created_at=row["created_at"],
        erased_at=row["erased_at"],
    )


class PostgresTenantKeyStore:
    """TenantKeyStore in the `tenant_keys` table, on an asyncpg pool. A database outage raises
    `cairn_bus.TransientError` (the consumer retries)."""

    def __init__(self, pool: Any) -> None:
        from cairn_bus.postgres import guarded

        self.pool = pool
        for name in ("active", "by_ids", "add", "erase"):
            setattr(self, name, guarded(getattr(self, name)))

    def _db(self, conn: Any) -> Any:
        return self.pool if conn is None else conn

    async def migrate(self) -> None:
        """Create the table if missing."""
        from cairn_bus.postgres import lock_key, migrate

        await migrate(self.pool, lock_key("cairn.tenant_keys"), TENANT_KEYS_DDL)

    async def active(self, tenant: str, *, conn: Any = None) -> StoredKey | None:
        row = await self._db(conn).fetchrow(
            f"SELECT {_KEY_COLUMNS} FROM tenant_keys WHERE tenant = $1 AND erased_at IS NULL", tenant
        )
        return _stored(row) if row else None

    async def by_ids(self, key_ids: Sequence[str], *, conn: Any = None) -> list[StoredKey]:
        rows = await self._db(conn).fetch(
            f"SELECT {_KEY_COLUMNS} FROM tenant_keys WHERE key_id = ANY($1::text[])", list(key_ids)
        )
        return [_stored(r) for r in rows]

    async def add(self, key: StoredKey, *, conn: Any = None) -> StoredKey:
        await self._db(conn).execute(
            "INSERT INTO tenant_keys (key_id, tenant, wrapped_key, created_at) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (tenant) WHERE erased_at IS NULL DO NOTHING",
            key.key_id,
            key.tenant,
            key.wrapped,
            key.created_at,
        )
        active = await self.active(key.tenant, conn=conn)
        if active is None:  # erased between the insert and the read: the caller retries
            raise EncryptionError(f"tenant {key.tenant!r} was erased while its key was being created")
        return active

    async def erase(self, tenant: str) -> int:
        from cairn_bus.postgres import rows_affected

        done = await self.pool.execute(
            "UPDATE tenant_keys SET wrapped_key = NULL, erased_at = now() WHERE tenant = $1 AND erased_at IS NULL",
            tenant,
        )
        return rows_affected(done)


@dataclass(frozen=True)
class _Key:
    tenant: str
    aead: AESGCM | None  # None: erased
    loaded_at: float


def is_sealed(value: object) -> bool:
    """Whether `value` is text sealed by a Keyring."""
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)


SEALED_FIELD = "sealed"
"""The only key of a JSON document stored sealed: `{"sealed": "cairn-enc:v1:..."}`."""


def sealed_token(document: object) -> str | None:
    """The sealed value of a JSON document stored as `{"sealed": ...}` (see `Keyring.seal_json`),
    or None when the document is stored as it is."""
    if isinstance(document, Mapping) and len(document) == 1:
        token = document.get(SEALED_FIELD)
        if isinstance(token, str) and is_sealed(token):
            return token
    return None


def _parse(token: str) -> tuple[str, bytes]:
    if not is_sealed(token):
        raise EncryptionError("not a sealed value (no cairn-enc:v1: prefix)")
    key_id, sep, body = token[len(SEALED_PREFIX) :].partition(":")
    try:
        if not sep or not key_id:
            raise ValueError
        blob = base64.urlsafe_b64decode(body)
    except (binascii.Error, ValueError):
        raise EncryptionError("malformed sealed value") from None
    if len(blob) < _NONCE_BYTES + 16:
        raise EncryptionError("malformed sealed value (too short)")
    return key_id, blob


class Keyring:
    """Seals and opens tenants' data with their data keys; erases tenants (crypto-shredding)."""

    def __init__(
        self,
        master: MasterKey,
        store: TenantKeyStore,
        *,
        cache_ttl_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.master = master
        self.store = store
        self.cache_ttl_s = cache_ttl_s
        self._clock = clock
        self._keys: dict[str, _Key] = {}  # by key id
        self._active: dict[str, str] = {}  # tenant -> key id, only keys known to be committed
        self._uncommitted: set[str] = set()  # created in a caller's transaction, not seen committed yet

    def _fresh(self, key_id: str) -> _Key | None:
        key = self._keys.get(key_id)
        if key is None or self._clock() - key.loaded_at > self.cache_ttl_s:
            return None
        return key

    def _remember(self, stored: StoredKey) -> _Key:
        aead = None
        if stored.wrapped is not None:
            aead = AESGCM(self.master.unwrap(stored.key_id, stored.wrapped))
        key = _Key(stored.tenant, aead, self._clock())
        self._keys[stored.key_id] = key
        return key

    async def _active_key(self, tenant: str, conn: Any) -> tuple[str, AESGCM]:
        key_id = self._active.get(tenant)
        if key_id is not None:
            key = self._fresh(key_id)
            if key is not None and key.aead is not None:
                return key_id, key.aead
        stored = await self.store.active(tenant, conn=conn)
        if stored is None:
            new_id = uuid.uuid4().hex
            data_key = AESGCM.generate_key(bit_length=256)
            stored = await self.store.add(
                StoredKey(new_id, tenant, self.master.wrap(new_id, data_key), datetime.now(UTC)), conn=conn
            )
            if conn is not None and stored.key_id == new_id:
                self._uncommitted.add(new_id)
        elif conn is None:
            self._uncommitted.discard(stored.key_id)
        key = self._remember(stored)
        assert key.aead is not None  # an active key is never erased
        # a key created in the caller's transaction is not cached as active: the transaction may roll back
        if stored.key_id not in self._uncommitted:
            self._active[tenant] = stored.key_id
        return stored.key_id, key.aead

    async def seal(self, tenant: str, plaintext: bytes, *, conn: Any = None) -> str:
        """`plaintext` sealed under the tenant's current key (created on first use). `conn`: the
        caller's connection, inside its transaction, on which a key is looked up and created (see
        `TenantKeyStore`); a key created there is the caller's to commit or roll back."""
        return (await self.seal_many([(tenant, plaintext)], conn=conn))[0]

    async def seal_many(self, items: Iterable[tuple[str, bytes]], *, conn: Any = None) -> list[str]:
        """Each (tenant, plaintext) sealed under its tenant's key; one key look-up per tenant;
        `conn` as in `seal`."""
        items = list(items)
        keys = {tenant: await self._active_key(tenant, conn) for tenant in dict.fromkeys(t for t, _ in items)}
        out: list[str] = []
        for tenant, plaintext in items:
            key_id, aead = keys[tenant]
            nonce = os.urandom(_NONCE_BYTES)
            blob = nonce + aead.encrypt(nonce, plaintext, key_id.encode())
            out.append(f"{SEALED_PREFIX}{key_id}:{base64.urlsafe_b64encode(blob).decode()}")
        return out

    async def _load(self, key_ids: Iterable[str], conn: Any = None) -> None:
        missing = [k for k in dict.fromkeys(key_ids) if self._fresh(k) is None]
        if missing:
            for stored in await self.store.by_ids(missing, conn=conn):
                self._remember(stored)

    def _open(self, token: str) -> bytes:
        key_id, blob = _parse(token)
        key = self._keys.get(key_id)
        if key is None:
            raise UnknownKeyError(f"unknown key {key_id}")
        if key.aead is None:
            raise TenantErasedError(key.tenant, key_id)
        try:
            return key.aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], key_id.encode())
        except InvalidTag:
            raise EncryptionError(f"sealed value under key {key_id} fails authentication") from None

    async def open(self, token: str, *, conn: Any = None) -> bytes:
        """The plaintext of a sealed value. Raises TenantErasedError when its tenant was erased,
        UnknownKeyError or EncryptionError when it cannot be opened. `conn`: the caller's
        connection on which keys are looked up (see `TenantKeyStore`)."""
        await self._load([_parse(token)[0]], conn)
        return self._open(token)

    async def open_many(self, tokens: Sequence[str], *, conn: Any = None) -> list[bytes | None]:
        """The plaintexts of sealed values, None for those whose tenant was erased; one key
        look-up for every key not cached. Other failures raise as in `open`; `conn` as there."""
        await self._load((_parse(t)[0] for t in tokens), conn)
        out: list[bytes | None] = []
        for token in tokens:
            try:
                out.append(self._open(token))
            except TenantErasedError:
                out.append(None)
        return out

    async def seal_json(self, tenant: str, document: Any, *, conn: Any = None) -> dict[str, str]:
        """A JSON document sealed as `{"sealed": "cairn-enc:v1:..."}` (still a JSON document);
        `conn` as in `seal`."""
        return (await self.seal_json_many([(tenant, document)], conn=conn))[0]

    async def seal_json_many(
        self, items: Iterable[tuple[str, Any]], *, conn: Any = None
    ) -> list[dict[str, str]]:
        """Each (tenant, JSON document) sealed as in `seal_json`; one key look-up per tenant."""
        tokens = await self.seal_many(
            (
                (tenant, json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode())
                for tenant, document in items
            ),
            conn=conn,
        )
        return [{SEALED_FIELD: token} for token in tokens]

    async def open_json_many(self, documents: Sequence[Any]) -> list[Any]:
        """The documents with every sealed one opened; None for one whose tenant was erased;
        documents stored as they are come back unchanged."""
        todo = [(i, t) for i, d in enumerate(documents) if (t := sealed_token(d)) is not None]
        out = list(documents)
        if todo:
            for (i, _), text in zip(todo, await self.open_many([t for _, t in todo]), strict=True):
                out[i] = None if text is None else json.loads(text)
        return out

    async def erase(self, tenant: str) -> int:
        """Destroy the tenant's keys (idempotent): what they sealed can never be opened again.
        Returns how many keys were destroyed now (0 when already erased)."""
        erased = await self.store.erase(tenant)
        self._active.pop(tenant, None)
        for key_id, key in list(self._keys.items()):
            if key.tenant == tenant:
                del self._keys[key_id]
        return erased
