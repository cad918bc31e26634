"""Builds the audit service's dependencies from settings; tests pass fakes as overrides."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from cairn_audit.domain.records import AuditRecord
from cairn_audit.ports import AuditStore
from cairn_audit.settings import Settings
from cairn_bus import Publisher


@dataclass
class Deps:
    """What the audit handlers need."""

    store: AuditStore
    publisher: Publisher
    group_id: str = "cairn-audit"
    pending: list[AuditRecord] = field(default_factory=list)
    """Records of the batch being consumed, stored together by `handlers.flush`."""


@asynccontextmanager
async def build(
    settings: Settings, publisher: Publisher, store: AuditStore | None = None
) -> AsyncIterator[Deps]:
    """Deps for the running service: a PostgreSQL store (migrated) unless `store` is given."""
    if store is not None:
        yield Deps(store=store, publisher=publisher, group_id=settings.group_id)
        return
    from cairn_audit.adapters.postgres import PostgresAuditStore, create_pool

    pool = await create_pool(settings.postgres_dsn, settings.postgres_pool_min, settings.postgres_pool_max)
    try:
        pg = PostgresAuditStore(pool)
        await pg.migrate()
        yield Deps(store=pg, publisher=publisher, group_id=settings.group_id)
    finally:
        await pool.close()
