"""Builds the prompt store's dependencies from settings; tests pass fakes as overrides."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from cairn_auth import AuthSettings
from cairn_bus import Inbox, InMemoryInbox, Publisher
from cairn_prompt_store.ports import PromptStore
from cairn_prompt_store.settings import Settings

if TYPE_CHECKING:
    from cairn_auth.serving import HttpServer


def utc_now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


@dataclass
class Deps:
    """What the prompt store's handlers need."""

    store: PromptStore
    inbox: Inbox
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
    inbox: Inbox | None = None,
    clock: Callable[[], datetime] | None = None,
    auth: AuthSettings | None = None,
) -> AsyncIterator[Deps]:
    """Deps for the running service.

    With `store` given (tests): that store, `inbox` or an in-memory inbox, no HTTP server. Otherwise
    a PostgreSQL pool (tables migrated), the inbox in the same database, and the management API on
    `http_host:http_port` when `http_enabled`, stopped when the block exits. The API checks API keys
    (`auth`, default from `CAIRN_AUTH_*`) against `auth_api_keys` in the same database, installs
    the bootstrap key, and publishes administrative actions through `publisher`.
    """
    now = clock or utc_now
    if store is not None:
        yield Deps(store=store, inbox=inbox or InMemoryInbox(), publisher=publisher, clock=now)
        return
    from cairn_auth.serving import serving_api
    from cairn_bus import PostgresInbox
    from cairn_bus.postgres import create_pool
    from cairn_prompt_store.adapters.postgres import PostgresPromptStore
    from cairn_prompt_store.api import create_app

    async with AsyncExitStack() as stack:
        pool = await create_pool(
            settings.postgres_dsn, settings.postgres_pool_min, settings.postgres_pool_max
        )
        stack.push_async_callback(pool.close)
        pg = PostgresPromptStore(pool)
        await pg.migrate()
        pg_inbox = PostgresInbox(pool)
        await pg_inbox.migrate()
        http = None
        if settings.http_enabled:
            make_app = partial(create_app, pg, publisher=publisher)
            http = await stack.enter_async_context(
                serving_api(settings, pool, publisher, make_app, name="prompt-store", auth=auth)
            )
        yield Deps(store=pg, inbox=inbox or pg_inbox, publisher=publisher, clock=now, http=http)
