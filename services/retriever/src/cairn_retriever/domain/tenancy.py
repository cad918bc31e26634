"""Tenants of documents: collections are resolved within a tenant; tenant `default`'s are shared.

A tenant's collection `kb` is stored as collection `<tenant>/kb`; the shared tenant `default` keeps
plain names (so documents ingested before tenants, or without one, are the shared ones). Collection
names hold no `/`, and tenant ids never do, so a stored name says unambiguously whose it is.

Every tenant may read (search, list, show) the shared collections; only platform operators change
them. A request of tenant T searching collection `kb` reads `T/kb` and the shared `kb`, never
another tenant's.
"""

from __future__ import annotations

import re

from cairn_auth.domain.principals import check_tenant_id

SHARED_TENANT = "default"
"""The tenant of the platform's shared documents: readable by every tenant."""

COLLECTION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
"""A collection name as callers give it (no `/`: that separates the tenant in stored names)."""

_COLLECTION = re.compile(COLLECTION_PATTERN)


def check_collection(name: str) -> str:
    """`name` if it is a valid collection name; raises ValueError otherwise."""
    if not _COLLECTION.match(name):
        raise ValueError(
            f"invalid collection {name!r}: 1-128 of letters, digits and `._:-`, starting with a letter or digit"
        )
    return name


def stored_collection(tenant: str, collection: str) -> str:
    """The stored name of `tenant`'s collection; raises ValueError for an invalid tenant or name."""
    check_tenant_id(tenant, allow_platform=False)
    check_collection(collection)
    return collection if tenant == SHARED_TENANT else f"{tenant}/{collection}"


def owner_of(stored: str) -> tuple[str, str]:
    """(tenant, collection) of a stored collection name."""
    tenant, sep, collection = stored.partition("/")
    return (tenant, collection) if sep else (SHARED_TENANT, stored)


def readable_collections(tenant: str, collection: str) -> tuple[str, ...]:
    """The stored collections a reader of `tenant` searches for `collection`: its own, then the shared one."""
    own = stored_collection(tenant, collection)
    return (own,) if tenant == SHARED_TENANT else (own, collection)


def readable_by(tenant: str, stored: str) -> bool:
    """Whether a reader of `tenant` may see documents of the stored collection (its own or shared)."""
    owner, _ = owner_of(stored)
    return owner in (tenant, SHARED_TENANT)
