"""Serving an ASGI app with uvicorn inside the service's event loop, beside the consumer."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn


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


@contextlib.asynccontextmanager
async def serving(
    app: Any, host: str, port: int, shutdown_timeout_s: float = 5.0
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

    task = asyncio.create_task(run(), name="retriever-http")
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
