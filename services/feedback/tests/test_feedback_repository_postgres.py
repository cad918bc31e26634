"""The Repository behaviour suite against PostgreSQL; tables prefixed, versions immutable, outages transient."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from cairn_bus import TransientError
from cairn_bus.postgres import create_pool
from cairn_feedback.adapters.postgres import PostgresRepository
from cairn_testing.suites import load_suite

pytestmark = pytest.mark.integration
suite = load_suite(Path(__file__).with_name("repository_behaviour.py"))
RepositoryBehaviour: Any = suite.RepositoryBehaviour


@pytest.fixture
async def pool(fresh_database: str) -> AsyncIterator[Any]:
    p = await create_pool(fresh_database, 1, 4)
    yield p
    await p.close()


@pytest.fixture
async def pg(pool: Any) -> PostgresRepository:
    repository = PostgresRepository(pool)
    await repository.migrate()
    await repository.migrate()  # idempotent
    return repository


class TestPostgresRepository(RepositoryBehaviour):  # type: ignore[misc]
    @pytest.fixture
    def repository(self, pg: PostgresRepository) -> PostgresRepository:
        return pg


async def test_tables_are_prefixed_and_versions_immutable(pg: PostgresRepository, pool: Any) -> None:
    async def make(n: int) -> Any:
        return suite.version("qa", n, rows=2)

    await pg.add_version("qa", make)
    tables = [
        r["tablename"]
        for r in await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
    ]
    assert tables == [
        "feedback_dataset_rows",
        "feedback_dataset_versions",
        "feedback_records",
        "feedback_requests",
        "feedback_responses",
        "feedback_screenings",
        "feedback_shadow_responses",
        "tenant_keys",  # the keyring (cairn_auth.encryption)
    ]
    for statement in (
        "UPDATE feedback_dataset_versions SET uri = 's3://x/'",
        "DELETE FROM feedback_dataset_versions",
        "UPDATE feedback_dataset_rows SET request_id = 'forged'",
        "DELETE FROM feedback_dataset_rows",
    ):
        with pytest.raises(asyncpg.RaiseError, match="dataset versions are immutable"):
            await pool.execute(statement)
    assert await pg.version("qa", 1) == suite.version("qa", 1, rows=2)


async def test_a_closed_pool_is_a_transient_error(fresh_database: str) -> None:
    pool = await create_pool(fresh_database)
    repository = PostgresRepository(pool)
    await repository.migrate()
    await pool.close()
    with pytest.raises(TransientError, match="database unavailable"):
        await repository.trail("req-1")


async def test_tables_from_before_teacher_rows_are_migrated(pool: Any) -> None:
    """A database made when rows needed feedback (`feedback_id NOT NULL`, sources corrected/rated)
    and responses had no `answered_by` takes teacher rows after `migrate`; old answers stay findable."""
    await pool.execute(
        "CREATE TABLE feedback_responses (request_id text PRIMARY KEY, event_id text NOT NULL, "
        "at timestamptz NOT NULL, payload jsonb NOT NULL, stored_at timestamptz NOT NULL DEFAULT now());"
        "CREATE TABLE feedback_dataset_versions (dataset_id text NOT NULL, version integer NOT NULL, "
        "uri text NOT NULL, manifest_uri text NOT NULL, manifest jsonb NOT NULL, "
        "recorded_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (dataset_id, version));"
        "CREATE TABLE feedback_dataset_rows (dataset_id text NOT NULL, version integer NOT NULL, "
        "position integer NOT NULL, row_id text NOT NULL, request_id text NOT NULL, feedback_id text NOT NULL, "
        "prompt_name text NOT NULL, prompt_version integer NOT NULL, "
        "source text NOT NULL CHECK (source IN ('corrected', 'rated')), "
        "split text NOT NULL CHECK (split IN ('train', 'heldout')), PRIMARY KEY (dataset_id, version, position));"
    )
    old_answer = suite.F.response("req-old")
    await pool.execute(
        "INSERT INTO feedback_responses (request_id, event_id, at, payload) VALUES ($1, 'e0', now(), $2)",
        "req-old",
        old_answer.model_dump(mode="json"),
    )
    repository = PostgresRepository(pool, keyring=None)
    await repository.migrate()
    await repository.migrate()

    async def make(n: int) -> Any:
        return suite.version("qa", n, rows=3)  # its third row is a teacher row

    await repository.add_version("qa", make)
    assert await repository.version("qa", 1) == suite.version("qa", 1, rows=3)
    found = await repository.trails_answered_by("cairn-qa:2")  # stored without `answered_by`
    assert [t.response for t in found] == [old_answer]
