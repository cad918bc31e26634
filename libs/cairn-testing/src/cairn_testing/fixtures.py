"""pytest fixtures for tests against the real local stack (enabled by the repo's conftest.py).

The stack profile is `CAIRN_STACK_PROFILE` (default `test`: its own ports and data folder, an
in-memory broker). The first integration test brings the stack up if `make test` has not.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cairn_bus.postgres import create_pool
from cairn_localstack.config import StackConfig
from cairn_testing.databases import scratch_database


@pytest.fixture(scope="session")
def stack_config() -> StackConfig:
    """The local stack the integration tests use."""
    return StackConfig.for_profile(os.environ.get("CAIRN_STACK_PROFILE", "test"))


@pytest.fixture(scope="session")
def local_stack(stack_config: StackConfig) -> dict[str, str]:
    """Bring the stack up (a quick health check when it already runs); the services' variables."""
    from cairn_localstack.stack import LocalStack

    LocalStack(stack_config).up()
    return stack_config.service_env()


@pytest.fixture(scope="session")
def kafka_bootstrap(local_stack: dict[str, str]) -> str:
    """host:port of the local broker."""
    return local_stack["CAIRN_KAFKA_BOOTSTRAP"]


@pytest.fixture(scope="session")
def postgres_dsn(local_stack: dict[str, str]) -> str:
    """DSN of the stack's main database."""
    return local_stack["CAIRN_POSTGRES_DSN"]


@pytest.fixture
async def fresh_database(postgres_dsn: str) -> AsyncIterator[str]:
    """DSN of a new, empty database, dropped after the test."""
    async with scratch_database(postgres_dsn, "t") as dsn:
        yield dsn


@pytest.fixture
async def pool(fresh_database: str) -> AsyncIterator[Any]:
    """An asyncpg pool on a new, empty database (`cairn_bus.postgres.create_pool`, its default
    sizes), closed after the test. A module that needs tables or other sizes overrides it."""
    p = await create_pool(fresh_database)
    yield p
    await p.close()


@pytest.fixture
def unique_group() -> str:
    """A consumer group id no other test uses."""
    return f"test-{uuid.uuid4().hex[:10]}"
