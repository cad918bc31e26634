"""The retriever's PostgreSQL plumbing: the pool (with the pgvector codec), transactions for the inbox,
and which database errors mean "try again later"."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import asyncpg
import numpy as np

from cairn_bus import TransientError

TRANSIENT_PG = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
)


@contextmanager
def transient_errors(what: str) -> Iterator[None]:
    """Re-raise database outages as TransientError (retry later, never dead-letter)."""
    try:
        yield
    except TRANSIENT_PG as exc:
        raise TransientError(f"{what}: {exc!r}") from exc
    except asyncpg.exceptions.InterfaceError as exc:
        if "closed" in str(exc) or "closing" in str(exc):
            raise TransientError(f"{what}: {exc!r}") from exc
        raise


def encode_vector(values: Sequence[float]) -> bytes:
    """pgvector's binary format: dimension (uint16), unused (uint16), float4 values, big-endian."""
    arr = np.asarray(values, dtype=">f4")
    return struct.pack(">HH", arr.shape[0], 0) + arr.tobytes()


def decode_vector(data: bytes) -> list[float]:
    """A vector from pgvector's binary format."""
    (dim,) = struct.unpack_from(">H", data)
    return [float(x) for x in np.frombuffer(data, dtype=">f4", count=dim, offset=4)]


async def _register_vector(conn: Any) -> None:
    schema = await conn.fetchval(
        "SELECT n.nspname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typname = 'vector'"
    )
    if schema is not None:
        await conn.set_type_codec(
            "vector", schema=schema, encoder=encode_vector, decoder=decode_vector, format="binary"
        )


async def ensure_vector_extension(dsn: str) -> None:
    """`CREATE EXTENSION IF NOT EXISTS vector` (before a pool registers the type's codec)."""
    with transient_errors("connect to PostgreSQL"):
        conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('cairn_retriever_vector_ext'))")
            await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    finally:
        await conn.close()


async def create_pool(
    dsn: str, min_size: int = 1, max_size: int = 5, server_settings: dict[str, str] | None = None
) -> Any:
    """An asyncpg pool whose connections read and write pgvector's `vector` as lists of floats.

    Call `ensure_vector_extension` first on a fresh database.
    """
    with transient_errors("connect to PostgreSQL"):
        return await asyncpg.create_pool(
            dsn, min_size=min_size, max_size=max_size, init=_register_vector, server_settings=server_settings
        )


def pool_transaction(pool: Any) -> Any:
    """A factory of transactions on the pool, yielding the connection (for `Inbox.claim(..., conn)`)."""

    @asynccontextmanager
    async def transaction() -> AsyncIterator[Any]:
        with transient_errors("PostgreSQL transaction"):
            async with pool.acquire() as conn, conn.transaction():
                yield conn

    return transaction
