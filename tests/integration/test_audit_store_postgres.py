"""The AuditStore behaviour suite (services/audit/tests/store_behaviour.py) against PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from cairn_audit.adapters.postgres import PostgresAuditStore
from cairn_audit.ports import AuditStore
from cairn_bus.postgres import create_pool
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
