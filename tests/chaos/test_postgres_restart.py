"""PostgreSQL stops mid-run and comes back: health says degraded meanwhile, nothing is lost or doubled.

The services of this module run against a private PostgreSQL (the local stack's postgres
component with its own data folder and port), never the shared test stack's, which other tests use.
"""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from cairn_audit.adapters.postgres import PostgresAuditStore
from cairn_events import RequestSubmittedV1
from cairn_localstack.components.postgres import Postgres
from cairn_localstack.config import StackConfig
from cairn_localstack.process import ProcessManager
from cairn_testing.processes import ServiceProcesses
from tests.e2e.harness import Upstream, new_request_id

from .conftest import (
    FULL_TRAIL,
    PROMPT,
    REQUEST_PATH,
    answer,
    complete_trail,
    distinct_responses,
    free_port,
    healthz,
)

pytestmark = pytest.mark.integration

REQUESTS = 16
DOWN_AFTER = 5  # requests sent before PostgreSQL stops
DOWN_S = 6.0


@pytest.fixture(scope="module")
def private_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    folder = tmp_path_factory.mktemp("chaos-pg")
    config = StackConfig.for_profile("chaos-pg", root_dir=folder, pg_port=free_port())
    pg = Postgres(config, ProcessManager(folder))
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()
        if pg.layout.base != pg.home:  # data kept outside the folder (the server's account cannot reach it)
            shutil.rmtree(pg.layout.base, ignore_errors=True)


@pytest.fixture(scope="module")
def chaos_database(private_postgres: Postgres) -> str:
    """This module's services use the private server's database (overrides the conftest's)."""
    return private_postgres.config.postgres_dsn


def request(i: int) -> RequestSubmittedV1:
    return RequestSubmittedV1.model_validate(
        {
            "request_id": new_request_id(f"pgdown{i}"),
            "prompt": f"{PROMPT}@production",
            "variables": {"question": "What does pass do?"},
            "params": {"max_tokens": 8, "temperature": 0.0},
            "submitted_at": datetime.now(UTC).isoformat(),
        }
    )


async def wait_health(ports: dict[str, int], want: str, within_s: float) -> dict[str, str]:
    """Poll every service's /healthz until each reports `want` (or the time is up); the last statuses."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        seen = {name: (await asyncio.to_thread(healthz, port))["status"] for name, port in ports.items()}
        if all(status == want for status in seen.values()) or loop.time() > deadline:
            return seen
        await asyncio.sleep(0.5)


async def test_a_database_restart_degrades_health_and_loses_nothing(
    services: ServiceProcesses,
    upstream: Upstream,
    audit_store: PostgresAuditStore,
    private_postgres: Postgres,
    metrics_ports: dict[str, int],
) -> None:
    assert await wait_health(metrics_ports, "ok", 30) == dict.fromkeys(REQUEST_PATH, "ok")
    requests = [request(i) for i in range(REQUESTS)]
    for r in requests[:DOWN_AFTER]:
        await upstream.submit(r)
        await asyncio.sleep(0.2)
    await asyncio.to_thread(private_postgres.stop)
    try:
        for r in requests[DOWN_AFTER:]:
            await upstream.submit(r)
            await asyncio.sleep(0.2)
        down = await wait_health(metrics_ports, "degraded", 20)
        assert down == dict.fromkeys(REQUEST_PATH, "degraded"), down
        await asyncio.sleep(max(0.0, DOWN_S - 0.2 * (REQUESTS - DOWN_AFTER)))
    finally:
        await asyncio.to_thread(private_postgres.start)
    assert await wait_health(metrics_ports, "ok", 30) == dict.fromkeys(REQUEST_PATH, "ok")
    # every request answered exactly once, and answered (not failed) now the database is back
    for r in requests:
        response = await answer(upstream, r.request_id, timeout=180)
        assert response.status.value == "completed", (r.request_id, response.reason)
    await asyncio.sleep(2.0)  # a second response, if any, would have arrived by now
    for r in requests:
        assert distinct_responses(upstream, r.request_id) == 1, f"{r.request_id}: a second response"
    for r in requests:
        types = Counter(rec.event_type for rec in await complete_trail(audit_store, r.request_id))
        assert set(types) == FULL_TRAIL, (r.request_id, types)
        assert all(n == 1 for n in types.values()), (
            f"duplicate events in the trail of {r.request_id}: {types}"
        )
    for name in REQUEST_PATH:
        assert services.pm.is_running(name), f"{name} died:\n{services.log(name, 40)}"
