"""The PostgreSQL registry and run store: the behaviour suites, and invariants the database enforces."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from cairn_evaluator.adapters.pg_registry import PostgresRegistry
from cairn_evaluator.adapters.pg_runs import PostgresRunStore
from cairn_evaluator.adapters.pg_schema import migrate
from cairn_events import ModelStage

from .conftest import T0, version
from .evaluator_behaviour import RegistryBehaviour, RunStoreBehaviour, sample_run

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(pool: Any) -> Any:
    """The shared fresh-database pool, with the evaluator's tables."""
    await migrate(pool)
    await migrate(pool)  # idempotent
    return pool


class TestPostgresRegistry(RegistryBehaviour):
    @pytest.fixture
    def registry(self, pool: Any) -> PostgresRegistry:
        return PostgresRegistry(pool)


class TestPostgresRunStore(RunStoreBehaviour):
    @pytest.fixture
    def run_store(self, pool: Any) -> PostgresRunStore:
        return PostgresRunStore(pool)


async def test_answers_kept_before_the_prompt_column_read_back_without_a_prompt(pool: Any) -> None:
    """The migration adds `eval_requests.prompt_ref` in place: rows answered before it keep their answer."""
    await pool.execute("ALTER TABLE eval_requests DROP COLUMN prompt_ref")
    store = PostgresRunStore(pool)
    run, cases = sample_run()
    await store.create(run, cases)
    await pool.execute(
        "UPDATE eval_requests SET status = 'completed', text = 'x', answered_at = $2 WHERE request_id = $1",
        cases[0].request_id,
        T0,
    )
    await migrate(pool)
    answers = {c.side: c.answer for c in await store.cases(run.run_id)}
    assert answers["b"] is None
    assert answers["c"] is not None
    assert (answers["c"].text, answers["c"].prompt) == ("x", None)


async def test_the_database_allows_one_production_version(pool: Any) -> None:
    registry = PostgresRegistry(pool)
    await registry.register(version(1, ModelStage.PRODUCTION))
    with pytest.raises(asyncpg.UniqueViolationError):
        await registry.register(version(2, ModelStage.PRODUCTION))
    tables = await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
    assert [t["tablename"] for t in tables] == [
        "eval_requests",
        "eval_runs",
        "online_alert_state",
        "online_alerts",
        "online_attributions",
        "online_experiment_conclusions",
        "online_feedback",
        "online_requests",
        "online_responses",
        "registry_aliases",
        "registry_promotions",
        "registry_versions",
        "shadow_answers",
        "shadow_configs",
        "shadow_mirrors",
    ]
