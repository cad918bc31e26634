"""The KeyStore behaviour suite: what every KeyStore implementation must do.

Not collected by itself (no `test_` prefix). A backend runs it by subclassing `KeyStoreBehaviour`
in a `Test...` class with a `store` fixture giving a new, empty store; the runners load this
module with `cairn_testing.suites.load_suite`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cairn_auth import DuplicateKeyError, KeyNotFoundError, KeyRecord, KeyStore, Role, hash_secret

T0 = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)


def record(
    key_id: str = "0123456789ab", tenant: str = "acme", role: Role = Role.VIEWER, **fields: object
) -> KeyRecord:
    data: dict[str, object] = {
        "key_id": key_id,
        "tenant": tenant,
        "role": role,
        "name": f"key {key_id}",
        "secret_hash": hash_secret("s3cret-" + key_id),
        "created_at": T0,
        "created_by": "ana",
    }
    data.update(fields)
    return KeyRecord(**data)  # type: ignore[arg-type]


class KeyStoreBehaviour:
    """What every KeyStore promises."""

    async def test_a_key_is_stored_as_given(self, store: KeyStore) -> None:
        added = record(role=Role.OPERATOR)
        await store.add(added)
        got = await store.get(added.key_id)
        assert got == added
        assert got is not None
        assert got.role is Role.OPERATOR
        assert got.created_at == T0
        assert not got.revoked
        assert await store.get("ffffffffffff") is None

    async def test_a_key_id_is_taken_once(self, store: KeyStore) -> None:
        await store.add(record())
        with pytest.raises(DuplicateKeyError):
            await store.add(record(tenant="other", secret_hash=hash_secret("another")))
        got = await store.get("0123456789ab")
        assert got is not None
        assert got.tenant == "acme"

    async def test_listing_is_oldest_first_and_filters_by_exact_tenant(self, store: KeyStore) -> None:
        await store.add(record("00000000000b", "beta", created_at=T0 + timedelta(minutes=2)))
        await store.add(record("00000000000a", "acme", created_at=T0 + timedelta(minutes=1)))
        await store.add(record("00000000000c", "acme", created_at=T0 + timedelta(minutes=3)))
        await store.add(record("00000000000d", "*", Role.ADMIN, created_at=T0))
        assert [r.key_id for r in await store.keys()] == [
            "00000000000d",
            "00000000000a",
            "00000000000b",
            "00000000000c",
        ]
        assert [r.key_id for r in await store.keys("acme")] == ["00000000000a", "00000000000c"]
        assert [r.key_id for r in await store.keys("*")] == ["00000000000d"]
        assert await store.keys("nobody") == []

    async def test_revoked_keys_are_kept_with_the_first_revocation_time(self, store: KeyStore) -> None:
        added = record()
        await store.add(added)
        revoked = await store.revoke("0123456789ab", T0 + timedelta(hours=1))
        assert revoked.revoked_at == T0 + timedelta(hours=1)
        again = await store.revoke("0123456789ab", T0 + timedelta(hours=2))
        assert again.revoked_at == T0 + timedelta(hours=1)
        got = await store.get("0123456789ab")
        assert got is not None
        assert got.revoked
        assert (got.tenant, got.role, got.secret_hash) == (added.tenant, added.role, added.secret_hash)
        assert [r.key_id for r in await store.keys()] == ["0123456789ab"]

    async def test_revoking_an_unknown_key_is_an_error(self, store: KeyStore) -> None:
        with pytest.raises(KeyNotFoundError):
            await store.revoke("ffffffffffff", T0)

    async def test_revoking_one_key_leaves_the_others(self, store: KeyStore) -> None:
        await store.add(record("00000000000a"))
        await store.add(record("00000000000b"))
        await store.revoke("00000000000a", T0)
        other = await store.get("00000000000b")
        assert other is not None
        assert not other.revoked
