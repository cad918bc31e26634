"""Builds the gateway's dependencies from settings; tests pass fakes as overrides."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from typing import Any

from cairn_auth import AuthSettings
from cairn_bus import EventMeta, Publisher
from cairn_bus.background import in_background
from cairn_events import CompletionDeltaGeneratedV1, Event, ResponseCompletedV1
from cairn_gateway.completions import keep_unfinished
from cairn_gateway.console import Console
from cairn_gateway.deps import Deps
from cairn_gateway.ports import AnsweredRequests, Catalogue
from cairn_gateway.settings import Settings
from cairn_observability import get_logger

__all__ = ["HOUSEKEEPING_INTERVAL_S", "Deps", "build", "housekeeping"]

HOUSEKEEPING_INTERVAL_S = 60.0
"""How often a replica forgets expired idempotent requests (table rows and kept request ids)."""
log = get_logger("cairn.gateway")


async def tidy(deps: Deps) -> tuple[int, int]:
    """Forget expired requests: rows claimed longer ago than the retention, and kept request ids whose
    time is up; (rows, ids) forgotten."""
    rows = await deps.answered.purge(deps.clock() - timedelta(seconds=deps.idempotency_retention_s))
    return rows, deps.replies.sweep()


@asynccontextmanager
async def housekeeping(deps: Deps, interval_s: float) -> AsyncIterator[None]:
    """Run `tidy` every `interval_s` seconds while the block runs (a failure is logged, not fatal)."""

    async def run() -> None:
        while True:
            try:
                rows, ids = await tidy(deps)
                if rows or ids:
                    log.info("expired requests forgotten", rows=rows, kept_ids=ids)
            except Exception as exc:
                log.warning("housekeeping failed", error=repr(exc))
            await asyncio.sleep(interval_s)

    async with in_background(run(), "gateway-housekeeping"):
        yield


def console_for(settings: Settings) -> Console:
    """The operator console over the services' APIs named in `settings`, its sessions sealed under the
    secret `console_secret` (`CAIRN_CONSOLE_SECRET`, a mounted file or Vault) when one is set."""
    from cairn_auth.secrets import SecretNotFoundError, read_secret
    from cairn_gateway.console import console_of
    from cairn_gateway.console.backends import Backends

    try:
        secret: str | None = read_secret("console_secret")
    except SecretNotFoundError:
        secret = None
    backends = Backends(
        {
            "audit": settings.gateway_audit_url,
            "safety": settings.gateway_safety_url,
            "prompts": settings.gateway_prompt_store_url,
            "registry": settings.gateway_registry_url,
        }
    )
    from cairn_observability.pricing import load_price_table, price_table_path

    path = price_table_path(settings.price_table)
    prices = load_price_table(path) if path is not None else None
    return console_of(
        backends,
        secret=secret,
        session_s=settings.console_session_s,
        secure_cookie=settings.console_secure_cookie,
        prices=prices,
    )


@asynccontextmanager
async def build(
    settings: Settings,
    publisher: Publisher,
    *,
    answered: AnsweredRequests | None = None,
    catalogue: Catalogue | None = None,
    auth: AuthSettings | None = None,
) -> AsyncIterator[Deps]:
    """Deps for the running service.

    With `answered` given (unit tests): that table, no listener, no HTTP server. Otherwise the
    `gateway_requests` table in PostgreSQL (migrated), the reply listeners on `cairn.responses` and
    `cairn.completions.deltas` (positioned at their ends before anything is served), the answers of the table's unfinished requests
    kept (`completions.keep_unfinished`), expired requests forgotten every `HOUSEKEEPING_INTERVAL_S`,
    then the API on `http_host:http_port` when `http_enabled`, its callers' keys checked against
    `auth_api_keys` in the same database.
    """
    from cairn_gateway.adapters.catalogue_http import HttpCatalogue

    found = catalogue or HttpCatalogue(settings.gateway_prompt_store_url, settings.gateway_registry_url)
    if answered is not None:
        yield Deps.of(settings, answered, found, publisher)
        return
    from cairn_auth.serving import serving_api
    from cairn_bus.postgres import create_pool
    from cairn_gateway.adapters.kafka_replies import listening
    from cairn_gateway.adapters.postgres import PostgresAnsweredRequests
    from cairn_gateway.api import create_app
    from cairn_gateway.handlers import on_completion_delta, on_response_completed

    async with AsyncExitStack() as stack:
        pool = await create_pool(
            settings.postgres_dsn, settings.postgres_pool_min, settings.postgres_pool_max
        )
        stack.push_async_callback(pool.close)
        table = PostgresAnsweredRequests(pool)
        await table.migrate()
        deps = Deps.of(settings, table, found, publisher)

        async def handle(event: Event, meta: EventMeta) -> None:
            if isinstance(event, ResponseCompletedV1):
                await on_response_completed(event, meta, deps)
            elif isinstance(event, CompletionDeltaGeneratedV1):
                await on_completion_delta(event, meta, deps)

        await stack.enter_async_context(listening(settings, handle))
        await stack.enter_async_context(listening(settings, handle, CompletionDeltaGeneratedV1.topic))
        kept = await keep_unfinished(deps)  # after the listener is at the end: no answer passes unseen
        log.info("unfinished requests kept", count=kept)
        await stack.enter_async_context(housekeeping(deps, HOUSEKEEPING_INTERVAL_S))
        if settings.http_enabled and settings.console_enabled:
            deps.console = console_for(settings)
            stack.push_async_callback(deps.console.backends.close)
        if settings.http_enabled:

            def make_app(**kwargs: Any) -> Any:
                return create_app(deps, **kwargs)

            deps.http = await stack.enter_async_context(
                serving_api(settings, pool, publisher, make_app, name="gateway", auth=auth)
            )
        yield deps
