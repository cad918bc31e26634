"""Builds the prompt store's dependencies from settings; tests pass fakes as overrides."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cairn_auth import AuthSettings
from cairn_bus import Publisher
from cairn_prompt_store.ports import Claims, PromptStore
from cairn_prompt_store.settings import Settings

if TYPE_CHECKING:
    from cairn_prompt_store.adapters.http import HttpServer


def utc_now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


@dataclass
class Deps:
    """What the prompt store's handlers need."""

    store: PromptStore
    claims: Claims
    publisher: Publisher
    clock: Callable[[], datetime] = utc_now
    http: HttpServer | None = None
    """Where the management API listens, when the service serves it."""


@asynccontextmanager
async def build(
    settings: Settings,
    publisher: Publisher,
    *,
    store: PromptStore | None = None,
    claims: Claims | None = None,
    clock: Callable[[], datetime] | None = None,
    auth: AuthSettings | None = None,
) -> AsyncIterator[Deps]:
    """Deps for the running service.

    With `store` given (tests): that store, `claims` or in-memory claims, no HTTP server. Otherwise
    a PostgreSQL pool (tables migrated), the inbox in the same database, and the management API on
    `http_host:http_port` when `http_enabled`, stopped when the block exits. The API checks API keys
    (`auth`, default from `CAIRN_AUTH_*`) against `auth_api_keys` in the same database, installs
    the bootstrap key, and publishes administrative actions through `publisher`.
    """
    now = clock or utc_now
    if store is not None:
        from cairn_prompt_store.adapters.memory import InMemoryClaims

        yield Deps(store=store, claims=claims or InMemoryClaims(), publisher=publisher, clock=now)
        return
    from cairn_auth import Authenticator
    from cairn_auth.adapters.postgres import PostgresKeyStore
    from cairn_auth.serving import install_bootstrap
    from cairn_prompt_store.adapters.http import serving
    from cairn_prompt_store.adapters.postgres import PostgresClaims, PostgresPromptStore, create_pool
    from cairn_prompt_store.api import create_app

    async with AsyncExitStack() as stack:
        pool = await create_pool(
            settings.postgres_dsn, settings.postgres_pool_min, settings.postgres_pool_max
        )
        stack.push_async_callback(pool.close)
        pg = PostgresPromptStore(pool)
        await pg.migrate()
        pg_claims = PostgresClaims(pool)
        await pg_claims.migrate()
        http = None
        if settings.http_enabled:
            auth = auth or AuthSettings()
            keys = PostgresKeyStore(pool)
            await keys.migrate()
            await install_bootstrap(keys, auth, publisher)
            authenticator = Authenticator(keys, cache_ttl_s=auth.cache_ttl_s)
            app = create_app(settings, store=pg, publisher=publisher, authenticator=authenticator, auth=auth)
            http = await stack.enter_async_context(serving(app, settings.http_host, settings.http_port))
        yield Deps(store=pg, claims=claims or pg_claims, publisher=publisher, clock=now, http=http)
