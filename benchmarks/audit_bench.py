"""Audit ingest: events per second the audit service stores from the bus, and through its store
(per event and in batches), against PostgreSQL COPY of the same rows.

`service_over_copy` is the audit service draining events waiting on the broker ÷ COPY of the very
rows it stored (all 21 columns, same types) into a bare table (no keys, indexes, chain or dedupe),
measured in the same run. Also printed: COPY of those rows into a copy of audit_events with its keys
and indexes (what the table alone allows), the earlier 8-column floor, and the CPU the service's
process spent per event. Run with `.venv/bin/python benchmarks/audit_bench.py` (test stack profile
unless CAIRN_STACK_PROFILE says otherwise); prints a table and writes
benchmarks/results/audit_bench.json. `--set FIELD=VALUE` overrides an audit setting for the run;
`--profile FILE` records the service with py-spy while it drains. `--encryption` also measures the
store with tenants' payloads encrypted (`cairn_auth.encryption`) against the same store without,
batches of 1000 alternated in the same run (best of 3 each): `encrypted_over_plain`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
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
            tenant="default",
        )
        for i in range(n)
    ]


async def fresh_db(dsn: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(dsn)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


async def through_store(dsn: str, n: int, batch: int, *, encrypted: bool = False) -> float:
    pool = await create_pool(dsn)
    try:
        keyring = None
        if encrypted:
            from cairn_auth.encryption import Keyring, MasterKey, PostgresTenantKeyStore

            master = MasterKey.configured()  # the one the service uses too (the local stack's)
            if master is None:
                raise SystemExit("--encryption needs a master key: CAIRN_MASTER_KEY or a local stack")
            keyring = Keyring(master, PostgresTenantKeyStore(pool))
        store = PostgresAuditStore(pool, keyring)
        await store.migrate()
        rows = records(n, uuid.uuid4().hex[:6])
        start = time.perf_counter()
        for i in range(0, n, batch):
            await store.append(rows[i : i + batch])
        return n / (time.perf_counter() - start)
    finally:
        await pool.close()


async def copy_floor(dsn: str, n: int, *, indexed: bool = False, repeat: int = 3) -> float:
    """COPY of the last `n` rows the service stored (every column, the same types) into a bare
    table: no keys, no indexes, no chain, no dedupe; with `indexed`, into a copy of audit_events with
    its keys and indexes (still no chain, no dedupe: what the table alone costs). The rows are read
    before the clock starts; the best of `repeat` runs, each into a new table."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.set_type_codec(  # jsonb in binary, as COPY needs; the text passed through as is
            "jsonb",
            encoder=lambda text: b"\x01" + text.encode(),
            decoder=lambda data: data[1:].decode(),
            schema="pg_catalog",
            format="binary",
        )
        rows = await conn.fetch("SELECT * FROM audit_events ORDER BY seq DESC LIMIT $1", n)
        columns = list(rows[0].keys())
        tuples = [tuple(r) for r in rows]
        best = 0.0
        for run in range(repeat):
            table = f"bench_copy_{'indexed_' if indexed else ''}{run}"
            like = "LIKE audit_events INCLUDING ALL" if indexed else "LIKE audit_events"
            await conn.execute(f"CREATE TABLE {table} ({like})")
            start = time.perf_counter()
            await conn.copy_records_to_table(table, records=tuples, columns=columns)
            best = max(best, len(tuples) / (time.perf_counter() - start))
        return best
    finally:
        await conn.close()


async def copy_floor_narrow(dsn: str, n: int, repeat: int = 3) -> float:
    """The floor before the audit store used COPY, kept for comparison: 8 of the 21 columns of the
    benchmark's own rows (payload and headers as text, no jsonb) into a bare table; best of `repeat`."""
    conn = await asyncpg.connect(dsn)
    try:
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
        best = 0.0
        for run in range(repeat):
            await conn.execute(
                f"CREATE TABLE bench_copy_narrow_{run} (event_id text, event_type text, topic text, "
                'partition int, "offset" bigint, payload text, headers text, hash text)'
            )
            start = time.perf_counter()
            await conn.copy_records_to_table(f"bench_copy_narrow_{run}", records=rows)
            best = max(best, n / (time.perf_counter() - start))
        return best
    finally:
        await conn.close()


async def through_service(
    bootstrap: str, dsn: str, n: int, settings_overrides: dict[str, Any], profile: Path | None = None
) -> dict[str, float]:
    """Events per second the audit service stores while it drains `n` events waiting on the broker.

    The events are produced first (the service's group starts at the topics' ends); the clock runs
    from the first stored row to the last, and counts the rows stored in between, so joining the
    group is not measured.
    """
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
        http_enabled=False,
        **settings_overrides,
    )
    now = datetime.now(UTC).isoformat()
    events = [
        RequestSubmittedV1.model_validate(
            {
                "request_id": f"ab-{i}",
                "prompt": "qa@production",
                "messages": [{"role": "user", "content": f"What does yield do in Python? ({i})"}],
                "submitted_at": now,
            }
        )
        for i in range(n)
    ]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    publisher = KafkaPublisher(producer, "/bench")
    futures = []
    start = time.perf_counter()
    for e in events:
        m = publisher.build(e)
        futures.append(await producer.send(m.topic, value=m.value, key=m.key, headers=m.headers))
    await asyncio.gather(*futures)
    produced = n / (time.perf_counter() - start)
    await producer.stop()

    pool = await create_pool(dsn)
    await PostgresAuditStore(pool).migrate()
    await pool.close()
    conn = await asyncpg.connect(dsn)
    try:
        stored = "SELECT coalesce(max(seq), 0) FROM audit_events"
        before = await conn.fetchval(stored)
        async with running_service(router, settings, audit_bootstrap.build):
            first = before
            while first == before:
                await asyncio.sleep(0.02)
                first = await conn.fetchval(stored)
            t0, cpu0 = time.perf_counter(), time.process_time()
            spy = start_py_spy(profile) if profile else None
            last = first
            while last < before + n:
                await asyncio.sleep(0.02)
                last = await conn.fetchval(stored)
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(30)
    finally:
        await conn.close()
    return {
        "stored_events_s": (last - first) / elapsed,
        "cpu_us_per_event": cpu / (last - first) * 1e6,
        "produced_events_s": produced,
    }


def start_py_spy(output: Path) -> subprocess.Popen[bytes]:
    """py-spy (`pip install py-spy`, not a project dependency) sampling this process until SIGINT:
    the audit service draining the bus, with PostgreSQL and the broker in their own processes."""
    exe = Path(sys.executable).with_name("py-spy")
    fmt = "speedscope" if output.suffix == ".json" else "raw" if output.suffix == ".txt" else "flamegraph"
    cmd = [str(exe), "record", "-p", str(os.getpid()), "-r", "250", "-f", fmt, "-o", str(output)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL)


async def encryption_cost(dsn: str, n: int, repeat: int = 3) -> dict[str, Any]:
    """Store batches of 1000 with and without encryption, alternated; best of `repeat` each."""
    plain = sealed = 0.0
    for _ in range(repeat):
        plain = max(plain, await through_store(dsn, n, 1000))
        sealed = max(sealed, await through_store(dsn, n, 1000, encrypted=True))
    return {
        "store_batch1000_plain_events_s": round(plain, 1),
        "store_batch1000_encrypted_events_s": round(sealed, 1),
        "encrypted_over_plain": round(sealed / plain, 4),
    }


async def main(
    n: int, overrides: dict[str, Any], profile: Path | None = None, encryption: bool = False
) -> dict[str, Any]:
    config = StackConfig.for_profile(os.environ.get("CAIRN_STACK_PROFILE", "test"))
    LocalStack(config).up()
    dsn = await fresh_db(config.postgres_dsn)
    per_event = await through_store(dsn, min(n, 2000), 1)
    batched = await through_store(dsn, n, 200)
    big = await through_store(dsn, n, 1000)
    service = await through_service(config.kafka_bootstrap, dsn, n, overrides, profile)
    floor = await copy_floor(dsn, n)
    indexed = await copy_floor(dsn, n, indexed=True)
    narrow = await copy_floor_narrow(dsn, n)
    rate = service["stored_events_s"]
    cost = await encryption_cost(dsn, n) if encryption else {}
    return {
        **cost,
        "events": n,
        "audit_service_from_bus_events_s": round(rate, 1),
        "service_process_cpu_us_per_event": round(service["cpu_us_per_event"], 1),
        "store_per_event_events_s": round(per_event, 1),
        "store_batch200_events_s": round(batched, 1),
        "store_batch1000_events_s": round(big, 1),
        "copy_floor_events_s": round(floor, 1),
        "copy_into_indexed_table_events_s": round(indexed, 1),
        "copy_floor_narrow_events_s": round(narrow, 1),
        "producer_events_s": round(service["produced_events_s"], 1),
        "service_over_copy": round(rate / floor, 4),
        "service_over_copy_narrow": round(rate / narrow, 4),
        "indexed_table_over_copy": round(indexed / floor, 4),
        "per_event_over_copy": round(per_event / floor, 4),
        "batch200_over_copy": round(batched / floor, 4),
        "batch1000_over_copy": round(big / floor, 4),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=10000, help="events per measurement")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="an audit service setting for the run, e.g. consumer_batch_max_records=1000",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="record a py-spy profile of the service draining the bus (.svg flame graph, .json "
        "speedscope, .txt collapsed stacks); needs py-spy installed",
    )
    parser.add_argument(
        "--encryption",
        action="store_true",
        help="also measure the store with payloads encrypted against without, in the same run",
    )
    args = parser.parse_args()
    res = asyncio.run(
        main(args.n, dict(item.split("=", 1) for item in args.set), args.profile, args.encryption)
    )
    width = max(len(k) for k in res)
    for key, value in res.items():
        print(f"{key:<{width}}  {value}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "audit_bench.json").write_text(json.dumps(res, indent=2) + "\n")
