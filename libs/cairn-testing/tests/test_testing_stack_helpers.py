"""Helpers that need the local stack: throw-away databases, consumer groups at the end of topics."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from cairn_bus.kafka import ensure_topics
from cairn_testing.databases import scratch_database
from cairn_testing.processes import prepare_groups, service_modules

pytestmark = pytest.mark.integration


async def _databases(admin_dsn: str) -> set[str]:
    admin = await asyncpg.connect(admin_dsn)
    try:
        return {row["datname"] for row in await admin.fetch("SELECT datname FROM pg_database")}
    finally:
        await admin.close()


async def test_a_scratch_database_is_new_empty_and_dropped_on_exit(postgres_dsn: str) -> None:
    async with scratch_database(postgres_dsn, "scratch") as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            name = await conn.fetchval("SELECT current_database()")
            tables = await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        finally:
            await conn.close()
        assert name.startswith("scratch_")
        assert dsn.endswith(f"/{name}")
        assert tables == 0
        assert name in await _databases(postgres_dsn)
    assert name not in await _databases(postgres_dsn)


async def test_a_scratch_database_is_dropped_when_the_block_fails(postgres_dsn: str) -> None:
    names: list[str] = []

    async def fail_inside() -> None:
        async with scratch_database(postgres_dsn, "scratch") as dsn:
            names.append(dsn.rsplit("/", 1)[1])
            raise LookupError

    with pytest.raises(LookupError):
        await fail_inside()
    assert names
    assert names[0] not in await _databases(postgres_dsn)


async def test_every_installed_service_gets_a_group_of_its_own(kafka_bootstrap: str) -> None:
    await ensure_topics(kafka_bootstrap)  # on a fresh broker the topics do not exist yet
    suffix = uuid.uuid4().hex[:8]
    groups = await prepare_groups(kafka_bootstrap, suffix)
    assert groups == {name: f"cairn-{name}-{suffix}" for name in service_modules()}
