"""The PostgreSQL store: the behaviour suite, immutability enforced by the database, outages transient."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from cairn_bus import TransientError
from cairn_bus.postgres import create_pool, transient_errors
from cairn_prompt_store.adapters.postgres import PostgresPromptStore

from .conftest import spec
from .prompt_store_behaviour import PromptStoreBehaviour

pytestmark = pytest.mark.integration


@pytest.fixture
async def pg_store(pool: Any) -> PostgresPromptStore:
    store = PostgresPromptStore(pool)
    await store.migrate()
    await store.migrate()  # idempotent
    return store


class TestPostgresPromptStore(PromptStoreBehaviour):
    @pytest.fixture
    def store(self, pg_store: PostgresPromptStore) -> PostgresPromptStore:
        return pg_store


async def test_the_database_refuses_to_change_a_version(pg_store: PostgresPromptStore, pool: Any) -> None:
    await pg_store.push(spec(), "ana")
    with pytest.raises(asyncpg.RaiseError, match="prompt versions are immutable"):
        await pool.execute("UPDATE prompt_store_versions SET created_by = 'mallory'")
    with pytest.raises(asyncpg.RaiseError, match="prompt versions are immutable"):
        await pool.execute("DELETE FROM prompt_store_versions")
    stored = await pg_store.get("greet", 1)
    assert stored is not None
    assert stored.created_by == "ana"
    tables = await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
    assert [t["tablename"] for t in tables] == [
        "prompt_store_experiments",
        "prompt_store_label_history",
        "prompt_store_labels",
        "prompt_store_prompts",
        "prompt_store_versions",
        "prompt_store_winner_proposals",
    ]


async def test_a_closed_pool_is_a_transient_error(fresh_database: str) -> None:
    pool = await create_pool(fresh_database)
    store = PostgresPromptStore(pool)
    await store.migrate()
    await pool.close()
    with pytest.raises(TransientError, match="database unavailable"):
        await store.versions("greet")


async def test_an_unreachable_database_is_not_a_rejection(pg_store: PostgresPromptStore) -> None:
    with pytest.raises(TransientError), transient_errors():
        raise asyncpg.exceptions.CannotConnectNowError("the database system is starting up")
    with pytest.raises(asyncpg.exceptions.UndefinedTableError), transient_errors():
        raise asyncpg.exceptions.UndefinedTableError("no such table")
