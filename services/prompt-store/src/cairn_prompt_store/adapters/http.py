"""The prompt-store HTTP API's I/O: served inside the service's event loop by `cairn_auth.serving`."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from cairn_auth.serving import HttpServer
from cairn_auth.serving import serving as _serving

__all__ = ["HttpServer", "serving"]


def serving(
    app: Any, host: str, port: int, shutdown_timeout_s: float = 5.0
) -> AbstractAsyncContextManager[HttpServer]:
    """Listen on host:port (0 picks a free port) until the block exits (see `cairn_auth.serving`)."""
    return _serving(app, host, port, shutdown_timeout_s, name="prompt-store")
