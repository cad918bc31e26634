"""The shared PostgreSQL plumbing: which errors are transient, migrations under a lock, the jsonb pool."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from cairn_bus import TransientError
from cairn_bus.postgres import (
    create_pool,
    guarded,
    is_transient,
    lock_key,
    migrate,
    rows_affected,
    transaction,
    transient_errors,
)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.ConnectionDoesNotExistError("gone"),
        asyncpg.exceptions.CannotConnectNowError("starting up"),
        asyncpg.exceptions.AdminShutdownError("shutting down"),
        asyncpg.exceptions.TooManyConnectionsError("full"),
        asyncpg.exceptions.SerializationError("conflict"),
        asyncpg.exceptions.DeadlockDetectedError("deadlock"),
        asyncpg.InterfaceError("connection is closed"),
        ConnectionRefusedError("refused"),
    ],
)
def test_outages_and_conflicts_are_transient(error: BaseException) -> None:
    assert is_transient(error)
    with pytest.raises(TransientError, match="reading rows"), transient_errors("reading rows"):
        raise error


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.UniqueViolationError("duplicate"),
        asyncpg.exceptions.UndefinedTableError("no table"),
        ValueError("bad input"),
    ],
)
def test_faults_of_the_work_are_not_transient(error: BaseException) -> None:
    assert not is_transient(error)
    with pytest.raises(type(error)), transient_errors():
        raise error


def test_driver_misuse_is_not_transient() -> None:
    class Misuse(asyncpg.InterfaceError):
        pass

    assert not is_transient(Misuse("wrong number of arguments"))


async def test_guarded_turns_outages_into_transient_errors() -> None:
    @guarded
    async def read() -> None:
        raise asyncpg.exceptions.ConnectionDoesNotExistError("gone")

    with pytest.raises(TransientError, match="read"):
        await read()


def test_lock_keys_are_stable_signed_64_bit() -> None:
    assert lock_key("cairn_feedback") == lock_key("cairn_feedback")
    assert lock_key("cairn_feedback") != lock_key("cairn_tuner")
    assert -(2**63) <= lock_key("x") < 2**63


@pytest.mark.parametrize(("status", "rows"), [("DELETE 3", 3), ("UPDATE 0", 0), ("INSERT 0 5", 5)])
def test_rows_affected_reads_the_count_from_a_command_status(status: str, rows: int) -> None:
    assert rows_affected(status) == rows


@pytest.mark.parametrize("status", ["", "DELETE", "DELETE three", "3", "CREATE TABLE", "UPDATE -1"])
def test_rows_affected_rejects_a_status_without_a_count(status: str) -> None:
    with pytest.raises(ValueError, match="command status"):
        rows_affected(status)


async def test_an_unreachable_database_is_transient() -> None:
    with pytest.raises(TransientError, match="connect to PostgreSQL"):
        await create_pool("postgresql://cairn@127.0.0.1:9/none", min_size=1)


@pytest.mark.integration
async def test_jsonb_round_trips_and_replicas_migrate_one_at_a_time(fresh_database: str) -> None:
    pool = await create_pool(fresh_database, max_size=4)
    try:
        ddl = "CREATE TABLE IF NOT EXISTS things (id int PRIMARY KEY, body jsonb NOT NULL)"
        await asyncio.gather(*(migrate(pool, "things", ddl) for _ in range(4)))
        await migrate(pool, 0x0CA1_0001, ddl)
        async with transaction(pool) as conn:
            await conn.execute("INSERT INTO things VALUES (1, $1)", {"a": [1, 2]})
        assert await pool.fetchval("SELECT body FROM things WHERE id = 1") == {"a": [1, 2]}
    finally:
        await pool.close()
