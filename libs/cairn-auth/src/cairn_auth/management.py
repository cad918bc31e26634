"""Managing API keys (create, revoke, install the bootstrap key) and describing administrative actions.

Every function that changes keys returns the `AdminActionRecordedV1` to publish, so the caller
(the `cairn keys` CLI, a service's admin API) puts the action in the audit trail.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

from cairn_auth.domain.errors import AuthenticationError, DuplicateKeyError, KeyNotFoundError
from cairn_auth.domain.keys import IssuedKey, KeyRecord, hash_secret, new_key, parse_key, verify_secret
from cairn_auth.domain.principals import PLATFORM_TENANT, Principal, Role, check_tenant_id
from cairn_auth.ports import KeyStore
from cairn_auth.secrets import register_secret
from cairn_events import AdminActionRecordedV1, JsonScalar

__all__ = [
    "BOOTSTRAP_KEY_NAME",
    "action_event_id",
    "admin_action",
    "create_key",
    "install_bootstrap_key",
    "install_bootstrap_token",
    "revoke_key",
]

BOOTSTRAP_KEY_NAME = "bootstrap"
"""The name of the platform-wide admin key installed from `CAIRN_AUTH_BOOTSTRAP_KEY_FILE`."""

_ACTIONS = uuid.UUID("6f1d7c52-7a0e-4b53-9a53-3c0f0e4f8a11")


def action_event_id(action: str, target: str, at: datetime) -> str:
    """A deterministic event id for an action, so re-publishing it after a failure is recognised as one."""
    return str(uuid.uuid5(_ACTIONS, f"{action}|{target}|{at.isoformat()}"))


def admin_action(
    actor: Principal | str,
    action: str,
    target: str,
    *,
    tenant: str,
    details: dict[str, JsonScalar] | None = None,
    actor_role: Role | str = Role.ADMIN,
    at: datetime | None = None,
) -> AdminActionRecordedV1:
    """The audit event of an administrative action (label move, promotion, policy change, key change).

    `actor` is the principal that acted (its key id and role are recorded) or a user name, for
    which `actor_role` applies. `details` must never hold a secret.
    """
    at = at or datetime.now(UTC)
    if isinstance(actor, Principal):
        actor_id, role = actor.key_id, actor.role
    else:
        actor_id, role = actor, Role(actor_role)
    return AdminActionRecordedV1(
        action_id=f"act-{uuid.uuid4().hex}",
        actor=actor_id,
        actor_role=role.value,
        tenant=tenant,
        action=action,
        target=target,
        details=details or {},
        recorded_at=at,
    )


def _check_can_grant(actor: Principal | str, tenant: str) -> None:
    if isinstance(actor, Principal):
        actor.check_role(Role.ADMIN)
        actor.check_tenant(tenant)


async def create_key(
    store: KeyStore,
    *,
    tenant: str,
    role: Role | str,
    name: str,
    actor: Principal | str,
    now: datetime | None = None,
) -> tuple[IssuedKey, KeyRecord, AdminActionRecordedV1]:
    """Create and store a key; the issued key (shown once, never stored), its record and the audit event.

    A principal actor must be an admin of `tenant` (or platform-wide). Tenant `*` takes the
    admin role only. Raises ValueError for an invalid tenant, role or name.
    """
    role = Role(role)
    check_tenant_id(tenant)
    if tenant == PLATFORM_TENANT and role is not Role.ADMIN:
        raise ValueError("platform-wide keys (tenant '*') must have the admin role")
    if not 1 <= len(name) <= 128 or not name.isprintable():
        raise ValueError("a key name is 1-128 printable characters")
    _check_can_grant(actor, tenant)
    now = now or datetime.now(UTC)
    created_by = actor.key_id if isinstance(actor, Principal) else actor
    while True:
        issued = new_key()
        record = KeyRecord(
            key_id=issued.key_id,
            tenant=tenant,
            role=role,
            name=name,
            secret_hash=hash_secret(issued.secret),
            created_at=now,
            created_by=created_by,
        )
        try:
            await store.add(record)
        except DuplicateKeyError:  # a 48-bit id collided: draw another
            continue
        break
    register_secret(issued.secret)
    event = admin_action(
        actor,
        "apikey.created",
        f"apikey:{record.key_id}",
        tenant=tenant,
        details={"role": role.value, "name": name},
        at=now,
    )
    return issued, record, event


async def revoke_key(
    store: KeyStore, key_id: str, *, actor: Principal | str, now: datetime | None = None
) -> tuple[KeyRecord, AdminActionRecordedV1]:
    """Revoke a key (idempotent: the first revocation time is kept) and describe it for the audit trail.

    A principal actor must be an admin with access to the key's tenant; to anyone else an
    unknown key and another tenant's key look the same (KeyNotFoundError).
    """
    existing = await store.get(key_id)
    if existing is None or (isinstance(actor, Principal) and not actor.can_access(existing.tenant)):
        raise KeyNotFoundError(f"no API key {key_id}")
    _check_can_grant(actor, existing.tenant)
    now = now or datetime.now(UTC)
    record = await store.revoke(key_id, now)
    event = admin_action(
        actor,
        "apikey.revoked",
        f"apikey:{record.key_id}",
        tenant=record.tenant,
        details={"role": record.role.value, "name": record.name},
        at=record.revoked_at or now,
    )
    return record, event


async def install_bootstrap_key(
    store: KeyStore, path: Path, *, now: datetime | None = None
) -> tuple[KeyRecord, AdminActionRecordedV1 | None]:
    """Install the key in the file at `path` as a platform-wide admin key, unless its id is stored
    (see `install_bootstrap_token`)."""
    token = (await asyncio.to_thread(path.read_text, encoding="utf-8")).strip()
    return await install_bootstrap_token(store, token, now=now)


async def install_bootstrap_token(
    store: KeyStore, token: str, *, now: datetime | None = None
) -> tuple[KeyRecord, AdminActionRecordedV1 | None]:
    """Install the API key `token` as a platform-wide admin key, unless its id is stored.

    Returns the stored record and, when it was installed now, the audit event. Raises
    AuthenticationError when `token` is not a well-formed key, or holds the id of a stored key with a
    different secret (the message never contains the key).
    """
    issued = parse_key(token.strip())
    register_secret(issued.secret)
    existing = await store.get(issued.key_id)
    if existing is not None:
        if not verify_secret(issued.secret, existing.secret_hash):
            raise AuthenticationError(f"bootstrap key {issued.key_id} does not match the stored key")
        return existing, None
    now = now or datetime.now(UTC)
    record = KeyRecord(
        key_id=issued.key_id,
        tenant=PLATFORM_TENANT,
        role=Role.ADMIN,
        name=BOOTSTRAP_KEY_NAME,
        secret_hash=hash_secret(issued.secret),
        created_at=now,
        created_by=BOOTSTRAP_KEY_NAME,
    )
    try:
        await store.add(record)
    except DuplicateKeyError:  # another replica installed it at the same moment
        stored = await store.get(issued.key_id)
        if stored is None:
            raise
        return stored, None
    event = admin_action(
        BOOTSTRAP_KEY_NAME,
        "apikey.created",
        f"apikey:{record.key_id}",
        tenant=PLATFORM_TENANT,
        details={"role": Role.ADMIN.value, "name": BOOTSTRAP_KEY_NAME},
        at=now,
    )
    return record, event
