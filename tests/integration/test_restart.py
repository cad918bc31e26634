"""A service killed mid-stream loses nothing and writes no duplicates when it comes back."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cairn_audit.adapters.postgres import PostgresAuditStore
from cairn_audit.settings import Settings as AuditSettings
from cairn_bus.kafka import KafkaPublisher
from cairn_events import RequestSubmittedV1

from .conftest import wait_for

pytestmark = pytest.mark.integration


def start_audit(settings: AuditSettings, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CAIRN_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "CAIRN_POSTGRES_DSN": settings.postgres_dsn,
        "CAIRN_KAFKA_GROUP_ID": settings.group_id,
        "CAIRN_KAFKA_SESSION_TIMEOUT_MS": "2000",
        "CAIRN_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
        "CAIRN_KAFKA_FETCH_MAX_WAIT_MS": "25",
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "cairn_audit"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


async def _stored(store: PostgresAuditStore, ids: list[str]) -> int:
    return int(
        await store.pool.fetchval("SELECT count(*) FROM audit_events WHERE event_id = ANY($1::text[])", ids)
    )


async def test_killed_audit_service_resumes_without_loss_or_duplicates(
    audit_settings: AuditSettings, audit_store: PostgresAuditStore, publisher: KafkaPublisher, tmp_path: Path
) -> None:
    total = 150
    run = uuid.uuid4().hex[:8]
    events = [
        RequestSubmittedV1.model_validate(
            {
                "request_id": f"restart-{run}-{i}",
                "prompt": "qa",
                "submitted_at": datetime.now(UTC).isoformat(),
            }
        )
        for i in range(total)
    ]
    log = tmp_path / "audit.log"
    first = start_audit(audit_settings, log)
    try:
        ids: list[str] = []

        async def produce(batch: list[RequestSubmittedV1]) -> None:
            for event in batch:
                ids.append((await publisher.publish(event)).id)
                await asyncio.sleep(0.01)

        # the service is up and has stored a first part of the stream ...
        await produce(events[:50])
        await wait_for(lambda: _all(audit_store, ids), timeout=60)
        # ... then it is killed -9 while the rest is still being produced and consumed
        producing = asyncio.create_task(produce(events[50:]))
        await wait_for(lambda: _more_than(audit_store, ids, 50), timeout=60, interval=0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        stored_at_kill = await _stored(audit_store, ids)
        second = start_audit(audit_settings, log)
        try:
            await producing
            await wait_for(lambda: _all(audit_store, ids), timeout=90)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    assert 50 < stored_at_kill < total, "the kill should land mid-stream"
    assert await _stored(audit_store, ids) == total
    rows = await audit_store.pool.fetch(
        "SELECT event_id, count(*) AS n FROM audit_events GROUP BY event_id HAVING count(*) > 1"
    )
    assert rows == []
    assert await audit_store.verify() == []
    assert second.returncode == 0, log.read_text()[-2000:]


async def _more_than(store: PostgresAuditStore, ids: list[str], n: int) -> bool:
    return await _stored(store, list(ids)) > n


async def _all(store: PostgresAuditStore, ids: list[str]) -> bool:
    return await _stored(store, ids) == len(ids)
