"""The AuditStore behaviour suite (services/audit/tests/store_behaviour.py) against PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import asyncpg
import pytest

from cairn_audit.adapters.postgres import PostgresAuditStore
from cairn_audit.ports import AuditStore
from cairn_bus.postgres import create_pool, is_transient
from cairn_testing.suites import load_suite

pytestmark = pytest.mark.integration
SUITE = Path(__file__).parents[2] / "services" / "audit" / "tests" / "store_behaviour.py"


def _load_suite() -> ModuleType:
    """The shared behaviour suite (loaded by path: test files cannot import each other)."""
    return load_suite(SUITE)


AuditStoreBehaviour: Any = _load_suite().AuditStoreBehaviour


class TestPostgresAuditStore(AuditStoreBehaviour):  # type: ignore[misc]
    @pytest.fixture
    async def store(self, fresh_database: str) -> AsyncIterator[PostgresAuditStore]:
        pool = await create_pool(fresh_database)
        store = PostgresAuditStore(pool)
        await store.migrate()
        yield store
        await pool.close()

    async def tamper(self, store: AuditStore, event_id: str, **changes: Any) -> None:
        assert isinstance(store, PostgresAuditStore)
        for field, value in changes.items():
            column = '"offset"' if field == "offset" else field
            if isinstance(value, dict):
                value = dict(value)
            await store.pool.execute(
                f"UPDATE audit_events SET {column} = $1 WHERE event_id = $2", value, event_id
            )


# --- the COPY path under PostgreSQL alone ---------------------------------------------------------

record = _load_suite().audit_record


async def test_replicas_appending_overlapping_batches_at_once_form_one_chain(fresh_database: str) -> None:
    """Two replicas (each its own pool) store redelivered, overlapping batches concurrently: every
    event once, numbered without gaps, one unbroken chain."""
    pools = [await create_pool(fresh_database, max_size=4) for _ in range(2)]
    try:
        stores = [PostgresAuditStore(pool) for pool in pools]
        await stores[0].migrate()
        batches = [[record(n) for n in range(start, start + 300)] for start in range(1, 1500, 150)]
        counts = await asyncio.gather(*(stores[i % 2].append(batch) for i, batch in enumerate(batches * 2)))
        rows = await pools[0].fetch("SELECT seq, event_id FROM audit_events ORDER BY seq")
        expected = {f"evt-{n}" for n in range(1, 1651)}
        assert sum(counts) == len(expected)
        assert [r["seq"] for r in rows] == list(range(1, len(expected) + 1))
        assert {r["event_id"] for r in rows} == expected
        assert await stores[1].verify() == []
    finally:
        for pool in pools:
            await pool.close()


async def test_a_row_postgresql_rejects_fails_its_whole_batch_and_the_chain_goes_on(
    fresh_database: str,
) -> None:
    """A NUL in a payload (jsonb refuses it): the COPY stores none of the batch and the error is
    not an outage, so the consumer dead-letters that one row; the next batch chains on the head."""
    pool = await create_pool(fresh_database)
    try:
        store = PostgresAuditStore(pool, None)  # in clear: an encrypted payload would hide the NUL
        await store.migrate()
        await store.append([record(1)])
        poisoned = [record(2), record(3, payload={"request_id": "req-a", "prompt": "nul \u0000 here"})]
        with pytest.raises(asyncpg.PostgresError) as failed:
            await store.append(poisoned)
        assert not is_transient(failed.value)
        assert await store.count() == 1
        assert await store.append([record(2), record(4)]) == 2
        stored = [await store.get(f"evt-{n}") for n in (1, 2, 4)]
        assert [r.seq if r else None for r in stored] == [1, 2, 3]
        assert await store.verify() == []
    finally:
        await pool.close()


async def test_migrate_drops_the_replay_index_no_query_uses(fresh_database: str) -> None:
    """Every index costs each stored row; none of the store's queries filters on replay_of."""
    pool = await create_pool(fresh_database)
    try:
        store = PostgresAuditStore(pool)
        await store.migrate()
        await pool.execute("CREATE INDEX audit_events_replay_of ON audit_events (replay_of)")  # as before
        await store.migrate()
        indexes = await pool.fetch("SELECT indexname FROM pg_indexes WHERE tablename = 'audit_events'")
        assert "audit_events_replay_of" not in {r["indexname"] for r in indexes}
        assert len(indexes) == 7
    finally:
        await pool.close()
