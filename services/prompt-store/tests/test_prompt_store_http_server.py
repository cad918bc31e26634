"""The uvicorn server run beside the consumer: starts on a free port, refuses a taken one, stops cleanly."""

from __future__ import annotations

import signal

import httpx
import pytest
from fastapi import FastAPI

from cairn_auth.serving import serving


def tiny_app() -> FastAPI:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "yes"}

    return app


async def test_serves_until_the_block_exits_and_leaves_signals_alone() -> None:
    before = signal.getsignal(signal.SIGTERM)
    async with serving(tiny_app(), "127.0.0.1", 0, name="prompt-store") as server:
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.get("/ping")).json() == {"pong": "yes"}
        assert signal.getsignal(signal.SIGTERM) == before
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(base_url=server.url) as client:
            await client.get("/ping")


async def test_a_taken_port_raises_instead_of_exiting() -> None:
    async with serving(tiny_app(), "127.0.0.1", 0, name="prompt-store") as first:
        with pytest.raises(OSError, match="in use"):
            async with serving(tiny_app(), "127.0.0.1", first.port, name="prompt-store"):
                pass
