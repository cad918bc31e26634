"""Serving a service's HTTP API: an ASGI app run by uvicorn inside the service's event loop, beside
its consumer, and the API keys it checks callers against (PostgreSQL, the bootstrap admin key).

Every Cairn service with an HTTP API (prompt-store, retriever, safety, evaluator, audit) serves it
through `serving` and authenticates through `key_authenticator`."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn

from cairn_auth.adapters.postgres import PostgresKeyStore
from cairn_auth.authenticator import Authenticator
from cairn_auth.management import action_event_id, install_bootstrap_key, install_bootstrap_token
from cairn_auth.ports import KeyStore
from cairn_auth.settings import AuthSettings
from cairn_bus import Publisher
from cairn_bus.secrets import optional_secret
from cairn_bus.settings import ServiceSettings

__all__ = [
    "HttpServer",
    "install_bootstrap",
    "kafka_publisher",
    "key_authenticator",
    "serving",
    "serving_api",
]


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the service (`run_service` owns SIGTERM)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass(frozen=True)
class HttpServer:
    """Where the API listens."""

    host: str
    port: int

    @property
    def url(self) -> str:
        """Base URL of the API."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


async def key_authenticator(pool: Any, publisher: Publisher, auth: AuthSettings) -> Authenticator | None:
    """An Authenticator on the `auth_api_keys` table of `pool` (migrated), or None when auth is off.

    With `CAIRN_AUTH_BOOTSTRAP_KEY_FILE` set, the key in that file is installed as a platform-wide
    admin key first (once: replicas and services sharing the table agree), and its creation is
    published on `cairn.admin`.
    """
    if not auth.enabled:
        return None
    keys = PostgresKeyStore(pool)
    await keys.migrate()
    await install_bootstrap(keys, auth, publisher)
    return Authenticator(keys, cache_ttl_s=auth.cache_ttl_s)


@contextlib.asynccontextmanager
async def serving(
    app: Any, host: str, port: int, shutdown_timeout_s: float = 5.0, *, name: str = "http"
) -> AsyncIterator[HttpServer]:
    """Listen on host:port (0 picks a free port) until the block exits, then stop gracefully.

    The socket is bound here, so a port in use raises OSError at once instead of uvicorn exiting the
    process.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family)
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(shutdown_timeout_s),
    )
    server = _Server(config)

    async def run() -> None:
        try:
            await server.serve(sockets=[sock])
        except SystemExit as exc:  # uvicorn exits on start-up failures; keep the loop alive
            raise RuntimeError(f"the HTTP API on {host}:{port} failed to start") from exc

    task = asyncio.create_task(run(), name=f"{name}-http")
    try:
        while not server.started:
            if task.done():
                task.result()  # raises what stopped it
                raise RuntimeError(f"the HTTP API on {host}:{port} stopped during start-up")
            await asyncio.sleep(0.01)
    except BaseException:
        server.should_exit = True
        sock.close()
        raise
    try:
        yield HttpServer(host, sock.getsockname()[1])
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(task, timeout=shutdown_timeout_s + 5)
        finally:
            sock.close()


async def install_bootstrap(keys: KeyStore, auth: AuthSettings, publisher: Publisher) -> None:
    """Install the bootstrap key (when access control is on) as a platform-wide admin key, and publish
    its creation on `cairn.admin` the first time. The key is a secret like any other: the file
    `CAIRN_AUTH_BOOTSTRAP_KEY_FILE` names, else `read_secret("auth_bootstrap_key")`
    (`CAIRN_AUTH_BOOTSTRAP_KEY`, or Vault); none of them set: no bootstrap key."""
    if not auth.enabled:
        return
    if auth.bootstrap_key_file is not None:
        _, event = await install_bootstrap_key(keys, auth.bootstrap_key_file)
    else:
        token = optional_secret("auth_bootstrap_key")
        if token is None:
            return
        _, event = await install_bootstrap_token(keys, token)
    if event is not None:
        await publisher.publish(
            event, event_id=action_event_id(event.action, event.target, event.recorded_at)
        )


@contextlib.asynccontextmanager
async def kafka_publisher(settings: ServiceSettings) -> AsyncIterator[Publisher]:
    """A publisher of its own, for an API served without the service (its admin actions)."""
    from cairn_bus.kafka import KafkaPublisher, make_producer

    producer = make_producer(settings)
    await producer.start()
    try:
        yield KafkaPublisher(producer, f"/cairn/{settings.service_name}", service=settings.service_name)
    finally:
        await producer.stop()


@contextlib.asynccontextmanager
async def serving_api(
    settings: Any,
    pool: Any,
    publisher: Publisher,
    make_app: Callable[..., Any],
    *,
    name: str,
    auth: AuthSettings | None = None,
) -> AsyncIterator[HttpServer]:
    """A service's HTTP API on `settings.http_host:http_port` until the block exits: the app made by
    `make_app(authenticator=..., auth=...)` (a service's `create_app` with its own arguments bound),
    callers' keys checked against `pool`'s key table (see `key_authenticator`; `auth` defaults to
    `CAIRN_AUTH_*`)."""
    auth = auth or AuthSettings()
    app = make_app(authenticator=await key_authenticator(pool, publisher, auth), auth=auth)
    async with serving(app, settings.http_host, settings.http_port, name=name) as server:
        yield server
