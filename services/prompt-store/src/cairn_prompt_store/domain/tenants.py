"""Tenants of prompts: each prompt belongs to one; the `default` tenant's prompts are shared with all."""

from __future__ import annotations

SHARED_TENANT = "default"
"""The platform's shared prompts: every tenant may read and use them, only its own admins change them."""


def lookup_order(tenant: str) -> tuple[str, ...]:
    """Where a request of `tenant` looks for a prompt name: its own tenant, then the shared one."""
    return (tenant,) if tenant == SHARED_TENANT else (tenant, SHARED_TENANT)
