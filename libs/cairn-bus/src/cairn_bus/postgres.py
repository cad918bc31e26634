"""PostgreSQL plumbing every service shares: the pool, the transient-error rule, migrations under a
lock, and transactions.

One place decides which database errors mean "try again later" (`is_transient`): a handler that
meets one raises `TransientError`, so the consumer retries the event instead of dead-lettering it.
Import this module only where asyncpg is installed (every service that owns tables has it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import asyncpg

from cairn_bus.dispatcher import TransientError

P = ParamSpec("P")
R = TypeVar("R")

_TRANSIENT_TYPES = (
    asyncpg.PostgresConnectionError,  # refused, lost, or never established connections
    asyncpg.exceptions.OperatorInterventionError,  # the server shutting down or starting up
    asyncpg.exceptions.InsufficientResourcesError,  # out of connections, memory, disk
    asyncpg.exceptions.TransactionRollbackError,  # serialization conflicts and deadlocks
    ConnectionError,  # the socket itself (reset, refused) before asyncpg wraps it
)


def is_transient(exc: BaseException) -> bool:
    """Whether a database error may pass by itself: lost or refused connections, the server shutting
    down or starting up, overload, serialization conflicts and deadlocks, a closed pool.

    A plain `InterfaceError` ("connection is closed", "pool is closing") is transient; its
    subclasses (misuse of the driver, such as a wrong number of arguments) are not.
    """
    return isinstance(exc, _TRANSIENT_TYPES) or type(exc) is asyncpg.InterfaceError


@contextmanager
def transient_errors(what: str = "database unavailable") -> Iterator[None]:
    """Re-raise transient database errors as `TransientError` (the consumer retries, never
    dead-letters); any other error passes unchanged. `what` names the work in the message."""
    try:
        yield
    except Exception as exc:
        if is_transient(exc):
            raise TransientError(f"{what}: {exc!r}") from exc
        raise


def guarded(func: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """Decorator: the coroutine's transient database errors become `TransientError`."""

    @wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with transient_errors(f"{func.__qualname__}: database unavailable"):
            return await func(*args, **kwargs)

    return wrapper


def _encode_jsonb(value: Any) -> bytes:
    return b"\x01" + json.dumps(value).encode()  # jsonb's binary format: version 1, then the text


def _decode_jsonb(data: bytes) -> Any:
    return json.loads(data[1:])


async def init_connection(conn: Any) -> None:
    """Read and write `jsonb` as Python objects on this connection, in jsonb's binary format (so that
    `copy_records_to_table` can write jsonb columns too; COPY from asyncpg is binary)."""
    await conn.set_type_codec(
        "jsonb", encoder=_encode_jsonb, decoder=_decode_jsonb, schema="pg_catalog", format="binary"
    )


async def create_pool(
    dsn: str,
    min_size: int = 1,
    max_size: int = 5,
    *,
    init: Callable[[Any], Awaitable[None]] | None = None,
    server_settings: dict[str, str] | None = None,
) -> Any:
    """An asyncpg pool whose connections read and write jsonb as Python objects.

    `init` runs on each new connection after the jsonb codec (e.g. to register the pgvector
    type). A database that cannot be reached raises `TransientError`.
    """

    async def setup(conn: Any) -> None:
        await init_connection(conn)
        if init is not None:
            await init(conn)

    with transient_errors("connect to PostgreSQL"):
        return await asyncpg.create_pool(
            dsn, min_size=min_size, max_size=max_size, init=setup, server_settings=server_settings
        )


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a name (the same in every process)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def rows_affected(status: str) -> int:
    """The number of rows a command touched, read from its status string as asyncpg's `execute`
    returns it (`"DELETE 3"`, `"UPDATE 0"`, `"INSERT 0 5"`); raises `ValueError` for any other text."""
    parts = status.split()
    if len(parts) < 2 or not parts[0].isalpha() or not parts[-1].isdigit():
        raise ValueError(f"not a PostgreSQL command status with a row count: {status!r}")
    return int(parts[-1])


async def migrate(pool: Any, lock: str | int, *ddl: str) -> None:
    """Run the DDL statements in one transaction under an advisory lock, so replicas starting together
    migrate one at a time. The statements must be idempotent (`IF NOT EXISTS`)."""
    key = lock if isinstance(lock, int) else lock_key(lock)
    async with transaction(pool, f"migrate ({lock})") as conn:
        await conn.execute("SELECT pg_advisory_xact_lock($1)", key)
        for statement in ddl:
            await conn.execute(statement)


@asynccontextmanager
async def transaction(pool: Any, what: str = "PostgreSQL transaction") -> AsyncIterator[Any]:
    """A connection from the pool inside a transaction: committed when the block exits normally,
    rolled back when it raises; a database outage raises `TransientError`."""
    with transient_errors(what):
        async with pool.acquire() as conn, conn.transaction():
            yield conn
