"""Roles, principals, the key format and hashing: pure domain rules."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cairn_auth import (
    AuthenticationError,
    InsufficientRoleError,
    Principal,
    Role,
    TenantAccessError,
    hash_secret,
    new_key,
    parse_key,
    verify_secret,
)


def test_roles_are_ordered_viewer_operator_admin() -> None:
    assert Role.VIEWER < Role.OPERATOR < Role.ADMIN
    assert Role.ADMIN > Role.OPERATOR >= Role.OPERATOR > Role.VIEWER
    assert sorted([Role.ADMIN, Role.VIEWER, Role.OPERATOR]) == [Role.VIEWER, Role.OPERATOR, Role.ADMIN]
    assert max(Role) is Role.ADMIN
    assert Role("operator") is Role.OPERATOR
    assert {Role.ADMIN: 1}[Role("admin")] == 1  # still hashable


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.VIEWER, {Role.VIEWER}),
        (Role.OPERATOR, {Role.VIEWER, Role.OPERATOR}),
        (Role.ADMIN, {Role.VIEWER, Role.OPERATOR, Role.ADMIN}),
    ],
)
def test_a_role_includes_the_roles_below_it(role: Role, allowed: set[Role]) -> None:
    principal = Principal("0123456789ab", "acme", role, "k")
    assert {r for r in Role if principal.allows(r)} == allowed
    for r in set(Role) - allowed:
        with pytest.raises(InsufficientRoleError, match=f"needs the {r.value} role"):
            principal.check_role(r)
    assert principal.allows(role.value)


def test_a_tenant_principal_sees_its_tenant_only() -> None:
    viewer = Principal("0123456789ab", "acme", Role.VIEWER, "k")
    assert viewer.can_access("acme")
    assert not viewer.can_access("beta")
    assert not viewer.can_access("*")
    viewer.check_tenant("acme")
    with pytest.raises(TenantAccessError, match="not found"):
        viewer.check_tenant("beta")
    assert viewer.scope() == "acme"
    assert viewer.scope("acme") == "acme"
    with pytest.raises(TenantAccessError):
        viewer.scope("beta")


def test_platform_wide_principals_are_admins_and_see_every_tenant() -> None:
    admin = Principal("0123456789ab", "*", Role.ADMIN, "root")
    assert admin.platform_wide
    assert admin.can_access("acme")
    assert admin.can_access("beta")
    assert admin.scope() is None
    assert admin.scope("beta") == "beta"
    with pytest.raises(ValueError, match="only admin"):
        Principal("0123456789ab", "*", Role.OPERATOR, "x")
    with pytest.raises(ValueError, match="invalid tenant"):
        Principal("0123456789ab", "acme corp", Role.VIEWER, "x")
    assert not Principal("0123456789ab", "acme", Role.ADMIN, "a").can_access("beta")


def test_keys_have_the_documented_format_and_are_unique() -> None:
    keys = [new_key() for _ in range(50)]
    for key in keys:
        assert re.fullmatch(r"cairn_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", key.token)
        assert parse_key(key.token) == key
        assert key.secret not in repr(key)
    assert len({k.key_id for k in keys}) == 50
    assert len({k.secret for k in keys}) == 50


@pytest.mark.parametrize(
    "presented",
    [
        "",
        "cairn_",
        "cairn_0123456789ab",
        "cairn_0123456789ab_",
        "cairn_0123456789AB_" + "a" * 43,  # upper-case id
        "cairn_0123456789a_" + "a" * 43,  # short id
        "cairn_0123456789ab_" + "a" * 42,  # short secret
        "cairn_0123456789ab_" + "a" * 44,  # long secret
        "cairn_0123456789ab_" + "a" * 42 + "!",
        "xairn_0123456789ab_" + "a" * 43,
        "Bearer cairn_0123456789ab_" + "a" * 43,
    ],
)
def test_malformed_keys_are_refused_without_echoing_them(presented: str) -> None:
    with pytest.raises(AuthenticationError) as info:
        parse_key(presented)
    assert str(info.value) == "malformed API key"


def test_only_the_right_secret_verifies() -> None:
    key = new_key()
    stored = hash_secret(key.secret)
    scheme, salt, digest = stored.split("$")
    assert (scheme, len(salt), len(digest)) == ("sha256", 32, 64)
    assert key.secret not in stored
    assert verify_secret(key.secret, stored)
    assert not verify_secret(new_key().secret, stored)
    assert not verify_secret(key.secret[:-1], stored)
    assert not verify_secret(key.secret, None)  # unknown key id
    assert not verify_secret(key.secret, "sha256$zz$" + digest)  # corrupt salt
    assert not verify_secret(key.secret, f"md5${salt}${digest}")  # unknown scheme
    assert not verify_secret(key.secret, f"sha256${salt}${'0' * 64}")


def test_every_hash_has_its_own_salt() -> None:
    assert hash_secret("same secret") != hash_secret("same secret")
    assert hash_secret("same secret", b"\x01" * 16) == hash_secret("same secret", b"\x01" * 16)


@given(st.text(min_size=1, max_size=64), st.text(min_size=1, max_size=64))
def test_verification_matches_exactly_the_hashed_secret(secret: str, other: str) -> None:
    stored = hash_secret(secret, b"\x07" * 16)
    assert verify_secret(secret, stored)
    assert verify_secret(other, stored) == (other == secret)
