"""`/healthz`: `ok` while every dependency answers, `degraded` (503) while one does not, served beside /metrics."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from typing import Any

import pytest

from cairn_bus.service import Health, default_health_checks, postgres_check, serve_metrics_and_health
from cairn_bus.settings import PostgresSettings, ServiceSettings


class Switch:
    """A dependency that is up or down."""

    def __init__(self) -> None:
        self.up = True

    async def __call__(self) -> None:
        if not self.up:
            raise ConnectionRefusedError("connection refused")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


async def test_health_follows_its_checks() -> None:
    db = Switch()
    health = Health({"postgres": db})
    assert health.report()[0] == 503  # starting: not probed yet
    assert (await health.probe())["status"] == "ok"
    assert health.report() == (200, json.dumps({"status": "ok", "checks": {"postgres": "ok"}}).encode())
    db.up = False
    state = await health.probe()
    assert state["status"] == "degraded"
    assert "connection refused" in state["checks"]["postgres"]
    assert health.report()[0] == 503
    db.up = True
    assert (await health.probe())["status"] == "ok"


async def test_an_unreachable_database_degrades_health() -> None:
    dsn = f"postgresql://cairn@127.0.0.1:{free_port()}/cairn"  # nothing listens there
    state = await Health({"postgres": postgres_check(dsn)}, timeout_s=3).probe()
    assert state["status"] == "degraded"


def test_services_with_a_database_check_it_by_default() -> None:
    class WithDb(ServiceSettings, PostgresSettings):
        pass

    assert set(default_health_checks(WithDb())) == {"postgres"}
    assert default_health_checks(ServiceSettings()) == {}


async def test_healthz_and_metrics_share_the_port() -> None:
    db = Switch()
    health = Health({"postgres": db})
    server = serve_metrics_and_health(0, "127.0.0.1", health)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        await health.probe()
        status, body = get(f"{base}/healthz")
        assert (status, json.loads(body)["status"]) == (200, "ok")
        db.up = False
        await health.probe()
        status, body = get(f"{base}/healthz")
        assert (status, json.loads(body)["status"]) == (503, "degraded")
        status, body = get(f"{base}/metrics")
        assert status == 200
        assert b"# HELP" in body
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.integration
async def test_the_database_check_keeps_its_connection_and_reconnects_after_losing_it(
    postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncpg

    opened: list[Any] = []
    connect = asyncpg.connect

    async def counting_connect(*args: Any, **kwargs: Any) -> Any:
        conn = await connect(*args, **kwargs)
        opened.append(conn)
        return conn

    monkeypatch.setattr(asyncpg, "connect", counting_connect)
    health = Health({"postgres": postgres_check(postgres_dsn)}, timeout_s=5)
    assert (await health.probe())["status"] == "ok"
    assert (await health.probe())["status"] == "ok"
    assert len(opened) == 1
    admin = await connect(postgres_dsn)
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", opened[0].get_server_pid())
    finally:
        await admin.close()
    # the server closed the kept connection: a probe either fails on it (and drops it) or sees it
    # closed and connects again; either way the check recovers with a new connection
    statuses = [(await health.probe())["status"] for _ in range(2)]
    assert statuses[-1] == "ok", statuses
    assert len(opened) == 2
    assert opened[0].is_closed()
    await opened[1].close()
