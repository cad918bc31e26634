"""Audit storage: events per second through the audit store, per event and in batches, against COPY.

The floor is PostgreSQL `COPY` of the same rows into a bare table (no chain, no dedupe). Run with
`.venv/bin/python benchmarks/audit_bench.py` (test stack profile unless CAIRN_STACK_PROFILE says
otherwise); prints a table and writes benchmarks/results/audit_bench.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from cairn_audit.adapters.postgres import PostgresAuditStore
from cairn_audit.domain.records import AuditRecord
from cairn_bus.postgres import create_pool
from cairn_localstack.config import StackConfig
from cairn_localstack.stack import LocalStack

RESULTS = Path(__file__).parent / "results"


def records(n: int, run: str) -> list[AuditRecord]:
    now = datetime.now(UTC)
    return [
        AuditRecord(
            event_id=f"{run}-{i}",
            event_type="cairn.request.submitted.v1",
            source="/bench",
            event_time=now,
            topic="cairn.requests",
            partition=i % 6,
            offset=i,
            payload={"request_id": f"r-{i}", "prompt": "qa@production", "variables": {"question": "x" * 80}},
            headers={"ce_id": f"{run}-{i}", "ce_type": "cairn.request.submitted.v1", "ce_specversion": "1.0"},
            subject=f"r-{i}",
            correlation_id=f"r-{i}",
        )
        for i in range(n)
    ]


async def fresh_db(dsn: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(dsn)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


async def through_store(dsn: str, n: int, batch: int) -> float:
    pool = await create_pool(dsn)
    try:
        store = PostgresAuditStore(pool)
        await store.migrate()
        rows = records(n, uuid.uuid4().hex[:6])
        start = time.perf_counter()
        for i in range(0, n, batch):
            await store.append(rows[i : i + batch])
        return n / (time.perf_counter() - start)
    finally:
        await pool.close()


async def copy_floor(dsn: str, n: int) -> float:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TABLE bench_copy (event_id text, event_type text, topic text, partition int, "
            '"offset" bigint, payload text, headers text, hash text)'
        )
        rows = [
            (
                r.event_id,
                r.event_type,
                r.topic,
                r.partition,
                r.offset,
                json.dumps(r.payload),
                json.dumps(r.headers),
                "0" * 64,
            )
            for r in records(n, uuid.uuid4().hex[:6])
        ]
        start = time.perf_counter()
        await conn.copy_records_to_table("bench_copy", records=rows)
        return n / (time.perf_counter() - start)
    finally:
        await conn.close()


async def through_service(bootstrap: str, dsn: str, n: int) -> float:
    """Events per second stored by the audit service consuming them from the broker."""
    from aiokafka import AIOKafkaProducer

    from cairn_audit import bootstrap as audit_bootstrap
    from cairn_audit.app import router
    from cairn_audit.settings import Settings
    from cairn_bus.kafka import KafkaPublisher, ensure_topics
    from cairn_events import RequestSubmittedV1, load_topics
    from cairn_testing import running_service, start_group_at_end

    await ensure_topics(bootstrap)
    group = f"bench-audit-{uuid.uuid4().hex[:6]}"
    await start_group_at_end(bootstrap, group, sorted(load_topics()))
    settings = Settings(
        kafka_bootstrap=bootstrap,
        postgres_dsn=dsn,
        kafka_group_id=group,
        kafka_session_timeout_ms=2000,
        kafka_heartbeat_interval_ms=500,
        kafka_fetch_max_wait_ms=25,
    )
    now = datetime.now(UTC).isoformat()
    events = [
        RequestSubmittedV1.model_validate({"request_id": f"ab-{i}", "prompt": "qa", "submitted_at": now})
        for i in range(n)
    ]
    pool = await create_pool(dsn)
    store = PostgresAuditStore(pool)
    await store.migrate()
    before = await store.count()
    async with running_service(router, settings, audit_bootstrap.build):
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
        await producer.start()
        publisher = KafkaPublisher(producer, "/bench")
        futures = []
        start = time.perf_counter()
        for e in events:
            m = publisher.build(e)
            futures.append(await producer.send(m.topic, value=m.value, key=m.key, headers=m.headers))
        await asyncio.gather(*futures)
        await producer.stop()
        while await store.count() < before + n:  # noqa: ASYNC110 - polling the database is the measurement
            await asyncio.sleep(0.05)
        rate = n / (time.perf_counter() - start)
    await pool.close()
    return rate


async def main(n: int) -> dict[str, Any]:
    config = StackConfig.for_profile(os.environ.get("CAIRN_STACK_PROFILE", "test"))
    LocalStack(config).up()
    dsn = await fresh_db(config.postgres_dsn)
    per_event = await through_store(dsn, min(n, 2000), 1)
    batched = await through_store(dsn, n, 200)
    floor = await copy_floor(dsn, n)
    service = await through_service(config.kafka_bootstrap, dsn, min(n, 5000))
    return {
        "events": n,
        "audit_service_from_bus_events_s": round(service, 1),
        "store_per_event_events_s": round(per_event, 1),
        "store_batch200_events_s": round(batched, 1),
        "copy_floor_events_s": round(floor, 1),
        "service_over_copy": round(service / floor, 4),
        "per_event_over_copy": round(per_event / floor, 4),
        "batch200_over_copy": round(batched / floor, 4),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=10000, help="events per measurement")
    res = asyncio.run(main(parser.parse_args().n))
    width = max(len(k) for k in res)
    for key, value in res.items():
        print(f"{key:<{width}}  {value}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "audit_bench.json").write_text(json.dumps(res, indent=2) + "\n")
