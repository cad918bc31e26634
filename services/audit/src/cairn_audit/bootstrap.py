"""Builds the audit service's dependencies from settings; tests pass fakes as overrides."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from cairn_audit.ports import AuditStore
from cairn_audit.settings import Settings
from cairn_bus import Publisher


@dataclass
class Deps:
    """What the audit handlers need."""

    store: AuditStore
    publisher: Publisher


@asynccontextmanager
async def build(
    settings: Settings, publisher: Publisher, store: AuditStore | None = None
) -> AsyncIterator[Deps]:
    """Deps for the running service: a PostgreSQL store (migrated) unless `store` is given."""
    if store is not None:
        yield Deps(store=store, publisher=publisher)
        return
    from cairn_audit.adapters.postgres import PostgresAuditStore, create_pool

    pool = await create_pool(settings.postgres_dsn, settings.postgres_pool_min, settings.postgres_pool_max)
    try:
        pg = PostgresAuditStore(pool)
        await pg.migrate()
        yield Deps(store=pg, publisher=publisher)
    finally:
        await pool.close()
