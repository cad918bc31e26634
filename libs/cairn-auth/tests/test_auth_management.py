"""Creating and revoking keys, the bootstrap key, and the audit events they yield."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from cairn_auth import (
    AuthenticationError,
    Authenticator,
    InMemoryKeyStore,
    InsufficientRoleError,
    KeyNotFoundError,
    Principal,
    Role,
    TenantAccessError,
    admin_action,
    create_key,
    install_bootstrap_key,
    new_key,
    revoke_key,
)
from cairn_auth.secrets import redact
from cairn_events import AdminActionRecordedV1, decode, encode

NOW = datetime(2025, 3, 4, 8, 2, 11, tzinfo=UTC)


async def test_creating_a_key_yields_its_audit_event_without_the_secret() -> None:
    store = InMemoryKeyStore()
    issued, record, event = await create_key(
        store, tenant="acme", role="operator", name="deploy", actor="ana", now=NOW
    )
    assert (record.key_id, record.tenant, record.role, record.created_by) == (
        issued.key_id,
        "acme",
        Role.OPERATOR,
        "ana",
    )
    assert event == AdminActionRecordedV1(
        action_id=event.action_id,
        actor="ana",
        actor_role="admin",
        tenant="acme",
        action="apikey.created",
        target=f"apikey:{issued.key_id}",
        details={"role": "operator", "name": "deploy"},
        recorded_at=NOW,
    )
    wire = encode(event)
    assert issued.secret.encode() not in wire
    assert decode(event.event_type, wire) == event
    assert event.partition_key() == "acme"
    assert redact(f"leaked {issued.token}") == f"leaked cairn_{issued.key_id}_[REDACTED]"


async def test_key_creation_rules() -> None:
    store = InMemoryKeyStore()
    with pytest.raises(ValueError, match="platform-wide keys"):
        await create_key(store, tenant="*", role=Role.OPERATOR, name="x", actor="ana")
    with pytest.raises(ValueError, match="invalid tenant"):
        await create_key(store, tenant="acme corp", role=Role.VIEWER, name="x", actor="ana")
    with pytest.raises(ValueError, match="key name"):
        await create_key(store, tenant="acme", role=Role.VIEWER, name="", actor="ana")
    with pytest.raises(ValueError):
        await create_key(store, tenant="acme", role="root", name="x", actor="ana")
    acme_admin = Principal("0123456789ab", "acme", Role.ADMIN, "acme admin")
    acme_operator = Principal("0123456789ac", "acme", Role.OPERATOR, "acme op")
    with pytest.raises(TenantAccessError):
        await create_key(store, tenant="beta", role=Role.VIEWER, name="x", actor=acme_admin)
    with pytest.raises(InsufficientRoleError):
        await create_key(store, tenant="acme", role=Role.VIEWER, name="x", actor=acme_operator)
    assert await store.keys() == []
    _, record, event = await create_key(store, tenant="acme", role=Role.VIEWER, name="x", actor=acme_admin)
    assert (record.created_by, event.actor, event.actor_role) == ("0123456789ab", "0123456789ab", "admin")


async def test_revoking_is_idempotent_and_recorded() -> None:
    store = InMemoryKeyStore()
    issued, _, _ = await create_key(store, tenant="acme", role=Role.VIEWER, name="x", actor="ana")
    record, event = await revoke_key(store, issued.key_id, actor="ben", now=NOW)
    assert record.revoked_at == NOW
    assert (event.action, event.target, event.actor, event.tenant) == (
        "apikey.revoked",
        f"apikey:{issued.key_id}",
        "ben",
        "acme",
    )
    again, event2 = await revoke_key(store, issued.key_id, actor="ben")
    assert again.revoked_at == NOW
    assert event2.recorded_at == NOW  # the same action, so the same event id when published
    with pytest.raises(AuthenticationError, match="revoked"):
        await Authenticator(store).authenticate(issued.token)


async def test_another_tenants_key_looks_unknown_to_a_tenant_admin() -> None:
    store = InMemoryKeyStore()
    beta, _, _ = await create_key(store, tenant="beta", role=Role.VIEWER, name="x", actor="ana")
    acme_admin = Principal("0123456789ab", "acme", Role.ADMIN, "acme admin")
    with pytest.raises(KeyNotFoundError) as other:
        await revoke_key(store, beta.key_id, actor=acme_admin)
    with pytest.raises(KeyNotFoundError) as missing:
        await revoke_key(store, "ffffffffffff", actor=acme_admin)
    assert str(other.value).replace(beta.key_id, "ID") == str(missing.value).replace("ffffffffffff", "ID")
    record = await store.get(beta.key_id)
    assert record is not None
    assert not record.revoked
    root = Principal("0123456789ac", "*", Role.ADMIN, "root")
    record, event = await revoke_key(store, beta.key_id, actor=root)
    assert record.revoked
    assert (event.actor, event.tenant) == ("0123456789ac", "beta")


async def test_the_bootstrap_key_file_installs_a_platform_admin_once(tmp_path: Path) -> None:
    store = InMemoryKeyStore()
    key = new_key()
    path = tmp_path / "bootstrap-key"
    path.write_text(f"  {key.token}\n")
    record, event = await install_bootstrap_key(store, path, now=NOW)
    assert (record.key_id, record.tenant, record.role, record.name) == (
        key.key_id,
        "*",
        Role.ADMIN,
        "bootstrap",
    )
    assert event is not None
    assert (event.action, event.tenant, event.target) == ("apikey.created", "*", f"apikey:{key.key_id}")
    again, none = await install_bootstrap_key(store, path)
    assert (again, none) == (record, None)
    principal = await Authenticator(store).authenticate(key.token)
    assert principal.platform_wide
    assert redact(key.secret) == "[REDACTED]"  # registered as a secret

    path.write_text(f"cairn_{key.key_id}_{new_key().secret}")
    with pytest.raises(AuthenticationError, match="does not match"):
        await install_bootstrap_key(store, path)
    path.write_text("not a key")
    with pytest.raises(AuthenticationError, match="malformed"):
        await install_bootstrap_key(store, path)


def test_admin_actions_of_a_principal_record_its_key_and_role() -> None:
    op = Principal("0123456789ab", "acme", Role.OPERATOR, "deploy")
    event = admin_action(
        op,
        "prompt.label.moved",
        "prompt:support-answer@production",
        tenant="acme",
        details={"from_version": 3, "to_version": 4},
        at=NOW,
    )
    assert (event.actor, event.actor_role, event.action, event.details["to_version"]) == (
        "0123456789ab",
        "operator",
        "prompt.label.moved",
        4,
    )
    with pytest.raises(ValueError, match="action"):
        admin_action("ana", "Label Moved", "x", tenant="acme")
    assert admin_action("ana", "model.promoted", "model:m:3", tenant="*").actor_role == "admin"


async def test_the_bootstrap_key_is_read_as_a_secret_without_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    from cairn_auth.serving import install_bootstrap
    from cairn_auth.settings import AuthSettings
    from cairn_bus import InMemoryPublisher

    key = new_key()
    monkeypatch.delenv("CAIRN_AUTH_BOOTSTRAP_KEY_FILE", raising=False)
    monkeypatch.setenv("CAIRN_AUTH_BOOTSTRAP_KEY", key.token)  # read_secret("auth_bootstrap_key")
    store, publisher = InMemoryKeyStore(), InMemoryPublisher("/cairn/test")
    await install_bootstrap(store, AuthSettings(bootstrap_key_file=None), publisher)
    principal = await Authenticator(store).authenticate(key.token)
    assert principal.platform_wide
    [created] = publisher.events()
    assert created.target == f"apikey:{key.key_id}"  # type: ignore[attr-defined]
    assert redact(key.secret) == "[REDACTED]"
    monkeypatch.delenv("CAIRN_AUTH_BOOTSTRAP_KEY")
    nothing = InMemoryPublisher("/cairn/test")
    await install_bootstrap(InMemoryKeyStore(), AuthSettings(bootstrap_key_file=None), nothing)
    assert nothing.events() == []  # no source: no bootstrap key
