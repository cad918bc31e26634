"""The AuditStore behaviour suite (services/audit/tests/store_behaviour.py) against PostgreSQL."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from cairn_audit.adapters.postgres import PostgresAuditStore, create_pool
from cairn_audit.ports import AuditStore

pytestmark = pytest.mark.integration
SUITE = Path(__file__).parents[2] / "services" / "audit" / "tests" / "store_behaviour.py"


def _load_suite() -> ModuleType:
    name = "cairn_audit_tests_store_behaviour"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SUITE)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


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
