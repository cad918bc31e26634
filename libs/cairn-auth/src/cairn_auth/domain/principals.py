"""Roles and principals: who a caller is, which tenant it belongs to and what it may do."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from cairn_auth.domain.errors import InsufficientRoleError, TenantAccessError

__all__ = ["PLATFORM_TENANT", "TENANT_PATTERN", "Principal", "Role", "check_tenant_id"]

PLATFORM_TENANT = "*"
"""The tenant of platform-wide principals: they may act on every tenant (admin keys only)."""

TENANT_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
"""A tenant id: 1-128 characters out of letters, digits and `._:-` (the event id alphabet)."""

_TENANT_RE = re.compile(TENANT_PATTERN)
_RANK = {"viewer": 0, "operator": 1, "admin": 2}


class Role(StrEnum):
    """What a principal may do. Ordered: `viewer` < `operator` < `admin`; each role includes the ones below.

    - viewer: read (prompts, documents, trails, reviews) of its tenant;
    - operator: also change them (push prompts, ingest documents, decide reviews);
    - admin: also administer (move production labels, promote models, change policies, manage keys).
    """

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """0 for viewer, 1 for operator, 2 for admin."""
        return _RANK[self.value]

    # str's own comparisons would order the names alphabetically (admin < operator < viewer).
    def __lt__(self, other: object) -> bool:
        return self.rank < other.rank if isinstance(other, Role) else NotImplemented

    def __le__(self, other: object) -> bool:
        return self.rank <= other.rank if isinstance(other, Role) else NotImplemented

    def __gt__(self, other: object) -> bool:
        return self.rank > other.rank if isinstance(other, Role) else NotImplemented

    def __ge__(self, other: object) -> bool:
        return self.rank >= other.rank if isinstance(other, Role) else NotImplemented


def check_tenant_id(tenant: str, *, allow_platform: bool = True) -> str:
    """`tenant` if it is a valid tenant id (or `*` when `allow_platform`); raises ValueError otherwise."""
    if tenant == PLATFORM_TENANT and allow_platform:
        return tenant
    if not _TENANT_RE.match(tenant):
        raise ValueError(f"invalid tenant id {tenant!r}: 1-128 characters out of A-Z a-z 0-9 . _ : -")
    return tenant


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: the API key it presented, its tenant and role.

    A principal of tenant `*` is platform-wide and may only be an admin.
    """

    key_id: str
    tenant: str
    role: Role
    name: str

    def __post_init__(self) -> None:
        check_tenant_id(self.tenant)
        object.__setattr__(self, "role", Role(self.role))
        if self.tenant == PLATFORM_TENANT and self.role is not Role.ADMIN:
            raise ValueError("only admin principals may be platform-wide (tenant '*')")

    @property
    def platform_wide(self) -> bool:
        """Whether the principal may act on every tenant."""
        return self.tenant == PLATFORM_TENANT

    def allows(self, role: Role | str) -> bool:
        """Whether the principal's role includes `role`."""
        return self.role >= Role(role)

    def can_access(self, tenant: str) -> bool:
        """Whether the principal may see and act on `tenant`'s resources."""
        return self.platform_wide or self.tenant == tenant

    def check_role(self, role: Role | str) -> None:
        """Raise InsufficientRoleError unless the principal's role includes `role`."""
        if not self.allows(role):
            raise InsufficientRoleError(f"this action needs the {Role(role).value} role")

    def check_tenant(self, tenant: str) -> None:
        """Raise TenantAccessError unless the principal may access `tenant`.

        Callers answer it like a missing resource, so other tenants' resources are not even
        confirmed to exist.
        """
        if not self.can_access(tenant):
            raise TenantAccessError("not found")

    def scope(self, requested: str | None = None) -> str | None:
        """The tenant a listing must be limited to: `requested` when allowed, else the principal's own.

        None means every tenant (platform-wide principals that did not ask for one). Raises
        TenantAccessError when a tenant-bound principal asks for another tenant.
        """
        if requested is not None:
            self.check_tenant(requested)
            return requested
        return None if self.platform_wide else self.tenant
