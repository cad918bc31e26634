"""Builds the audit service's dependencies from settings; tests pass fakes as overrides."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from cairn_audit.domain.records import AuditRecord
from cairn_audit.ports import AuditStore
from cairn_audit.settings import Settings
from cairn_bus import Publisher
from cairn_observability import get_logger

if TYPE_CHECKING:
    from cairn_auth.encryption import Keyring
    from cairn_auth.serving import HttpServer


log = get_logger("cairn.audit")


@dataclass
class Deps:
    """What the audit handlers need."""

    store: AuditStore
    publisher: Publisher
    group_id: str = "cairn-audit"
    pending: list[AuditRecord] = field(default_factory=list)
    """Records of the batch being consumed, stored together by `handlers.flush`."""
    http: HttpServer | None = None
    """Where the audit query API listens, when the service serves it."""
    keyring: Keyring | None = None
    """The tenants' data keys the store encrypts payloads with (None: payloads stored as they are)."""
    erasures: list[str] = field(default_factory=list)
    """Tenants whose erasure arrived in the batch being consumed: erased by `handlers.flush`, after
    the batch's records are stored."""


@asynccontextmanager
async def build(
    settings: Settings, publisher: Publisher, store: AuditStore | None = None, keyring: Keyring | None = None
) -> AsyncIterator[Deps]:
    """Deps for the running service: a PostgreSQL store (migrated) unless `store` is given; with
    it, the query API on `http_host:http_port` when `http_enabled` (API keys in the same database),
    stopped when the block exits. The store encrypts tenants' payloads when a master key is
    configured (`cairn_auth.encryption`)."""
    if store is not None:
        yield Deps(store=store, publisher=publisher, group_id=settings.group_id, keyring=keyring)
        return
    from cairn_audit.adapters.postgres import PostgresAuditStore
    from cairn_bus.postgres import create_pool

    async with AsyncExitStack() as stack:
        pool = await create_pool(
            settings.postgres_dsn, settings.postgres_pool_min, settings.postgres_pool_max
        )
        stack.push_async_callback(pool.close)
        pg = PostgresAuditStore(pool) if keyring is None else PostgresAuditStore(pool, keyring)
        await pg.migrate()
        if pg.keyring is None:
            log.warning("no master key configured (CAIRN_MASTER_KEY): audit payloads are stored unencrypted")
        http = None
        if settings.http_enabled:
            from cairn_audit.api import create_app
            from cairn_auth.serving import serving_api

            http = await stack.enter_async_context(
                serving_api(settings, pool, publisher, partial(create_app, store=pg), name="audit")
            )
        yield Deps(store=pg, publisher=publisher, group_id=settings.group_id, http=http, keyring=pg.keyring)
