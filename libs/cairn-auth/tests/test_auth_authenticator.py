"""The Authenticator: presented keys to principals; wrong, revoked and malformed keys refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cairn_auth import (
    AuthenticationError,
    Authenticator,
    InMemoryKeyStore,
    IssuedKey,
    Principal,
    Role,
    create_key,
    presented_key,
    revoke_key,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def issue(store: InMemoryKeyStore, tenant: str = "acme", role: Role = Role.VIEWER) -> IssuedKey:
    issued, _, _ = await create_key(store, tenant=tenant, role=role, name="test key", actor="ana")
    return issued


async def test_a_valid_key_is_its_principal() -> None:
    store = InMemoryKeyStore()
    issued = await issue(store, role=Role.OPERATOR)
    principal = await Authenticator(store).authenticate(issued.token)
    assert principal == Principal(issued.key_id, "acme", Role.OPERATOR, "test key")


async def test_wrong_unknown_malformed_and_missing_keys_are_refused_without_echo() -> None:
    store = InMemoryKeyStore()
    issued = await issue(store)
    auth = Authenticator(store)
    other = await issue(InMemoryKeyStore())  # a well-formed key this store does not know
    wrong_secret = f"cairn_{issued.key_id}_{other.secret}"
    cases = {
        wrong_secret: "unknown API key",
        other.token: "unknown API key",
        issued.token[:-1]: "malformed API key",
        "hunter2": "malformed API key",
        "": "missing API key",
    }
    for presented, message in cases.items():
        with pytest.raises(AuthenticationError) as info:
            await auth.authenticate(presented)
        assert str(info.value) == message
        assert other.secret not in str(info.value)
    with pytest.raises(AuthenticationError, match="missing"):
        await auth.authenticate(None)


async def test_a_revoked_key_is_refused_once_the_cache_forgets_it() -> None:
    store = InMemoryKeyStore()
    issued = await issue(store)
    clock = Clock()
    auth = Authenticator(store, cache_ttl_s=5, clock=clock)
    await auth.authenticate(issued.token)
    await revoke_key(store, issued.key_id, actor="ana")
    assert (await auth.authenticate(issued.token)).key_id == issued.key_id  # cached for 5 s
    clock.now += 5.1
    with pytest.raises(AuthenticationError, match=f"API key {issued.key_id} is revoked"):
        await auth.authenticate(issued.token)
    uncached = Authenticator(store, cache_ttl_s=0)
    with pytest.raises(AuthenticationError, match="revoked"):
        await uncached.authenticate(issued.token)


async def test_forget_drops_a_key_at_once() -> None:
    store = InMemoryKeyStore()
    issued = await issue(store)
    keep = await issue(store)
    auth = Authenticator(store, cache_ttl_s=60)
    await auth.authenticate(issued.token)
    await auth.authenticate(keep.token)
    await store.revoke(issued.key_id, datetime.now(UTC))
    auth.forget(issued.key_id)
    with pytest.raises(AuthenticationError):
        await auth.authenticate(issued.token)
    await store.revoke(keep.key_id, datetime.now(UTC))
    assert (await auth.authenticate(keep.token)).key_id == keep.key_id  # still cached
    auth.forget()
    with pytest.raises(AuthenticationError):
        await auth.authenticate(keep.token)


async def test_a_failed_attempt_is_never_cached() -> None:
    store = InMemoryKeyStore()
    issued = await issue(store)
    auth = Authenticator(store, cache_ttl_s=60)
    bad = f"cairn_{issued.key_id}_{'A' * 43}"
    for _ in range(2):
        with pytest.raises(AuthenticationError):
            await auth.authenticate(bad)
    assert (await auth.authenticate(issued.token)).tenant == "acme"


def test_keys_are_read_from_bearer_or_x_api_key_headers() -> None:
    assert presented_key({"Authorization": "Bearer cairn_x"}) == "cairn_x"
    assert presented_key({"authorization": "bearer   cairn_x  "}) == "cairn_x"
    assert presented_key({"x-api-key": "cairn_y"}) == "cairn_y"
    assert presented_key({"Authorization": "Bearer cairn_x", "X-API-Key": "cairn_y"}) == "cairn_x"
    assert presented_key({"Authorization": "Basic dXNlcjpwdw==", "X-API-Key": "cairn_y"}) == "cairn_y"
    assert presented_key({"Authorization": "Basic dXNlcjpwdw=="}) is None
    assert presented_key({"Authorization": "Bearer "}) is None
    assert presented_key({}) is None


async def test_authenticate_headers() -> None:
    store = InMemoryKeyStore()
    issued = await issue(store, tenant="beta", role=Role.ADMIN)
    auth = Authenticator(store)
    assert (await auth.authenticate_headers({"X-API-Key": issued.token})).tenant == "beta"
    with pytest.raises(AuthenticationError, match="missing"):
        await auth.authenticate_headers({"Cookie": issued.token})
